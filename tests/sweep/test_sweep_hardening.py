"""`netsim sweep` on bad input: every flag, spec and point is checked before anything runs or is written
(one line on stderr, exit 2, no output directory and no cache entries); a damaged cache entry is run
again; a sweep where every point failed does not exit 0. Ends with a fuzz test of sweep spec documents."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import socket
import threading
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import event, given, settings, strategies as st

from netsim.cli import main
from netsim.config import MANIFEST
from netsim.sweep import executors
from netsim.sweep.kinds import KINDS
from tests.test_fuzz import JUNK, no_hang

SPEC = """name: small
kind: utilization
base:
  method: diloco
  model: {layers: 2, step_time: 10ms, params: 1e6}
  workers: 2
  inner_steps: 2
  outer_steps: 1
grid:
  bandwidth: [100Mbps, 1Gbps, 10Gbps]
"""


def write(tmp_path: Path, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def sweep(tmp_path: Path, spec: Path, *flags: str) -> int:
    return main(["sweep", str(spec), "-o", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), *flags])


def refused(tmp_path: Path, capsys, status: int, *needles: str) -> str:
    """Exit 2, one line naming every needle, and nothing written."""
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("netsim: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    return err


# --- flags: --scheduler, --cache ---------------------------------------------------------------------

@pytest.mark.parametrize("address", ["not a url", "", "tcp://", "tcp://host", "tcp://:8786", "http://host:8786",
                                     "tcp://host:0", "tcp://host:99999", "tcp://ho st:1", "tcp://host:1/x"])
def test_a_malformed_scheduler_address_is_one_line(tmp_path, capsys, address):
    status = sweep(tmp_path, write(tmp_path), "--executor", "dask", "--scheduler", address)
    refused(tmp_path, capsys, status, "--scheduler", "tcp://HOST:PORT", repr(address))


def test_a_scheduler_address_goes_with_the_dask_executor(tmp_path, capsys):
    status = sweep(tmp_path, write(tmp_path), "--scheduler", "tcp://localhost:8786")
    refused(tmp_path, capsys, status, "--scheduler", "--executor dask")


def test_a_running_scheduler_is_accepted(tmp_path, capsys):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        status = sweep(tmp_path, write(tmp_path), "--executor", "dask", "--scheduler", address)
    assert status == 0, capsys.readouterr().err
    assert len(pl.read_parquet(tmp_path / "out" / "table.parquet")) == 3


@pytest.fixture
def not_dask():
    """A TCP server that answers every connection as a web server would, then closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


def test_something_other_than_dask_at_the_scheduler_address_is_one_line(tmp_path, capsys, not_dask, monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 3.0)
    with no_hang(60):
        status = sweep(tmp_path, write(tmp_path), "--executor", "dask", "--scheduler", not_dask)
    refused(tmp_path, capsys, status, "--scheduler", not_dask, "not a dask scheduler")


def test_nothing_at_the_scheduler_address_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as s:  # a port nothing listens on (just released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with no_hang(60):
        status = sweep(tmp_path, write(tmp_path), "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}")
    refused(tmp_path, capsys, status, "--scheduler", "no dask scheduler answered")


@pytest.mark.parametrize("where", ["file", "below a file", "empty"])
def test_a_cache_that_cannot_be_a_directory_is_one_line(tmp_path, capsys, where):
    (tmp_path / "afile").write_text("mine\n")
    cache = {"file": "afile", "below a file": "afile/sub", "empty": " "}[where]
    status = main(["sweep", str(write(tmp_path)), "-o", str(tmp_path / "out"), "--cache", str(tmp_path / cache)
                   if cache.strip() else cache])
    refused(tmp_path, capsys, status, "--cache")
    assert (tmp_path / "afile").read_text() == "mine\n"


# --- the cache: damaged entries, atomic writes --------------------------------------------------------

def test_a_truncated_cache_entry_is_run_again_with_a_notice(tmp_path, capsys):
    spec = write(tmp_path)
    assert sweep(tmp_path, spec) == 0
    first = pl.read_parquet(tmp_path / "out" / "table.parquet")
    entries = sorted((tmp_path / "cache").glob("*.parquet"))
    assert len(entries) == 3
    damaged = entries[1]
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 3])  # as a crash mid-write or a full disk leaves it
    (tmp_path / "cache" / "junk.parquet").write_bytes(b"")  # not a point's entry: never read
    capsys.readouterr()
    assert sweep(tmp_path, spec) == 0
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if line.startswith("netsim: notice:")]
    assert len(notices) == 1 and damaged.name in notices[0] and "running it again" in notices[0], err
    assert "Traceback" not in err
    assert pl.read_parquet(tmp_path / "out" / "table.parquet").equals(first)
    assert pl.read_parquet(damaged).shape[0] == 1  # whole again
    assert sweep(tmp_path, spec) == 0 and "notice" not in capsys.readouterr().err


def test_a_cache_entry_that_is_not_a_result_is_run_again(tmp_path, capsys):
    spec = write(tmp_path)
    assert sweep(tmp_path, spec) == 0
    entry = sorted((tmp_path / "cache").glob("*.parquet"))[0]
    pl.DataFrame({"x": [1]}).write_parquet(entry)  # a Parquet file, but not one a sweep wrote
    capsys.readouterr()
    assert sweep(tmp_path, spec) == 0
    assert "unreadable" in capsys.readouterr().err and "error" in pl.read_parquet(entry).columns


def test_a_full_disk_while_writing_the_cache_keeps_the_old_entries(tmp_path, capsys, monkeypatch):
    spec = write(tmp_path)
    assert sweep(tmp_path, spec) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "cache").iterdir()}

    def full(self, file, **kwargs):  # half a file, then the disk is full
        Path(file).write_bytes(b"PAR1" + b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    capsys.readouterr()
    status = sweep(tmp_path, spec, "--fresh")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("netsim: error: --cache: cannot write") and "No space" in err[-1]
    assert {p.name: p.read_bytes() for p in (tmp_path / "cache").iterdir()} == before  # no temporary left


# --- metrics ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metrics, needle", [
    ("[happiness]", "unknown metric 'happiness'"),
    ("[]", "empty"),
    ("[busbw]", "unknown metric 'busbw'"),  # a metric of another kind
    ("[bytes_per_worker]", "unknown metric 'bytes_per_worker'; it is now 'sent_per_worker_B'"),  # renamed
])
def test_unknown_or_empty_metrics_are_refused_listing_the_known(tmp_path, capsys, metrics, needle):
    status = sweep(tmp_path, write(tmp_path, SPEC + f"metrics: {metrics}\n"))
    refused(tmp_path, capsys, status, "spec.yaml: metrics:", needle, "known for kind utilization: method, utilization")


@pytest.mark.parametrize("metrics, needle", [("[utilization, utilization]", "'utilization' given twice"),
                                             ("wall_s", "valid list")])
def test_repeated_or_misshapen_metrics_are_refused(tmp_path, capsys, metrics, needle):
    status = sweep(tmp_path, write(tmp_path, SPEC + f"metrics: {metrics}\n"))
    refused(tmp_path, capsys, status, "spec.yaml: metrics:", needle)


def test_metrics_keep_those_columns_and_the_error(tmp_path):
    assert sweep(tmp_path, write(tmp_path, SPEC + "metrics: [wall_s, utilization]\n")) == 0
    table = pl.read_parquet(tmp_path / "out" / "table.parquet")
    assert table.columns == ["point", "run", "bandwidth", "bandwidth_Bps", "wall_s", "utilization", "error"]


# --- every point checked before the first run ---------------------------------------------------------

@pytest.mark.parametrize("change, needles", [
    (("  model: {layers: 2,", "  model: {nosuch: 1, layers: 2,"), ["model.nosuch: unknown key", "point 0"]),
    (("  workers: 2", "  workers: 1"), ["workers:", "point 0 (bandwidth=100Mbps)"]),
    (("  workers: 2", "  workers: two"), ["workers:", "point 0"]),
    (("  workers: 2", "  wrokers: 2"), ["wrokers: unknown key"]),
    (("  method: diloco", "  method: diloko"), ["method:", "diloco"]),
    (("[100Mbps, 1Gbps, 10Gbps]", "[100Mbps, 1Gbps, -1Gbps]"), ["bandwidth:", "point 2 (bandwidth=-1Gbps)"]),
    (("[100Mbps, 1Gbps, 10Gbps]", "[100Mbps, 1 lightyear]"), ["bandwidth:", "point 1"]),
    (("  bandwidth: [100Mbps, 1Gbps, 10Gbps]", "  model.layers: [1, 0]"), ["model.layers:", "point 1"]),
    (("  bandwidth: [100Mbps, 1Gbps, 10Gbps]", "  model: [1, 2]"), ["model:", "point 0 (model=1)"]),
])
def test_a_point_that_cannot_be_valid_is_refused_before_any_run(tmp_path, capsys, change, needles):
    status = sweep(tmp_path, write(tmp_path, SPEC.replace(*change)))
    refused(tmp_path, capsys, status, "spec.yaml: ", *needles)


def test_a_base_in_its_own_file_is_checked_per_point_too(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text("topology: {kind: single_switch, gpus: 2, bandwidth: 100Gbps}\n"
                                       "network: analytic\nworkload: [{op: all_reduce, size: 1KiB, nosuch: 1}]\n")
    spec = write(tmp_path, "kind: run\nbase: base.yaml\ngrid:\n  seed: [0, 1, 2]\n")
    refused(tmp_path, capsys, sweep(tmp_path, spec), "spec.yaml: workload.0.nosuch: unknown key", "point 0 (seed=0)")


@pytest.mark.parametrize("change, needle", [
    ("  topology.colour: [red]", "topology.colour"),
    ("  workload.0.size: [1KiB, 1e30]", "workload.0.size"),
    ("  routing: [ecmp, nope]", "routing"),
    ("  workload.0.chunks: [100000000]", "workload.0.chunks"),
    ("  workload.0.repeat: [1, 1000000]", "--max-transfers 4000000"),  # more work than a point may be
])
def test_scenario_points_are_checked_to_the_field(tmp_path, capsys, change, needle):
    spec = write(tmp_path, "kind: run\nbase:\n  topology: {kind: single_switch, gpus: 2, bandwidth: 100Gbps}\n"
                           "  network: analytic\n  workload: [{op: all_reduce, size: 1KiB}]\ngrid:\n" + change + "\n")
    refused(tmp_path, capsys, sweep(tmp_path, spec, "--max-transfers", "1000000"), needle, "(in point ")


def test_comparison_policies_are_checked(tmp_path, capsys):
    spec = write(tmp_path, """kind: compare
base:
  topology: {kind: leaf_spine, leaves: 2, spines: 2, hosts_per_leaf: 2, host_bandwidth: 100Gbps}
  policies: [ecmp, warp]
  jobs: [{name: a, gpus: 4, workload: [{op: all_reduce, size: 1MiB, algo: ring}]}]
grid:
  seed: [0, 1]
""")
    refused(tmp_path, capsys, sweep(tmp_path, spec), "policies.1", "warp", "point 0 (seed=0)")


def test_every_point_failing_on_its_input_at_run_time_is_exit_2_and_nothing_written(tmp_path, capsys):
    # sharded workers without a topology: refused by the run, not by the configuration check
    spec = write(tmp_path, SPEC.replace("  outer_steps: 1", "  outer_steps: 1\n  gpus_per_worker: 2"))
    status = sweep(tmp_path, spec)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and [line for line in err if line.startswith("netsim: error")] == err[-1:]
    assert "all 3 points failed on their input, nothing written" in err[-1] and "gpus_per_worker" in err[-1]
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def crashing(monkeypatch, when=lambda document: True):
    """Make the utilisation kind crash (a bug, not a mistake in the point) where `when` holds."""
    kind = KINDS["utilization"]

    def run(document, folder):
        if when(document):
            raise ZeroDivisionError("a bug")
        return kind.run(document, folder)

    monkeypatch.setitem(KINDS, "utilization", dataclasses.replace(kind, run=run))


def test_every_point_crashing_is_exit_1_with_a_one_line_summary(tmp_path, capsys, monkeypatch):
    crashing(monkeypatch)
    status = sweep(tmp_path, write(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and [line for line in err if line.startswith("netsim: error")] == err[-1:]
    assert "all 3 points failed" in err[-1] and "ZeroDivisionError: a bug" in err[-1] and "Traceback" not in err[-1]
    table = pl.read_parquet(tmp_path / "out" / "table.parquet")  # the errors are kept for a look
    assert table["error"].is_not_null().all()
    capsys.readouterr()
    assert sweep(tmp_path, write(tmp_path)) == 1  # from the cache: still every point failed


def test_some_points_crashing_is_exit_0_with_the_errors_in_the_table(tmp_path, monkeypatch):
    crashing(monkeypatch, lambda document: document["bandwidth"] == "1Gbps")
    assert sweep(tmp_path, write(tmp_path)) == 0
    table = pl.read_parquet(tmp_path / "out" / "table.parquet")
    assert table.filter(pl.col("error").is_not_null())["bandwidth"].to_list() == ["1Gbps"]


def test_a_value_listed_twice_runs_once(tmp_path):
    assert sweep(tmp_path, write(tmp_path, SPEC.replace("[100Mbps, 1Gbps, 10Gbps]", "[1Gbps, 1Gbps]"))) == 0
    table = pl.read_parquet(tmp_path / "out" / "table.parquet")
    assert table["point"].to_list() == [0, 1] and len(list((tmp_path / "cache").glob("*.parquet"))) == 1


TINY = {
    "run": {"topology": {"kind": "single_switch", "gpus": 2, "bandwidth": "100Gbps"}, "network": "analytic",
            "workload": [{"op": "all_reduce", "size": "1KiB"}]},
    "compare": {"topology": {"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
                             "host_bandwidth": "100Gbps"}, "policies": ["ecmp"], "alone": True,
                "jobs": [{"name": n, "gpus": 2, "workload": [{"op": "all_reduce", "size": "1KiB"}]} for n in "ab"]},
    "utilization": {"method": "diloco", "model": {"layers": 2, "step_time": "10ms", "params": 1e6},
                    "inner_steps": 2, "outer_steps": 1},
    "attention": {"topology": {"kind": "single_switch", "gpus": 2, "bandwidth": "100Gbps"}, "seq": 256, "heads": 2,
                  "head_dim": 8},
    "faults": {"topology": {"kind": "single_switch", "gpus": 4, "bandwidth": "100Gbps"},
               "job": {"replicas": 2, "tp": 2, "iterations": 3, "compute": "1ms", "tp_bytes": "1KiB",
                       "dp_bytes": "1KiB", "checkpoint_every": 1}},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_reports_the_metrics_it_declares(kind):
    """`metrics:` is checked against each kind's declared columns: they must be what a run reports."""
    k = KINDS[kind]
    k.check(TINY[kind], Path("."), None)
    rows = k.run(TINY[kind], Path("."))
    assert rows and set().union(*(r.keys() for r in rows)) == set(k.metrics)


# --- fuzzing sweep spec documents ---------------------------------------------------------------------

UTILIZATION = {"method": "diloco", "model": {"layers": 2, "step_time": "10ms", "params": 1e6}, "workers": 2,
               "inner_steps": 2, "outer_steps": 1}
UTILIZATION_PARAMS = {"bandwidth": ["100Mbps", "1Gbps", 1e9], "latency": [0, "1ms"], "fragments": [1, 2],
                      "method": ["diloco", "streaming_diloco", "ddp"], "model.layers": [1, 2],
                      "model.step_time": ["5ms", 0.01], "seed": [0, 1], "jitter": [0, 0.1]}
RUN = {"topology": {"kind": "single_switch", "gpus": 2, "bandwidth": "100Gbps"}, "network": "analytic",
       "workload": [{"op": "all_reduce", "size": "1KiB"}]}
RUN_PARAMS = {"workload.0.size": ["1KiB", "4KiB", 7], "seed": [0, 1], "topology.gpus": [2, 3],
              "routing": ["ecmp", ["ecmp", "spray"]], "workload.0.op": ["all_reduce", "all_gather"]}
BASES = {"utilization": (UTILIZATION, UTILIZATION_PARAMS), "run": (RUN, RUN_PARAMS)}
UNKNOWN = "nosuch"


def _leaves(doc, prefix=()):
    """Every (path, value) of a mapping, lists by index."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for key, value in items:
        yield prefix + (key,), value
        if isinstance(value, (dict, list)) and value:
            yield from _leaves(value, prefix + (key,))


def _put(doc, path, value):
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@st.composite
def sweep_specs(draw):
    """A small valid sweep spec (2 to 8 fast points), or (one time in two) the same with one subtle mistake:
    a wrong type or junk at any level, an unknown key at any level, an empty list, a path into nothing,
    zipped lists of unequal length, a huge grid, unknown, empty or repeated metrics."""
    kind = draw(st.sampled_from(sorted(BASES)))
    base, params = BASES[kind]
    doc = {"name": "fuzz", "kind": kind, "base": yaml.safe_load(yaml.safe_dump(base))}
    names = draw(st.lists(st.sampled_from(sorted(params)), min_size=1, max_size=3, unique=True))
    zipped = names[2:]
    doc["grid"] = {n: draw(st.lists(st.sampled_from(params[n]), min_size=1, max_size=2)) for n in names[:2]}
    if zipped:
        doc["zip"] = {n: draw(st.lists(st.sampled_from(params[n]), min_size=1, max_size=2)) for n in zipped}
        length = len(next(iter(doc["zip"].values())))
        doc["zip"] = {n: (v * 2)[:length] for n, v in doc["zip"].items()}
    if draw(st.booleans()):
        doc["metrics"] = draw(st.lists(st.sampled_from(list(KINDS[kind].metrics)), min_size=1, max_size=3, unique=True))
    mistake = draw(st.sampled_from(["none"] * 9 + ["top", "unknown top", "base", "unknown base", "grid junk",
                                                   "grid empty", "grid path", "zip length", "huge", "metrics",
                                                   "kind", "both"]))
    if mistake == "top":
        doc[draw(st.sampled_from(["name", "kind", "base", "grid", "zip", "metrics"]))] = draw(JUNK)
    elif mistake == "unknown top":
        doc[UNKNOWN] = 1
    elif mistake == "base":
        _put(doc["base"], draw(st.sampled_from([p for p, _ in _leaves(doc["base"])])), draw(JUNK))
    elif mistake == "unknown base":  # in the base itself or any mapping inside it
        mappings = [doc["base"]] + [v for _, v in _leaves(doc["base"]) if isinstance(v, dict)]
        draw(st.sampled_from(mappings))[UNKNOWN] = draw(st.sampled_from([1, "x", None]))
    elif mistake == "grid junk":
        name = draw(st.sampled_from(sorted(doc["grid"])))
        doc["grid"][name] = doc["grid"][name] + [draw(JUNK)]
    elif mistake == "grid empty":
        doc["grid"][draw(st.sampled_from(sorted(doc["grid"])))] = []
    elif mistake == "grid path":
        doc["grid"][draw(st.sampled_from(["model.nothing.deep", "workload.5.size", f"{UNKNOWN}.x", "",
                                          "seed.0", f"model.{UNKNOWN}", f"{UNKNOWN}"]))] = [1]
    elif mistake == "zip length":
        doc["zip"] = {"seed": [0, 1], names[0]: params[names[0]][:1]}
        doc["grid"].pop(names[0])
    elif mistake == "huge":
        doc["grid"] = {"seed": list(range(400)), names[0]: list(itertools.islice(itertools.cycle(params[names[0]]),
                                                                                 300))}
        doc.pop("zip", None)
    elif mistake == "metrics":
        doc["metrics"] = draw(st.sampled_from([[], ["happiness"], ["error"], [1], "wall_s", ["time_s"],
                                               [KINDS[kind].metrics[0]] * 2]))
    elif mistake == "kind":
        doc["kind"] = draw(st.sampled_from(["magic", "attention", "faults", "compare"]))
    elif mistake == "both":
        doc.setdefault("zip", {})[names[0]] = doc["grid"][names[0]]
    return doc


def _expected_points(doc) -> int:
    count = 1
    for values in doc["grid"].values():
        count *= len(values)
    if doc.get("zip"):
        count *= len(next(iter(doc["zip"].values())))
    return count


@settings(max_examples=max(10, settings().max_examples), deadline=None)  # a tiny sweep each: ~15 s in all
@given(doc=sweep_specs())
def test_sweep_spec_documents(tmp_path_factory, capsys, doc):
    """Exit 0 with a complete table, or exit 2 with one error line and nothing written: never a traceback."""
    tmp = tmp_path_factory.mktemp("sw")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc, allow_unicode=True))
    out, cache = tmp / "out", tmp / "cache"
    with no_hang():
        status = main(["sweep", str(spec), "-o", str(out), "--cache", str(cache)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert status in (0, 2), (status, captured.err)
    event(f"exit {status}")
    errors = [line for line in captured.err.splitlines() if line.startswith("netsim: error")]
    if status == 2:
        lines = captured.err.strip().splitlines()
        assert errors == lines[-1:], captured.err  # one error line, the last (progress lines may come first)
        assert not out.exists() and not cache.exists(), "written despite the error"
        return
    assert not errors
    names = {p.name for p in out.iterdir()}
    assert {"table.parquet", "report.html", MANIFEST} <= names, names
    table = pl.read_parquet(out / "table.parquet")
    assert set(table["point"]) == set(range(_expected_points(doc)))
    assert {"point", "run", "error", *doc["grid"], *doc.get("zip", {})} <= set(table.columns)
    if doc.get("metrics"):
        params = {*doc["grid"], *doc.get("zip", {})}
        numbers = {f"{p}_{unit}" for p in params for unit in ("Bps", "s", "B")}  # a quantity's value beside it
        assert set(table.columns) - {"point", "run", "error", *params} - numbers <= set(doc["metrics"])

"""Fuzzing the edges: generated scenario, topology, training and fault-study documents (valid and subtly
invalid) and CLI argument lists (trace readers and sweep specs: tests/traces, tests/sweep). The property, for every input: exit 0 with complete outputs, or exit 2 with one line
on stderr and nothing written — never a traceback, never a hang.

The default budget is small enough for CI; `HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py` runs the
long profile (hundreds of examples per test).
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from netsim.cli import main
from netsim.config import MANIFEST

ROOT = Path(__file__).resolve().parents[1]
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("long", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
HANG_SECONDS = 60  # far above any example here (they take well under a second); beyond it, a hang

JUNK = st.sampled_from([-1, 0, 1e30, -1e-9, float("nan"), float("inf"), "", "nan", ".inf", "-5Gbps", "1 lightyear",
                        True, None, [], {}, "x" * 80, "<script>alert(1)</script>", 2**70])
SIZES = st.sampled_from([0, 1, 7, "1KiB", "64KiB", "1MiB", "4MiB", 1e19, "1e30", -4, "9PiB"])


def maybe_break(strategy, junk_rate: float = 0.15):
    """Mostly the valid value; sometimes a value from the junk pool."""
    return st.one_of(strategy, JUNK) if junk_rate else strategy


@st.composite
def topologies(draw, *, valid: bool = False):
    kind = draw(st.sampled_from(["single_switch", "ring", "full_mesh", "leaf_spine", "fat_tree"]))
    if kind == "leaf_spine":
        doc = {"kind": kind, "leaves": draw(st.integers(1, 3)), "spines": draw(st.integers(1, 2)),
               "hosts_per_leaf": draw(st.integers(1, 2)), "gpus_per_host": draw(st.integers(1, 2))}
    elif kind == "fat_tree":
        doc = {"kind": kind, "k": draw(st.sampled_from([2, 4]))}
    else:
        doc = {"kind": kind, "gpus": draw(st.integers(2, 6))}
    doc["bandwidth" if kind != "leaf_spine" else "host_bandwidth"] = draw(st.sampled_from(["100Gbps", "50GB/s", 1e9]))
    if not valid and draw(st.booleans()):  # subtly invalid: one field replaced by junk, or an unknown key
        key = draw(st.sampled_from(sorted(doc) + ["colour"]))
        doc[key] = draw(JUNK)
    return doc


@st.composite
def workload_items(draw):
    """A valid item for any topology of >= 2 GPUs (sizes in whole bytes, ranks among the first two)."""
    op = draw(st.sampled_from(["all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all",
                               "barrier", "send_recv"]))
    item = {"op": op, "size": draw(st.sampled_from([1, 7, "1KiB", "64KiB", "1MiB", "4MiB"]))}
    item["ranks"] = [0, 1] if op == "send_recv" else draw(st.sampled_from(["all", 2, [0, 1], ["gpu0", "gpu1"]]))
    if op != "send_recv" and draw(st.booleans()):
        item["algo"] = draw(st.sampled_from(["auto", "ring", "direct"] if op == "all_to_all" or op == "barrier"
                                            else ["auto", "ring"]))
        if op == "barrier":
            item["algo"] = "auto"
    if draw(st.booleans()):
        item["chunks"] = draw(st.sampled_from([1, 2]))
    if draw(st.booleans()):
        item["repeat"] = draw(st.sampled_from([1, 2]))
    return item


BREAKS = [  # one subtle mistake each: (path into the document, value)
    (("workload", 0, "size"), 1e19), (("workload", 0, "size"), "1e30"), (("workload", 0, "size"), -4),
    (("workload", 0, "chunks"), 100_000_000), (("workload", 0, "chunks"), 0), (("workload", 0, "root"), 99),
    (("workload", 0, "ranks"), 1), (("workload", 0, "ranks"), ["gpu0", "gpu0"]), (("workload", 0, "ranks"), [0, 99]),
    (("workload", 0, "ranks"), "some"), (("workload", 0, "algo"), "magic"), (("workload", 0, "op"), "gossip"),
    (("workload", 0, "repeat"), 0), (("routing",), "split:0"), (("routing",), "nope"), (("routing",), []),
    (("routing",), ["ecmp", "ecmp"]), (("network",), {"model": "packet"}), (("network",), {"overhead": "-1us"}),
    (("seed",), -1), (("outputs",), "yes"), (("parallel",), {"tp": 3}), (("faults",), [{"link": "nowhere->x"}]),
    (("faults",), [{"at": "1us", "link": "gpu0<->sw", "kind": "melt"}]), (("topology",), {"kind": "torus"}),
    (("name",), "a b"), (("colour",), "blue"), (("workload",), []),
]


def _put(doc, path, value):
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@st.composite
def scenarios(draw):
    """A valid scenario, or (one time in three) the same with one subtle mistake from BREAKS or junk."""
    doc = {"name": "fuzz", "topology": draw(topologies(valid=True)),
           "routing": draw(st.sampled_from(["ecmp", ["ecmp", "spray"], "split:2", "planned", "single"])),
           "network": draw(st.sampled_from(["fluid", "analytic", {"model": "fluid", "overhead": "1us"}])),
           "workload": draw(st.lists(workload_items(), min_size=1, max_size=3))}
    if draw(st.integers(0, 3)) == 0:
        doc["faults"] = [{"at": draw(st.sampled_from(["0", "1us", "1ms"])), "link": "gpu0->" + (
            "sw" if doc["topology"]["kind"] == "single_switch" else "gpu1"), "kind": "degrade", "factor": 0.5}]
        if doc["topology"]["kind"] not in ("single_switch", "full_mesh"):
            del doc["faults"]
    choice = draw(st.integers(0, 2 * len(BREAKS) + 3)) - len(BREAKS) - 3  # below 0: left valid
    if 0 <= choice < len(BREAKS):
        path, value = BREAKS[choice]
        _put(doc, path, value)
    elif choice >= len(BREAKS):
        doc[draw(st.sampled_from(["seed", "outputs", "description", "topology"]))] = draw(JUNK)
    return doc


@contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    def alarm(_signum, _frame):
        raise AssertionError(f"no result after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(argv: list[str], out: Path | None, expected: set[str], capsys) -> int:
    """Run the CLI; assert the property; return the exit status."""
    with no_hang():
        status = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert status in (0, 2), (status, captured.err)
    if status == 2:  # one error line, last (progress lines of work done before it may precede it)
        lines = captured.err.strip().splitlines()
        errors = [line for line in lines if line.startswith("netsim: error: ")]
        assert errors == [lines[-1]] and all(line.startswith(("[", "netsim: notice: ")) or " stage" in line
                                             for line in lines[:-1]), captured.err
        assert out is None or not out.exists(), "written despite the error"
    elif out is not None:
        names = {p.name for p in out.iterdir()}
        assert expected | {MANIFEST} <= names, names
        assert not any(n.startswith(".netsim-staging") for n in names)
    return status


@given(doc=scenarios())
def test_scenario_documents(tmp_path_factory, capsys, doc):
    tmp = tmp_path_factory.mktemp("s")
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    out = tmp / "out"
    check(["run", str(path), "-o", str(out)], out, {"summary.parquet", "report.html", "meta.json"}, capsys)


@given(doc=topologies())
def test_topology_documents(tmp_path_factory, capsys, doc):
    path = tmp_path_factory.mktemp("t") / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    check(["topo", "show", str(path)], None, set(), capsys)


@st.composite
def training_documents(draw):
    """Mostly invalid training documents (real training takes seconds, so few valid ones run)."""
    doc = {"topology": {"kind": "single_switch", "gpus": 2}, "workers": 2, "methods": ["ddp"], "steps": 2,
           "inner_steps": 1, "batch": 2, "model": {"layers": 1, "width": 8, "heads": 2, "context": 8},
           "step_time": "10ms"}
    key = draw(st.sampled_from(["lr", "speeds", "methods", "steps", "model", "exchange", "workers", "step_time",
                                "time_scale", "mfu", "inner_steps"]))
    value = draw(st.one_of(JUNK, st.sampled_from([[], ["dp"], [".inf", 1], {"heads": 3, "width": 8},
                                                  {"context": 100000}, "fp7", 0.0])))
    if key == "speeds" and isinstance(value, str):
        value = [value, 1]
    doc[key] = value
    return doc


@settings(max_examples=max(5, settings().max_examples // 2))
@given(doc=training_documents())
def test_training_documents(tmp_path_factory, capsys, doc):
    check_document(tmp_path_factory, capsys, "train", doc, {"steps.parquet", "summary.parquet", "report.html"})


def check_document(tmp_path_factory, capsys, command: str, doc: dict, outputs: set[str]) -> None:
    """`netsim COMMAND DOC.yaml -o OUT` holds the property (see `check`)."""
    tmp = tmp_path_factory.mktemp(command)
    path = tmp / "doc.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp / "out"
    check([command, str(path), "-o", str(out)], out, outputs, capsys)


@st.composite
def fault_documents(draw):
    """A small fault study (valid: it runs in a fraction of a second), often with one value at one place
    replaced by junk or a subtly wrong value, or an unknown key."""
    doc = {"name": "f", "topology": {"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
                                     "host_bandwidth": "100Gbps", "spine_bandwidth": "100Gbps"},
           "job": {"replicas": 4, "compute": "200ms", "dp_bytes": "16MiB", "iterations": 30, "checkpoint_every": 10},
           "faults": [draw(st.sampled_from([
               {"kind": "gpu_slow", "at": "2s", "rank": 1, "factor": 0.5},
               {"kind": "rank_hang_comm", "at": "3s", "rank": 2},
               {"kind": "link_degraded", "at": "1s", "link": "leaf0<->spine0", "factor": 0.3},
               {"kind": "link_flap", "at": "1s", "link": "leaf1<->spine1", "down": "1s", "period": "4s"},
               {"kind": "nic_degraded", "at": "1s", "rank": 0, "factor": 0.2}]))],
           "detector": {"interval": "1s", "hang": "5s"}, "recovery": {"policy": "replan", "restart": "10s",
                                                                       "watchdog": "60s"}}
    if draw(st.booleans()):
        section = draw(st.sampled_from(["job", "faults", "detector", "recovery", "top"]))
        target = doc if section == "top" else doc["faults"][0] if section == "faults" else doc[section]
        key = draw(st.sampled_from(sorted(target) + ["nosuch"]))
        target[key] = draw(st.one_of(JUNK, st.sampled_from([0, "0s", 1e-9, 99, "leaf9<->spine9", "1e9s", 10**9])))
    return doc


@settings(max_examples=max(5, settings().max_examples // 2))
@given(doc=fault_documents())
def test_fault_documents(tmp_path_factory, capsys, doc):
    check_document(tmp_path_factory, capsys, "faults", doc, {"faults.parquet", "runs.parquet", "report.html"})


NVLINK = str(ROOT / "topologies" / "nvlink8.yaml")
FLAG_VALUES = st.sampled_from(["0", "1", "2", "-1", "nan", "inf", "1e30", "", "8", "64K", "1M", "x", "1.5", "3"])


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(["bench", "utilization", "sweep-bandwidth", "topo", "attention", "replay"]))
    if command == "topo":
        return ["topo", draw(st.sampled_from(["show", "list"])), draw(st.sampled_from([NVLINK, "nope.yaml", ""]))]
    if command == "bench":
        argv = ["bench", "--topology", NVLINK, "-b", "1K", "-e", "64K"]
        flags = ["-b", "-e", "-f", "-i", "--ranks", "--chunks", "--seed", "--algo", "--network", "--routing", "--op"]
    elif command == "utilization":
        argv = ["utilization", "--method", draw(st.sampled_from(["diloco", "streaming_diloco", "co2", "x"])),
                "--layers", "2", "--inner-steps", "2", "--outer-steps", "1"]
        flags = ["--bandwidth", "--workers", "--jitter", "--speeds", "--params", "--bits", "--latency",
                 "--fragments", "--overlap", "--step-time", "--tcp-window", "--streams", "--seed"]
    elif command == "replay":
        argv = ["replay", str(ROOT / "traces" / draw(st.sampled_from(["ddp2", "pp2", "nope"]))), "--topology", NVLINK]
        flags = ["--rescale", "--scale-compute", "--placement", "--routing", "--format", "--npus", "--algo", "--seed"]
    elif command == "attention":
        argv = ["attention", "--topology", NVLINK, "--seq", "1024", "--heads", "8", "--head-dim", "16",
                "--gpus", draw(st.sampled_from(["2", "4", "8"]))]
        flags = ["--schemes", "--gpus", "--seq", "--heads", "--kv-heads", "--head-dim", "--batch", "--tflops",
                 "--efficiency", "--dtype"]
    else:
        argv = ["sweep-bandwidth", "--methods", "diloco", "--grid", "1:10:2", "--layers", "2", "--inner-steps", "2",
                "--outer-steps", "1"]
        flags = ["--methods", "--grid", "--targets", "--workers", "--jitter", "--bits"]
    for flag in draw(st.lists(st.sampled_from(flags), max_size=3, unique=True)):
        argv += [flag, draw(FLAG_VALUES)]
    return argv


@given(argv=command_lines())
def test_command_lines(tmp_path_factory, capsys, argv):
    tmp = tmp_path_factory.mktemp("c")
    out = tmp / "out"
    writes = argv[0] in ("bench", "sweep-bandwidth", "attention", "replay")
    expected = {"bench.parquet", "report.html"} if argv[0] == "bench" else {"sweep.parquet", "report.html"}
    if argv[0] == "replay":
        expected = {"timeline.parquet", "trace.parquet", "report.html"}
    check(argv + (["-o", str(out)] if writes else []), out if writes else None, expected, capsys)

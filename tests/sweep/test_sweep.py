"""Sweeps: spec errors, resuming only the missing runs, the same table from every executor."""

from pathlib import Path

import polars as pl
import pytest

from netsim.cli import main
from netsim.sweep.executors import DaskExecutor, LocalExecutor
from netsim.sweep.runner import run_sweep
from netsim.sweep.spec import load_spec, points

SPEC = """name: small
kind: utilization
base:
  method: diloco
  model: {layers: 4, step_time: 10ms, params: 1e6}
  workers: 2
  inner_steps: 5
  outer_steps: 2
grid:
  bandwidth: [100Mbps, 1Gbps, 10Gbps]
zip:
  method: [diloco, streaming_diloco]
  fragments: [1, 2]
metrics: [utilization, wall_s]
"""


def write(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


class Counting(LocalExecutor):
    """Runs in this process, counts what it was asked to run, and can stop after `stop` results
    (as a sweep killed half-way would)."""

    def __init__(self, stop: int | None = None):
        super().__init__(1)
        self.asked, self.stop = 0, stop

    def run(self, tasks):
        self.asked += len(tasks)
        for k, result in enumerate(super().run(tasks)):
            if self.stop is not None and k == self.stop:
                raise KeyboardInterrupt
            yield result


def test_resume_runs_only_what_is_missing(tmp_path):
    spec, base, folder = load_spec(write(tmp_path))
    pts = points(spec, base, folder)
    assert len(pts) == 6 and [p.params for p in pts[:2]] == [
        {"bandwidth": "100Mbps", "method": "diloco", "fragments": 1},
        {"bandwidth": "100Mbps", "method": "streaming_diloco", "fragments": 2}]
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, pts, folder, cache, Counting(stop=4))
    assert len(list(cache.glob("*.parquet"))) == 4  # each finished run was written at once
    again = Counting()
    table = run_sweep(spec, pts, folder, cache, again)
    assert again.asked == 2 and len(table) == 6 and table["error"].is_null().all()
    repeat = Counting()
    assert run_sweep(spec, pts, folder, cache, repeat).equals(table) and repeat.asked == 0
    fresh = Counting()
    assert run_sweep(spec, pts, folder, cache, fresh, fresh=True).equals(table) and fresh.asked == 6
    # utilisation rises with bandwidth for each method
    for method in ("diloco", "streaming_diloco"):
        u = table.filter(pl.col("method") == method)["utilization"].to_list()
        assert u == sorted(u) and u[0] < u[-1]


def test_the_same_table_from_every_executor_and_worker_count(tmp_path):
    spec, base, folder = load_spec(write(tmp_path))
    pts = points(spec, base, folder)
    one = run_sweep(spec, pts, folder, tmp_path / "c1", LocalExecutor(1))
    two = run_sweep(spec, pts, folder, tmp_path / "c2", LocalExecutor(2))
    assert one.equals(two)
    dask = pytest.importorskip("dask.distributed")
    assert dask is not None
    executor = DaskExecutor(2)
    try:
        assert run_sweep(spec, pts, folder, tmp_path / "c3", executor).equals(one)
    finally:
        executor.close()


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    # sharded workers need a topology: a mistake only the run finds (the up-front check builds the
    # configuration, not the fabric); such a failure is in the table but not in the cache
    path = write(tmp_path, SPEC.replace("grid:\n", "grid:\n  gpus_per_worker: [1, 2]\n"))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(["sweep", str(path), "-o", str(out), "--cache", str(cache)]) == 0
    table = pl.read_parquet(out / "table.parquet")
    failed = table.filter(pl.col("error").is_not_null())
    assert len(table) == 12 and len(failed) == 6 and set(failed["gpus_per_worker"]) == {2}
    assert "gpus_per_worker" in failed["error"][0]
    assert len(list(cache.glob("*.parquet"))) == 6
    assert (out / "report.html").is_file()


@pytest.mark.parametrize("change, needle", [
    (("bandwidth: [100Mbps, 1Gbps, 10Gbps]", "bandwdith: [1Gbps]"), "bandwdith"),  # a new key: the check refuses it
    (("bandwidth: [100Mbps, 1Gbps, 10Gbps]", "bandwidth: [100Mbps, 0Gbps]"), "point 2 (bandwidth=0Gbps"),
    (("  bandwidth: [100Mbps, 1Gbps, 10Gbps]", "  model.nothing.deep: [1]"), "nothing"),
    (("bandwidth: [100Mbps, 1Gbps, 10Gbps]", "bandwidth: []"), "grid.bandwidth"),
    (("grid:\n  bandwidth: [100Mbps, 1Gbps, 10Gbps]", "grid: [1, 2]"), "grid"),
    (("fragments: [1, 2]", "fragments: [1, 2, 4]"), "zip"),
    (("kind: utilization", "kind: magic"), "kind"),
])
def test_bad_specs_are_one_line_errors(tmp_path, capsys, change, needle):
    path = write(tmp_path, SPEC.replace(*change))
    status = main(["sweep", str(path), "-o", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_routing_comparison_sweeps_like_any_scenario(tmp_path):
    spec = tmp_path / "routing.yaml"
    spec.write_text("""kind: compare
base:
  topology: {kind: leaf_spine, leaves: 2, spines: 2, hosts_per_leaf: 2, host_bandwidth: 100Gbps}
  policies: [ecmp, spray]
  jobs: [{name: a, gpus: 4, workload: [{op: all_reduce, size: 1MiB, algo: ring}]}]
grid:
  topology.oversubscription: [1, 2]
metrics: [variant, pct_of_ideal]
""")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "-o", str(out), "--cache", str(tmp_path / "c"), "--resume"]) == 0
    table = pl.read_parquet(out / "table.parquet")
    assert table.shape[0] == 4 and set(table["variant"]) == {"ecmp", "spray"}
    spray = table.filter(pl.col("variant") == "spray")["pct_of_ideal"].to_list()
    assert spray == pytest.approx([100.0, 100.0])  # spraying alone is the ideal reference


def test_parameters_with_units_get_a_numeric_column_beside_them(tmp_path):
    """A swept quantity written with units keeps its text and gains its value in netsim's units, in a column
    named after the unit (bandwidth -> bandwidth_Bps), so a table can be sorted and plotted by it."""
    from netsim.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text("name: u\nkind: utilization\nbase: {method: diloco, model: {layers: 2, step_time: 100ms, "
                    "params: 1e8}, workers: 2, inner_steps: 10}\ngrid:\n  bandwidth: [1Gbps, 10GB/s]\n"
                    "  latency: [1ms, 20ms]\n")
    assert main(["sweep", str(spec), "-o", str(tmp_path / "o"), "--cache", str(tmp_path / "c")]) == 0
    table = pl.read_parquet(tmp_path / "o" / "table.parquet").sort("point")
    assert table["bandwidth"].dtype == pl.Utf8 and table["bandwidth_Bps"].dtype == pl.Float64
    by = dict(zip(table["bandwidth"].to_list(), table["bandwidth_Bps"].to_list()))
    assert by == {"1Gbps": 1.25e8, "10GB/s": 1e10}
    assert sorted(set(table["latency_s"].to_list())) == [1e-3, 0.02]
    assert table.columns.index("bandwidth_Bps") == table.columns.index("bandwidth") + 1

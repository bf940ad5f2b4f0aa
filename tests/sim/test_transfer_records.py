"""`Simulation(transfers="drop")`: no per-transfer rows, and every other result bit-identical to a run that keeps
them; `transfers=Path(directory)`: the same rows streamed there in parts — on the compiled dataflow loop, the
reference executor (`send_batch`) and the analytic model."""

import polars as pl
import pytest

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.network import NetworkOptions
from netsim.sim import Results, Simulation
from netsim.topology import topology_from_dict

FABRIC = {"kind": "leaf_spine", "leaves": 4, "spines": 2, "hosts_per_leaf": 2, "gpus_per_host": 2,
          "host_bandwidth": "100Gbps", "spine_bandwidth": "100Gbps", "nvlink_bandwidth": "450GB/s",
          "host_latency": "1us", "spine_latency": "1us"}


def workload(sim: Simulation) -> list:
    """Collectives at once on the whole fabric and on half of it, point-to-point transfers, a link failing
    midway (routes change for what has not been sent yet)."""
    gpus = sim.topology.gpus
    everyone, half = Communicator(sim, gpus), Communicator(sim, gpus[::2], name="half")
    events = [everyone.run("all_to_all", 2**22, algo="direct"),
              everyone.run("all_reduce", 2**24, algo="ring", chunks=4),
              half.run("all_gather", 2**22, algo="ring")]
    events += [sim.network.transfer(int(gpus[0]), int(gpus[-1]), 3 * 2**20 + 7, key=("p2p", i)) for i in range(3)]
    spine_link = next(l for l, name in enumerate(sim.topology.link_names) if "spine" in name)
    sim.schedule_fault(2e-4, [spine_link])
    return events


def run(transfers: str, **kw):
    sim = Simulation(topology_from_dict(FABRIC), record_steps=kw.pop("record_steps", True), transfers=transfers,
                     **kw)
    events = workload(sim)
    return sim, sim.run(events)


CASES = {"compiled loop": {}, "reference executor": {"options": NetworkOptions(endpoint_rate_cap=40e9)},
         "analytic": {"network": "analytic", "record_steps": False}}


@pytest.mark.parametrize("case", list(CASES))
def test_streaming_transfer_rows_writes_the_kept_rows_in_parts(case, tmp_path, monkeypatch):
    monkeypatch.setattr("netsim.sim.simulation.PART_ROWS", 50)  # parts of 50 rows: one chunk of rows makes several
    (kept_sim, kept), (streamed_sim, streamed) = run("keep", **CASES[case]), run(tmp_path / "transfers", **CASES[case])
    assert kept.meta["end_time"] == streamed.meta["end_time"]
    assert sorted(kept.frames) == sorted([*streamed.frames, "transfers"])
    for name, frame in streamed.frames.items():
        assert frame.equals(kept.frames[name]), name
    parts = sorted((tmp_path / "transfers").iterdir())
    rows = [len(pl.read_parquet(p)) for p in parts]
    n = kept_sim.network.transfers_started
    assert sum(rows) == n and rows[:-1] == [50] * (len(parts) - 1) and 0 < rows[-1] <= 50
    assert [p.name for p in parts] == [f"part-{k:05d}.parquet" for k in range(len(parts))]
    streamed.write(tmp_path)  # the other frames beside the parts: read back, every frame of the kept run
    back = Results.read(tmp_path)
    assert sorted(back.frames) == sorted(kept.frames)
    for name, frame in kept.frames.items():
        assert back.frames[name].equals(frame), name  # transfers: bit-identical rows, in id order
    table = streamed_sim.recorder.tables["transfers"]
    assert table.chunks == [] and all(v == [] for v in table.columns.values())
    assert streamed.meta["streamed"] == {"transfers": str(tmp_path / "transfers")}
    with pytest.raises(AttributeError, match="streamed to"):
        streamed.transfers
    with pytest.raises(ConfigError, match="new or empty directory"):
        Simulation(topology_from_dict(FABRIC), transfers=tmp_path / "transfers")


@pytest.mark.parametrize("case", list(CASES))
def test_dropping_transfer_rows_changes_no_other_result(case):
    (kept_sim, kept), (dropped_sim, dropped) = run("keep", **CASES[case]), run("drop", **CASES[case])
    if case == "compiled loop":
        assert kept_sim.network.dataflows_compiled == dropped_sim.network.dataflows_compiled > 0
    elif case == "reference executor":
        assert kept_sim.network.dataflows_compiled == dropped_sim.network.dataflows_compiled == 0
    assert kept.meta["end_time"] == dropped.meta["end_time"] and kept_sim.now == dropped_sim.now
    assert sorted(kept.frames) == sorted([*dropped.frames, "transfers"])
    for name, frame in dropped.frames.items():
        assert frame.equals(kept.frames[name]), name  # bit-identical, NaN and null included
    assert len(kept.collectives) == 3 and len(kept.faults) == 1
    if case != "analytic":
        assert len(kept.steps) > 0 and kept.links["carried_B"].sum() > 0
    # the kept rows: one per transfer started, ids 0..n-1; the dropped table holds nothing
    n = kept_sim.network.transfers_started
    assert n == dropped_sim.network.transfers_started > 16 * 16
    assert kept.transfers["id"].to_list() == list(range(n))
    assert kept.transfers["end_s"].max() == kept.meta["end_time"]
    table = dropped_sim.recorder.tables["transfers"]
    assert not table.keep and table.chunks == [] and all(v == [] for v in table.columns.values())
    assert dropped.meta["dropped"] == ["transfers"] and "dropped" not in kept.meta


def test_dropped_frames_say_so_and_bad_values_are_refused():
    _, results = run("drop", record_steps=False)
    with pytest.raises(AttributeError, match="kept none"):
        results.transfers
    assert isinstance(results.collectives, pl.DataFrame)
    with pytest.raises(ConfigError, match="unknown transfer records 'stream'"):
        Simulation(topology_from_dict(FABRIC), transfers="stream")  # a directory is a Path, never a string


def test_a_scenario_without_transfer_rows_writes_the_same_other_files(tmp_path):
    """Two jobs' programs (`run_program`) under two policies, stacked: the files other than transfers.parquet
    and meta.json are byte-identical."""
    from netsim.scenario import run_scenario, scenario_from_dict

    doc = {"name": "rows", "topology": dict(FABRIC, gpus_per_host=1), "routing": ["ecmp", "spray"], "seed": 3,
           "workload": [{"op": "all_to_all", "size": "4MiB"}, {"op": "all_reduce", "size": "8MiB", "repeat": 2}]}
    for mode in ("keep", "drop"):
        run_scenario(scenario_from_dict(doc, source="rows.yaml"), transfers=mode).write(tmp_path / mode)
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    dropped = sorted(p.name for p in (tmp_path / "drop").iterdir())
    assert kept == sorted([*dropped, "transfers.parquet"]) and "links.parquet" in dropped
    for name in dropped:
        if name != "meta.json":
            assert (tmp_path / "keep" / name).read_bytes() == (tmp_path / "drop" / name).read_bytes(), name
    meta = Results.read(tmp_path / "drop").meta
    assert meta["dropped"] == ["transfers"] and all(v["dropped"] == ["transfers"] for v in meta["variants"].values())

"""Low-communication training schedules on the simulated network."""

import numpy as np
import pytest

from netsim.collectives import Communicator, ring_all_reduce_time
from netsim.errors import ConfigError
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.workloads.compute import ComputeModel
from netsim.workloads.diloco import StreamingConfig, sync_steps
from netsim.workloads.dag import run_dag
from netsim.workloads.ddp import ddp
from netsim.workloads.utilization import UtilizationConfig, utilization

MODEL = ComputeModel(layers=24, step_time=0.1, params=1e9)


def util(method, model, **kw):
    if "speeds" in kw:
        kw["speeds"] = tuple(kw["speeds"])
    return utilization(UtilizationConfig(method, model, **kw))
GRID = np.logspace(-1, 3, 9) * 1e9 / 8  # 0.1 to 1000 Gbit/s


def test_compute_model_shares_and_gradient_order():
    m = ComputeModel(4, 0.12, 4e6)
    assert m.forward().sum() == pytest.approx(0.04) and 2 * m.backward_half().sum() == pytest.approx(0.08)
    # layer 0 has no B_act: the activation half (0.04 s) goes to layers 1-3, 0.04 / 3 each
    b_act, b_w = m.backward_nodes()
    assert b_act.tolist() == pytest.approx([0, 0.04 / 3, 0.04 / 3, 0.04 / 3]) and b_w.tolist() == pytest.approx([0.01] * 4)
    assert m.gradient_ready().tolist() == pytest.approx([0.12, 0.12 - 0.01, 0.12 - 0.01 - 0.04 / 3 - 0.01,
                                                         0.04 + 0.04 / 3 + 0.01])  # top layer first
    assert ComputeModel.from_flops(4, 1e9, 1e6, 1e15, 0.5).step_time == pytest.approx(6 * 1e9 * 1e6 / 5e14)
    with pytest.raises(ConfigError):
        ComputeModel(4, 0.1, 1e9, layer_weights=(0.5, 0.5))


def test_ddp_all_reduce_on_a_bottleneck_link_is_the_ring_formula():
    workers, bw, lat = 4, 1.25e9, 2e-3
    model = ComputeModel(layers=1, step_time=0.01, params=1e8)
    topo = full_mesh(workers, bw, lat)
    sim = Simulation(topo)
    result = run_dag(Communicator(sim, topo.gpus), model, ddp(model, steps=2))
    sim.run()
    run = result()
    assert len(run.syncs) == 2
    for sync in run.syncs:
        assert sync.end - sync.start == pytest.approx(ring_all_reduce_time(workers, 1e8 * 2, lat, bw), rel=1e-9)


def test_diloco_moves_dp_bytes_divided_by_h():
    h = 5
    ddp = util("ddp", MODEL, workers=3, bandwidth=1e10, outer_steps=h)  # h steps of DDP
    diloco = util("diloco", MODEL, workers=3, bandwidth=1e10, inner_steps=h, outer_steps=1)
    assert diloco.sent_total_B == pytest.approx(ddp.sent_total_B / h, rel=1e-6)


def test_streaming_peak_demand_is_diloco_over_f_and_bytes_scale_with_bits():
    diloco = util("diloco", MODEL, workers=2, bandwidth=1e9)
    streaming = util("streaming_diloco", MODEL, workers=2, bandwidth=1e9, fragments=8)
    assert streaming.peak_demand_Bps == pytest.approx(diloco.peak_demand_Bps / 8, rel=1e-9)
    assert streaming.sent_total_B == pytest.approx(diloco.sent_total_B, rel=1e-6)
    four = util("streaming_diloco", MODEL, workers=2, bandwidth=1e9, fragments=8, bits=4)
    assert four.sent_total_B == pytest.approx(streaming.sent_total_B / 4, rel=1e-6)


def test_sync_schedule_spreads_fragments():
    config = StreamingConfig(inner_steps=100, fragments=4, outer_steps=2)
    assert [sync_steps(config, p)[0] for p in range(4)] == [100, 25, 50, 75]
    assert sync_steps(config, 1) == [25, 125]


# DDP in two buckets: per-layer reductions queue on one stream and pay 24 x 2 latencies a step
@pytest.mark.parametrize("method, kw", [("ddp", {"bucket_bytes": 1e9}), ("diloco", {}), ("streaming_diloco", {"fragments": 8}),
                                        ("streaming_diloco", {"fragments": 8, "overlap": 1})])
def test_utilization_rises_with_bandwidth(method, kw):
    values = [util(method, MODEL, workers=2, bandwidth=b, latency=0.01, **kw).utilization for b in GRID]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    assert values[0] < 0.5 < values[-1] <= 1.0


def test_overlap_never_lowers_utilization():
    for b in GRID:
        plain = util("streaming_diloco", MODEL, workers=3, bandwidth=b, latency=0.05, fragments=4)
        overlapped = util("streaming_diloco", MODEL, workers=3, bandwidth=b, latency=0.05, fragments=4,
                                 overlap=1)
        assert overlapped.utilization >= plain.utilization - 1e-12


def test_a_straggler_slows_everyone_under_diloco():
    fast = util("diloco", MODEL, workers=3, bandwidth=1e10, inner_steps=10)
    slow = util("diloco", MODEL, workers=3, bandwidth=1e10, inner_steps=10, speeds=np.array([1, 1, 1.5]))
    # The layers' reductions queue on the stream from the first release on (each takes longer than the
    # backward between two releases), so an outer period lasts (H - 1) T + R1 + L r, with R1 the first
    # release in the last step: the barrier stretches the compute part by the straggler's 1.5.
    r1 = float(MODEL.forward().sum()) + float(sum(x[-1] for x in MODEL.backward_nodes()))
    stretch = 3 * 0.5 * (9 * 0.1 + r1)
    assert slow.wall_s == pytest.approx(fast.wall_s + stretch, rel=1e-9)
    assert slow.utilization < fast.utilization


def test_utilization_cli(capsys):
    import json

    from netsim.cli import main

    args = ["utilization", "--method", "streaming_diloco", "--layers", "24", "--step-time", "0.1s", "--params", "1e9",
            "--bits", "16", "--inner-steps", "100", "--fragments", "8", "--overlap", "1", "--workers", "2",
            "--bandwidth", "10Gbps", "--latency", "0", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)["rows"][0]
    direct = util("streaming_diloco", MODEL, workers=2, bandwidth=10e9 / 8, fragments=8, overlap=1)
    assert out["utilization"] == pytest.approx(direct.utilization, rel=1e-12)
    assert main(["utilization", "--bandwidth", "10Gbpz"]) == 2
    assert "--bandwidth" in capsys.readouterr().err


def test_noloco_without_a_barrier_beats_diloco_with_stragglers_at_scale():
    model = ComputeModel(layers=24, step_time=0.1, params=1e8)
    kw = dict(workers=16, bandwidth=1.25e9, latency=0.05, inner_steps=20, outer_steps=3, jitter=0.3, seed=1)
    diloco = util("diloco", model, **kw)
    noloco = util("noloco", model, **kw)
    assert noloco.utilization > diloco.utilization + 0.1
    # NoLoCo sends outer gradient and slow weights to one peer per round: 2 x params x 2 bytes x 3 rounds
    assert noloco.sent_per_worker_B == pytest.approx(2 * 1e8 * 2 * 3, rel=1e-9)


def test_co2_hides_the_all_reduce_behind_the_next_steps():
    for b in GRID:
        diloco = util("diloco", MODEL, workers=2, bandwidth=b, inner_steps=20)
        co2 = util("co2", MODEL, workers=2, bandwidth=b, inner_steps=20)
        assert co2.utilization >= diloco.utilization - 1e-12
        assert co2.sent_total_B == diloco.sent_total_B


def test_random_pairing_halves_the_spread_and_a_ring_contracts_slowly():
    from netsim.workloads.gossip import consensus_spread, gossip_round, neighbours

    rng = np.random.default_rng(0)
    n, dim, rounds = 32, 64, 6
    start = rng.normal(size=(n, dim))
    ratios = {}
    for graph in ("random", "ring"):
        plan = neighbours(graph, n, rounds, np.random.default_rng(1))
        values = start.copy()
        spreads = [consensus_spread(values)]
        for r in range(rounds):
            values = gossip_round(values, plan[r])
            assert values.mean(axis=0) == pytest.approx(start.mean(axis=0))  # averaging keeps the mean
            spreads.append(consensus_spread(values))
        ratios[graph] = (spreads[-1] / spreads[0]) ** (1 / rounds)
    assert ratios["random"] == pytest.approx(0.5, abs=0.08)  # halves per round (in expectation)
    # the ring's slowest mode contracts by 1 - (2/3)(1 - cos(2 pi / n)) ~ 1 - 4.2/n^2 per round
    slow = [np.full(dim, np.cos(2 * np.pi * w / n)) for w in range(n)]
    values = np.array(slow)
    plan = neighbours("ring", n, 1, np.random.default_rng(0))
    after = gossip_round(values, plan[0])
    assert consensus_spread(after) / consensus_spread(values) == pytest.approx(
        (1 - (2 / 3) * (1 - np.cos(2 * np.pi / n))) ** 2, rel=1e-9)


def test_sweep_thresholds_and_cli(tmp_path, capsys):
    import json

    from netsim.cli import main
    from netsim.workloads.sweep import sweep_bandwidth, thresholds

    grid = np.array([1e8, 1e9, 1e10, 1e11])
    frame = sweep_bandwidth(["diloco", "streaming_diloco"], grid,
                            UtilizationConfig("diloco", MODEL, workers=2, fragments=8, overlap=1))
    found = thresholds(frame, (0.5, 0.99))
    for row in found.iter_rows(named=True):
        part = frame.filter(frame["method"] == row["method"]).sort("bandwidth_Bps")
        reached = part.filter(part["utilization"] >= row["target"])
        assert row["bandwidth_Bps"] == (reached["bandwidth_Bps"][0] if len(reached) else None)
    assert main(["sweep-bandwidth", "--methods", "diloco,streaming_diloco", "--grid", "0.1:1000:5",
                 "--fragments", "8", "--overlap", "1", "--json", "-o", str(tmp_path / "s")]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["method"] for r in rows} == {"diloco", "streaming_diloco"}
    lowest = {r["method"]: r["bandwidth_Bps"] for r in rows if r["target"] == 0.9}
    assert lowest["streaming_diloco"] <= lowest["diloco"]  # overlap and fragments lower the need
    assert {p.name for p in (tmp_path / "s").iterdir()} == {"sweep.parquet", "thresholds.parquet", "report.html", "meta.json", ".netsim-manifest.json"}
    assert main(["sweep-bandwidth", "--methods", "magic"]) == 2
    assert main(["sweep-bandwidth", "--grid", "1:x:3"]) == 2


def test_straggler_wait_and_internet_topology():
    from pathlib import Path

    from netsim.topology import load_topology

    model = ComputeModel(layers=24, step_time=0.1, params=1e8)
    even = util("diloco", model, workers=3, bandwidth=1e10, inner_steps=10)
    slow = util("diloco", model, workers=3, bandwidth=1e10, inner_steps=10, speeds=np.array([1, 1, 1.5]))
    assert even.straggler_wait_s == pytest.approx(0.0, abs=1e-12)
    # the two fast workers wait 0.5 s per outer step for the slow one, 3 outer steps: mean 2 x 1.5 / 3
    assert slow.straggler_wait_s == pytest.approx(2 * 1.5 / 3, rel=1e-9)
    topo = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "internet4.yaml")
    wan = util("diloco", model, workers=4, bandwidth=0, topology=topo, inner_steps=20)
    assert 0 < wan.utilization < 1 and wan.sent_per_worker_B == pytest.approx(2 * 3 / 4 * 2e8 * 3, rel=1e-9)
    with pytest.raises(ConfigError):
        util("diloco", model, workers=5, bandwidth=0, topology=topo)


def test_workers_that_are_gpu_groups_shard_their_syncs():
    from pathlib import Path

    from netsim.topology import load_topology

    model = ComputeModel(layers=24, step_time=0.1, params=1e8)
    topo = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "internet4.yaml")
    one = util("diloco", model, workers=4, bandwidth=0, topology=topo, inner_steps=20)
    eight = util("diloco", model, workers=4, bandwidth=0, topology=topo, inner_steps=20, gpus_per_worker=8)
    # the same bytes cross the WAN (8 shards of 1/8), but 8 GPUs per worker send them
    assert eight.sent_total_B == pytest.approx(one.sent_total_B, rel=1e-6)
    assert eight.wall_s <= one.wall_s * (1 + 1e-9)  # 8 parallel rings never slower than one
    gossip = util("noloco", model, workers=4, bandwidth=0, topology=topo, inner_steps=20, gpus_per_worker=4)
    assert gossip.sent_total_B == pytest.approx(4 * 2 * 2e8 * 3, rel=1e-6)
    with pytest.raises(ConfigError):
        util("diloco", model, workers=4, bandwidth=1e9, gpus_per_worker=2)

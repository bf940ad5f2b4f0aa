"""Real training on the simulated clock: bytes, lateness, determinism."""

import polars as pl
import pytest

from netsim.collectives import Communicator
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.training.coupled import TrainConfig, train
from netsim.training.model import ModelConfig, TinyLM

SMALL = ModelConfig(layers=1, width=32, heads=2, context=16)


def run(method, bandwidth=1.25e9, latency=0.01, exchange="bf16", steps=12, workers=3, model=SMALL, fragments=1):
    topo = full_mesh(workers, bandwidth, latency)
    sim = Simulation(topo, record_links=False)
    comm = Communicator(sim, topo.gpus)
    cfg = TrainConfig(method=method, steps=steps, inner_steps=4, batch=4, model=model, step_time=0.05,
                      exchange=exchange, fragments=fragments)
    res = train(comm, cfg)
    results = sim.run()
    return res["frame"](), results, res


def test_bytes_are_tensor_elements_times_bits():
    numel = sum(p.numel() for p in TinyLM(SMALL).parameters())
    frame, results, res = run("diloco", exchange="e3m0")
    syncs = len(res["calls"]())
    assert syncs == 3
    payload = (numel * 4 + 7) // 8 + 4  # 4-bit values plus the fp32 scale
    # each worker's own scale: an all-gather of the 3 workers' bytes, each sending the other 2 payloads (ring)
    assert results.transfers["size_B"].sum() == syncs * 3 * 2 * payload
    assert res["calls"]()["size_B"].to_list() == [3 * payload] * syncs  # (netsim's size: the gathered output)
    bf16, results16, _ = run("diloco", exchange="bf16")
    # bf16: an all-reduce of the values; ring between 3 workers: each sends 2 (n-1)/n of the payload
    assert results16.transfers["size_B"].sum() == pytest.approx(syncs * 3 * 2 * (2 / 3) * 2 * numel, abs=syncs * 3 * 4)


def test_a_late_message_delays_exactly_the_steps_that_need_it():
    fast, _, _ = run("diloco", bandwidth=1.25e10)
    slow, _, res = run("diloco", bandwidth=1.25e5)
    for frame in (fast, slow):
        w0 = frame.filter(pl.col("worker") == 0).sort("step")
        durations = w0["time_s"].diff().fill_null(w0["time_s"][0]).to_list()
        for step, d in zip(w0["step"].to_list(), durations):
            if step % 4:  # steps without a sync take their compute time only
                assert d == pytest.approx(0.05, rel=1e-9)
    # the sync step (4) ends exactly one sync later than its compute: 4 steps of 0.05 s, then the all-reduce
    sync = res["calls"]().row(0, named=True)
    assert sync["label"] == "diloco@4"
    end = slow.filter((pl.col("worker") == 0) & (pl.col("step") == 4))["time_s"][0]
    assert sync["start_s"] == pytest.approx(0.2, rel=1e-9)
    assert end == pytest.approx(0.2 + (sync["end_s"] - sync["start_s"]), rel=1e-9)
    assert end > 0.3  # the slow link (1 Mbit/s) is what it waited for


def test_same_seed_same_losses_bit_for_bit_and_ddp_moves_h_times_diloco():
    a, ra, _ = run("ddp")
    b, rb, _ = run("ddp")
    assert a["loss"].to_list() == b["loss"].to_list()
    d, rd, _ = run("diloco")
    assert ra.transfers["size_B"].sum() == pytest.approx(4 * rd.transfers["size_B"].sum(), rel=1e-6)
    assert a["loss"][0] < 6.0  # starts near ln(256) = 5.55


def test_streaming_moves_diloco_bytes_in_fragments_and_noloco_pairs_without_a_barrier():
    two = ModelConfig(layers=2, width=32, heads=2, context=16)
    d, rd, diloco = run("diloco", model=two)
    s, rs, res = run("streaming_diloco", model=two, fragments=2)
    assert rs.transfers["size_B"].sum() == pytest.approx(rd.transfers["size_B"].sum(), rel=1e-3)
    assert len(res["calls"]()) > len(diloco["calls"]())  # more, smaller syncs
    n, rn, _ = run("noloco", workers=4)
    # each round every worker sends its outer gradient and slow weights (2 payloads) to one peer
    assert n["loss"].is_finite().all()
    assert rn.transfers["size_B"].sum() > 0


def test_train_cli_built_in_scenario_short(tmp_path, capsys):
    from netsim.cli import main

    out = tmp_path / "train"
    assert main(["train", "--steps", "4", "-o", str(out)]) == 0
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary["method"].to_list() == ["ddp", "diloco", "streaming_diloco", "noloco"]
    steps = pl.read_parquet(out / "steps.parquet")
    assert len(steps) == 4 * 4 * 4  # methods x workers x steps
    assert (steps["sent_B"].diff().drop_nulls() >= 0).sum() > 0
    assert "Loss against" in (out / "report.html").read_text()
    import json

    events = json.loads((out / "timeline.json").read_text())["traceEvents"]
    processes = [e["args"]["name"] for e in events if e["name"] == "process_name"]
    assert len(processes) == 4 * 4 and processes[0].startswith("ddp worker 0")
    # with a fixed step time, every step of every worker is one compute slice of that time (the script's
    # other compute takes none); the last slice's end never passes the last step's recorded time
    computes = [e for e in events if e.get("cat") == "compute" and e["dur"] > 0]
    assert len(computes) == 4 * 4 * 4 and [e["dur"] for e in computes] == pytest.approx([50_000.0] * 64)
    last = max(e["ts"] + e["dur"] for e in events if e["ph"] == "X")
    assert last / 1e6 >= steps["time_s"].max() * (1 - 1e-9)
    from netsim.traces import load_trace

    ddp = load_trace(out / "chakra_ddp").validate()  # each method's timing as Chakra ET
    assert len(ddp.nodes) == 4 and ddp.counts()["collective"] == 4 * 4  # an all-reduce per worker and step
    bad = tmp_path / "bad.yaml"
    bad.write_text("topology: {kind: single_switch, gpus: 2}\nmethods: [magic]\n")
    assert main(["train", str(bad), "-o", str(tmp_path / "x")]) == 2
    assert "methods" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_gossip_averages_with_neighbours_and_single_merge_ends_in_consensus():
    topo = full_mesh(4, 1.25e9, 0.01)
    sim = Simulation(topo, record_links=False)
    comm = Communicator(sim, topo.gpus)
    cfg = TrainConfig(method="gossip", steps=8, inner_steps=4, batch=4, model=SMALL, step_time=0.05,
                      graph="ring", final_merge=True)
    res = train(comm, cfg)
    results = sim.run()
    frame = res["frame"]()
    merged = frame.filter(pl.col("step") == 9)
    assert len(merged) == 4  # every worker evaluated the merged model
    payload = sum(p.numel() for p in TinyLM(SMALL).parameters()) * 2
    gossip_bytes = results.transfers.filter(pl.col("tag").str.starts_with("send"))["size_B"].sum()
    assert gossip_bytes == 2 * 4 * 2 * payload  # 2 rounds x 4 workers x 2 ring neighbours
    assert res["calls"]()["size_B"].to_list() == [payload] and res["syncs"]() == 3  # 2 rounds and the merge


def test_device_flops_set_the_step_time(tmp_path):
    from netsim.scenario.train import load_train_scenario, run_training
    from netsim.training.model import TinyLM

    path = tmp_path / "t.yaml"
    path.write_text("topology: {kind: full_mesh, gpus: 2, bandwidth: 100Gbps}\nmethods: [diloco]\nsteps: 4\n"
                    "inner_steps: 2\nbatch: 2\nmodel: {layers: 1, width: 32, heads: 2, context: 16}\n"
                    "device_flops: 1e12\nmfu: 0.5\n")
    cfg, topo, _ = load_train_scenario(path)
    out = run_training(cfg, topo)
    params = sum(p.numel() for p in TinyLM(ModelConfig(1, 32, 2, 16)).parameters())
    expected = 6 * params * 2 * 16 / (1e12 * 0.5)
    assert out["steps"]["compute_s"].to_list() == pytest.approx([expected] * 8, rel=1e-12)

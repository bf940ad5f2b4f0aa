"""Validation of the low-communication training schedules. Writes results/lowcomm.txt.

Run: python validation/lowcomm.py   (a few seconds)
"""

from __future__ import annotations

import math
import sys

import numpy as np

from netsim.collectives import Communicator, ring_all_reduce_time, time_collective
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.workloads.compute import ComputeModel
from netsim.workloads.dag import run_dag
from netsim.workloads.ddp import ddp
from netsim.workloads.gossip import consensus_spread, gossip_round, neighbours
from netsim.workloads.sweep import sweep_bandwidth, thresholds
from netsim.workloads.utilization import UtilizationConfig, utilization
from text_report import publish  # a sibling: validation/ is on the path

MODEL = ComputeModel(layers=24, step_time=0.1, params=1e9)


def util(method: str, model: ComputeModel, **kw):
    return utilization(UtilizationConfig(method, model, **kw))


def ddp_ring(lines: list[str]) -> None:
    workers, bw, lat = 8, 1.25e9, 5e-3
    model = ComputeModel(layers=1, step_time=0.05, params=2e8)  # one gradient bucket: syncs never overlap
    topo = full_mesh(workers, bw, lat)
    sim = Simulation(topo, record_links=False)
    result = run_dag(Communicator(sim, topo.gpus), model, ddp(model, steps=3))
    sim.run()
    syncs = result().syncs
    worst = max(abs((s.end - s.start) / ring_all_reduce_time(workers, s.nbytes, lat, bw) - 1) for s in syncs)
    lines.append(f"1. DDP gradient all-reduce on {workers} workers, 10 Gbit/s, 5 ms: {len(syncs)} "
                 f"syncs, worst relative error against the ring formula {worst:.1e}")


def bytes_and_demand(lines: list[str]) -> None:
    h = 10
    ddp = util("ddp", MODEL, workers=4, bandwidth=1.25e10, outer_steps=h)
    diloco = util("diloco", MODEL, workers=4, bandwidth=1.25e10, inner_steps=h, outer_steps=1)
    lines.append(f"2. bytes over {h} inner steps: DDP {ddp.sent_total_B:.4g}, "
                 f"DiLoCo (H = {h}) {diloco.sent_total_B:.4g}, "
                 f"ratio {ddp.sent_total_B / diloco.sent_total_B:.4f} (H = {h})")
    base = util("diloco", MODEL, workers=2, bandwidth=1.25e9)
    for f in (2, 4, 8):
        s = util("streaming_diloco", MODEL, workers=2, bandwidth=1.25e9, fragments=f)
        lines.append(f"3. Streaming DiLoCo F = {f}: peak demand {s.peak_demand_Bps * 8 / 1e9:.2f} Gbit/s = DiLoCo's "
                     f"{base.peak_demand_Bps * 8 / 1e9:.2f} / {base.peak_demand_Bps / s.peak_demand_Bps:.3f}")
    for bits in (16, 8, 4):
        s = util("streaming_diloco", MODEL, workers=2, bandwidth=1.25e9, fragments=8, bits=bits)
        lines.append(f"   {bits:>2}-bit exchange: {s.sent_total_B / 1e9:.3f} GB in total")


def latency_argument(lines: list[str]) -> None:
    lines.append("4. latency-bound sync (64-byte messages, 10 ms links): tree all-reduce / pairwise exchange")
    for n in (8, 32, 128, 512):
        topo = full_mesh(n, 1e12, 0.01)
        tree, _ = time_collective(topo, "all_reduce", 64, algo="tree", record_links=False)
        pair, _ = time_collective(topo, "all_reduce", 64, algo="direct", nodes=topo.gpus[:2], record_links=False)
        lines.append(f"   n = {n:>4}: ratio {tree / pair:6.2f}   log2(n) = {math.log2(n):5.2f}")


def stragglers(lines: list[str]) -> None:
    lines.append("5. stragglers (lognormal jitter sigma 0.3), 10 Gbit/s, 50 ms, 100M parameters, H = 20, each sync")
    lines.append("   one all-reduce (buckets of the whole model; per layer, 24 all-reduces in a row would pay 24 x the latency):")
    model = ComputeModel(layers=24, step_time=0.1, params=1e8)
    for n in (4, 16, 64):
        kw = dict(workers=n, bandwidth=1.25e9, latency=0.05, inner_steps=20, outer_steps=3, jitter=0.3, seed=1,
                  bucket_bytes=float("inf"))
        d = util("diloco", model, **kw)
        no = util("noloco", model, **kw)
        lines.append(f"   n = {n:>3}: utilisation DiLoCo {d.utilization:.3f}, NoLoCo {no.utilization:.3f}")


def consensus(lines: list[str]) -> None:
    lines.append("6. consensus spread with real vectors (64 dims): factor per round over the first 8 rounds, and in")
    lines.append("   the tail (rounds 150-200, where the slowest mode is left); ring theory: the slowest mode")
    lines.append("   contracts by (1 - (2/3)(1 - cos(2 pi / n)))^2 ~ 1 - 8.4/n^2 per round")
    rng = np.random.default_rng(0)
    for n in (16, 32, 64):
        start = rng.normal(size=(n, 64))
        for graph in ("random", "ring"):
            plan = neighbours(graph, n, 200, np.random.default_rng(1))
            values = start.copy()
            spreads = [consensus_spread(values)]
            for r in range(200):
                values = gossip_round(values, plan[r])
                spreads.append(consensus_spread(values))
            early = (spreads[8] / spreads[0]) ** (1 / 8)
            converged = spreads[150] < 1e-20 * spreads[0]  # down to rounding noise: no rate left to read
            tail = "converged" if converged else f"{(spreads[200] / spreads[150]) ** (1 / 50):.4f}"
            theory = ((1 - 2 / 3 * (1 - math.cos(2 * math.pi / n))) ** 2) if graph == "ring" else 0.5
            lines.append(f"   n = {n:>3} {graph:>6}: first rounds {early:.3f}, tail {tail}, theory {theory:.4f}")


def layer_dag(lines: list[str]) -> None:
    targets = (0.5, 0.8, 0.9, 0.95, 0.99)
    lines.append("7. per-layer DAG: lowest bandwidth (Gbit/s, 200 log-spaced points 0.1-1000) reaching each "
                 "utilisation target;")
    lines.append("   2 workers, 24 layers, 1e9 parameters, 0.1 s steps, H = 100, 16-bit, no latency")
    lines.append("   " + f"{'':<28}" + "".join(f"{100 * t:>8g}%" for t in targets))
    grid = np.logspace(-1, 3, 200) * 1e9 / 8
    for label, method, kw in (("DiLoCo", "diloco", {}), ("Streaming F = 8, tau = 0", "streaming_diloco",
                                                          {"fragments": 8}),
                              ("Streaming F = 8, tau = 1", "streaming_diloco", {"fragments": 8, "overlap": 1}),
                              ("CO2", "co2", {})):
        frame = sweep_bandwidth([method], grid, UtilizationConfig(method, MODEL, workers=2, inner_steps=100, **kw))
        found = thresholds(frame, targets)["bandwidth_Bps"].to_list()
        lines.append(f"   {label:<28}" + "".join(f"{'never':>9}" if b is None else f"{b * 8 / 1e9:>9.2f}"
                                                  for b in found))


def main() -> int:
    lines: list[str] = []
    for part in (ddp_ring, bytes_and_demand, latency_argument, stragglers, consensus, layer_dag):
        part(lines)
    publish("lowcomm", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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


# The Streaming DiLoCo paper's Table 4 (Gbit/s reaching 50/80/90/95/99% compute utilisation; 2 replicas, H = 100,
# strided fragments of 3 layers; its grid fits 50 log-spaced points from 0.1 to 1000 Gbit/s, netsim's default)
PAPER_TABLE_4 = {
    "1B": {"diloco": [1.4, 6.2, 13.3, 23.3, 86.8], "tau0": [1.4, 5.2, 9.1, 16.0, 28.1], "tau1": [1.4, 4.3, 6.2, 9.1, 11.0],
           "tau1_fp4": [0.4, 0.9, 1.7, 2.0, 3.0]},
    "10B": {"diloco": [1.7, 7.5, 16.0, 33.9, 104.8], "tau0": [1.7, 5.2, 9.1, 13.3, 19.3],
            "tau1": [1.7, 3.6, 5.2, 6.2, 7.5], "tau1_fp4": [0.4, 0.9, 1.4, 1.4, 1.7]},
    "100B": {"diloco": [3.0, 11.0, 23.3, 49.4, 184.2], "tau0": [2.4, 6.2, 9.1, 11.0, 19.3],
             "tau1": [1.7, 3.6, 4.3, 5.2, 5.2], "tau1_fp4": [0.5, 0.9, 1.1, 1.1, 1.4]},
}
PAPER_SCALES = {"1B": (24, 0.1, 1e9), "10B": (48, 0.8, 1e10), "100B": (108, 4.9, 1e11)}  # layers, step s, params
PAPER_VARIANTS = {"diloco": ("diloco", {}), "tau0": ("streaming_diloco", {"overlap": 0}),
                  "tau1": ("streaming_diloco", {"overlap": 1}), "tau1_fp4": ("streaming_diloco", {"overlap": 1, "bits": 4})}


def paper_table(lines: list[str]) -> None:
    from netsim.workloads.sweep import DEFAULT_GRID, DEFAULT_TARGETS

    gbit = DEFAULT_GRID * 8 / 1e9
    lines.append("8. Streaming DiLoCo's Table 4 on the paper's setup (2 replicas, H = 100, fragments of 3 layers, 16-bit")
    lines.append("   or FP4, 50 log-spaced bandwidths 0.1-1000 Gbit/s): netsim's thresholds (Gbit/s) and, per cell, how")
    lines.append("   many grid steps netsim is above (+) or below (-) the paper")
    diffs: dict[str, list[int]] = {}
    for scale, (layers, step, params) in PAPER_SCALES.items():
        model = ComputeModel(layers, step, params)
        for name, (method, kw) in PAPER_VARIANTS.items():
            cfg = UtilizationConfig(method, model, workers=2, inner_steps=100, fragments=layers // 3, **kw)
            found = thresholds(sweep_bandwidth([method], DEFAULT_GRID, cfg), DEFAULT_TARGETS)["bandwidth_Bps"].to_list()
            ours = [None if b is None else b * 8 / 1e9 for b in found]
            steps = [None if o is None else int(np.argmin(abs(gbit - o)) - np.argmin(abs(gbit - q)))
                     for o, q in zip(ours, PAPER_TABLE_4[scale][name])]
            diffs.setdefault(name, []).extend(d for d in steps if d is not None)
            lines.append(f"   {scale:>4} {name:<9} " + " ".join("never" if o is None else f"{o:6.1f}" for o in ours)
                         + "   paper " + " ".join(f"{q:5.1f}" for q in PAPER_TABLE_4[scale][name])
                         + "   steps " + " ".join("?" if d is None else f"{d:+d}" for d in steps))
    lines.append("   per variant, cells netsim is above / equal to / below the paper: " + "; ".join(
        f"{k} {sum(d > 0 for d in v)}/{sum(d == 0 for d in v)}/{sum(d < 0 for d in v)}" for k, v in diffs.items()))


def main() -> int:
    lines: list[str] = []
    for part in (ddp_ring, bytes_and_demand, latency_argument, stragglers, consensus, layer_dag, paper_table):
        part(lines)
    publish("lowcomm", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: what concurrency costs. Work that shares the fabric at once against the same work run alone.

1. `dp8`: tp 8 x dp 16 on topologies/leafspine128_2to1.yaml, a 64 MiB all-reduce on every `group: dp`
   (eight 16-GPU groups, ring, ECMP) — all eight at once, against the same eight run one after another
   (each alone on the fabric). Printed: seconds and transfers per second for each, and their ratio.
2. `jobs`: the README's two-job scenario (job a: 64 GPUs fragmented, 256 MiB ring all-reduce; job b:
   64 GPUs random, starting at 1 ms, 64 MiB all-to-all), ECMP — both jobs together, against the sum of
   each job alone.
3. The same concurrent runs on the reference executor (compiled loop off), for scale.

Wall seconds are the best of 3 runs (simulation set-up and run; the engine's one-time kernel loading is
done by a warm-up first). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/concurrency.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from netsim.network import FluidNetwork
from netsim.scenario.loader import scenario_from_dict
from netsim.scenario.runner import simulate

ROOT = Path(__file__).resolve().parents[1]
TOPO = str(ROOT / "topologies" / "leafspine128_2to1.yaml")
DP8 = {"topology": TOPO, "routing": "ecmp", "parallel": {"tp": 8, "dp": 16},
       "workload": [{"op": "all_reduce", "size": "64MiB", "group": "dp", "algo": "ring"}]}
JOBS = {"topology": TOPO, "routing": "ecmp", "jobs": [
    {"name": "a", "gpus": 64, "placement": "fragmented", "workload": [{"op": "all_reduce", "size": "256MiB",
                                                                        "algo": "ring"}]},
    {"name": "b", "gpus": 64, "placement": "random", "start": "1ms", "workload": [{"op": "all_to_all",
                                                                                    "size": "64MiB"}]}]}


def timed(config: dict, only: str | None = None, repeat: int = 3) -> tuple[float, int, float]:
    """(best wall seconds, transfers, simulated end time) of the scenario (or one job of it)."""
    best, transfers, end = float("inf"), 0, 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        scenario = scenario_from_dict(config, source="benchmark")
        results = simulate(scenario, "ecmp", only=only)
        best = min(best, time.perf_counter() - t0)
        transfers, end = results.meta["transfers"], results.meta["end_time"]
    return best, transfers, end


def dp_alone() -> tuple[float, int, float]:
    """The eight dp all-reduces one after another in one simulation (one item per group, by rank names)."""
    from netsim.collectives import ParallelSpec, parallel_groups
    from netsim.topology import load_topology

    topo = load_topology(TOPO)
    groups = parallel_groups(topo.gpus, ParallelSpec(tp=8, dp=16))["dp"]
    items = [{"op": "all_reduce", "size": "64MiB", "algo": "ring", "ranks": [topo.node_names[int(g)] for g in nodes]}
             for nodes in groups]
    return timed({"topology": TOPO, "routing": "ecmp", "workload": items})


def main() -> None:
    timed(DP8, repeat=1)  # warm-up: kernels loaded
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    wall, n, end = timed(DP8)
    alone, n_alone, end_alone = dp_alone()
    print(f"dp8  together: {wall:.3f} s, {n} transfers, {n / wall:,.0f} transfers/s, simulated {end * 1e3:.3f} ms")
    print(f"dp8  one by one: {alone:.3f} s, {n_alone} transfers, {n_alone / alone:,.0f} transfers/s, simulated "
          f"{end_alone * 1e3:.3f} ms")
    print(f"dp8  concurrency penalty (transfers/s alone / together): {(n_alone / alone) / (n / wall):.2f}x")
    both, n_both, end_both = timed(JOBS)
    a, na, _ = timed(JOBS, only="a")
    b, nb, _ = timed(JOBS, only="b")
    print(f"jobs together: {both:.3f} s ({n_both} transfers, simulated {end_both * 1e3:.3f} ms); "
          f"a alone {a:.3f} s, b alone {b:.3f} s")
    print(f"jobs together / sum alone: {both / (a + b):.2f}x")
    FluidNetwork.compile_dataflows = False
    ref, n_ref, end_ref = timed(DP8, repeat=1)
    ref_jobs, _, end_ref_jobs = timed(JOBS, repeat=1)
    FluidNetwork.compile_dataflows = True
    print(f"reference executor: dp8 together {ref:.3f} s ({n_ref / ref:,.0f} transfers/s, simulated "
          f"{end_ref * 1e3:.3f} ms), jobs together {ref_jobs:.3f} s (simulated {end_ref_jobs * 1e3:.3f} ms)")
    print(f"compiled speed-up over the reference: dp8 {ref / wall:.1f}x, jobs {ref_jobs / both:.1f}x")


if __name__ == "__main__":
    main()

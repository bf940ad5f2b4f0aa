"""Benchmark: trace replay at scale. traces/ddp4 (4 ranks, 20 nodes each: 9 bucket all-reduces of 257 KiB
and the compute between them) rescaled to N data-parallel ranks and replayed on topologies/fattree1024.yaml
(k = 16 three-tier fat-tree, 1,024 GPUs), ECMP, contiguous placement.

Printed per N: wall seconds (rescale, program lowering and simulation; interpreter start-up and the
engine's one-time kernel loading excluded), peak memory of the process (max RSS, each N in its own
process), program nodes, transfers, and the simulated iteration time. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/replay_scale.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (64, 256, 1024)


def one(n: int) -> dict:
    from netsim.topology import load_topology
    from netsim.traces import load_trace
    from netsim.traces.replay import replay, rescale

    topo = load_topology(ROOT / "topologies" / "fattree1024.yaml")
    trace = load_trace(ROOT / "traces" / "ddp4")
    replay(rescale(trace, 4).validate(), topo)  # warm-up: kernels loaded
    t0 = time.perf_counter()
    big = rescale(trace, n, gpus=len(topo.gpus)).validate()
    result = replay(big, topo)
    wall = time.perf_counter() - t0
    return {"ranks": n, "wall_s": wall, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "nodes": sum(len(v) for v in big.nodes.values()), "calls": len(result.collectives),
            "iteration_s": result.time_s}


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(one(int(sys.argv[1]))))
        return
    import os

    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    print(f"{'ranks':>6} {'wall s':>8} {'max RSS MiB':>12} {'nodes':>8} {'iteration':>12}")
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, str(n)], check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['ranks']:>6} {r['wall_s']:>8.2f} {r['max_rss_mib']:>12.0f} {r['nodes']:>8} "
              f"{r['iteration_s'] * 1e3:>10.3f} ms")


if __name__ == "__main__":
    main()

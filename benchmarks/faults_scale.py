"""Benchmark: a production fault study at scale — a 2,048-GPU job over 30 simulated days.

The job: 256 data-parallel replicas of 8 tensor-parallel GPUs (one 8-GPU server each) on a rail-optimized
two-tier fabric (400 Gb/s per GPU, 1:1; the fabric `benchmarks/scale.py` builds), a 22B-parameter model's
bf16 gradients (44 GB, 5.5 GB per tensor-parallel shard) all-reduced every iteration after 10 s of
compute, a checkpoint every 30 minutes written in 30 s. Faults: `netsim.faults.production`'s sources (MTBFs
from the Llama 3 405B report), drawn over the run. Each mode (the C4D-like detector with re-planning,
the manual-diagnosis baseline, the watchdog alone) runs the same fault stream.

Prints the wall-clock seconds per mode and per simulated day, the faults that struck, and the
error-induced downtime share per mode (with its load average: a figure from a busy machine is not a goal).

    .venv/bin/python benchmarks/faults_scale.py [--gpus 2048] [--days 30] [--seeds 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=2048)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    from scale import fabric

    from netsim.faults.production import production_study
    from netsim.faults.spec import JobSpec, RecoveryConfig

    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    t0 = time.perf_counter()
    topo = fabric(args.gpus)
    replicas = args.gpus // 8
    iteration = 10.0
    job = JobSpec(replicas=replicas, tp=8, compute_s=iteration, tp_bytes=0, dp_bytes=44 * 10**9, iterations=1,
                  checkpoint_every=int(1800 // iteration))
    recovery = RecoveryConfig(policy="replan", checkpoint_write_s=30.0)
    stages = []
    result = production_study(topo, job, args.days, seeds=args.seeds, recovery=recovery,
                              progress=lambda text: stages.append((time.perf_counter(), text)))
    total = time.perf_counter() - t0
    print(f"{args.gpus:,} GPUs ({replicas} replicas x 8), {args.days:g} days, iteration {result.iteration_s:.3f} s, "
          f"{args.seeds} seed(s): {total:.1f} s in all ({total / (args.days * args.seeds):.2f} s per simulated day, "
          "fabric, routing and every mode included)")
    ends = [t for t, _ in stages[1:]] + [t0 + total]
    for (start, text), end in zip(stages, ends):
        print(f"  {text}: {end - start:.1f} s")
    for row in result.downtime.iter_rows(named=True):
        runs = result.runs.filter(result.runs["mode"] == row["mode"])
        print(f"  {row['mode']:>8}: error-induced downtime {100 * row['downtime_share']:.2f}% "
              f"({int(runs['faults'].sum())} faults struck; checkpoint writes {100 * row['checkpoint_share']:.2f}%)")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

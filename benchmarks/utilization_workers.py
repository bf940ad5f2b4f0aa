"""Benchmark: `netsim utilization --method ddp` against the number of workers — seconds of wall time per
simulated training step (24 layers, 0.1 s per step, 10 Gbit/s, no latency: every per-layer all-reduce
overlaps the others).

Two models: 1e9 parameters (83,333,333 bytes per layer: the ring's pieces differ by one byte, so every
rank is simulated, 2n(n - 1) transfers per all-reduce) and 1,006,632,960 parameters (5 x 2^24 bytes per
layer: equal pieces for every worker count here, so one link stands for all, 2(n - 1) drains per
all-reduce). The full fluid simulation (every transfer through the max-min model) is the reference, up
to 16 workers. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import sys
import time

from netsim.workloads.compute import ComputeModel
from netsim.workloads.utilization import utilization

WORKERS = (2, 4, 8, 16, 32, 64, 128, 256)
FULL_UP_TO = 16
MODELS = {"unequal pieces": ComputeModel(24, 0.1, 1e9), "equal pieces": ComputeModel(24, 0.1, 24 * 5 * 2**24 / 2)}


def seconds_per_step(workers: int, model: ComputeModel, full: bool, steps: int = 1) -> float:
    tic = time.perf_counter()
    utilization("ddp", model, workers=workers, bandwidth=10e9 / 8, outer_steps=steps, full_network=full)
    return (time.perf_counter() - tic) / steps


def main() -> int:
    seconds_per_step(2, MODELS["unequal pieces"], True)  # warm up: imports and first-call costs out of the figures
    print(f"{'workers':>7} {'full fluid':>11} {'unequal':>9} {'equal':>9} {'full/unequal':>13}   (s per step)")
    for n in WORKERS:
        full = seconds_per_step(n, MODELS["unequal pieces"], True) if n <= FULL_UP_TO else None
        unequal = seconds_per_step(n, MODELS["unequal pieces"], False)
        equal = seconds_per_step(n, MODELS["equal pieces"], False)
        ratio = f"{full / unequal:13.1f}" if full else f"{'-':>13}"
        shown = f"{full:11.3f}" if full else f"{'-':>11}"
        print(f"{n:>7} {shown} {unequal:9.3f} {equal:9.4f} {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

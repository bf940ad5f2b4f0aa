"""Benchmark: `netsim utilization` against the number of workers — seconds of wall time and simulation
events per simulated training step, 2 to 256 workers (24 layers, 0.1 s per step, 10 Gbit/s, no latency).

Every method runs on the per-layer training DAG. ddp: 24 per-layer all-reduces a step, one at a time on
the group's stream. Two ddp models: 1e9 parameters (83,333,333 bytes per layer: the ring's pieces differ
by one byte, so every rank is simulated, 2n(n - 1) transfers per all-reduce) and 1,006,632,960
parameters (5 x 2^24 bytes per layer: equal pieces for every worker count here, so one link stands for
all, 2(n - 1) drains per all-reduce). The full fluid simulation (every transfer through the max-min model)
is the reference, up to 16 workers. diloco and noloco (H = 20, 3 periods) show the cost of the compute
that runs in closed form between syncs. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import sys
import time

from netsim.workloads.compute import ComputeModel
from netsim.workloads.utilization import UtilizationConfig, utilization

WORKERS = (2, 4, 8, 16, 32, 64, 128, 256)
FULL_UP_TO = 16
MODELS = {"unequal pieces": ComputeModel(24, 0.1, 1e9), "equal pieces": ComputeModel(24, 0.1, 24 * 5 * 2**24 / 2)}


def per_step(method: str, workers: int, model: ComputeModel, full: bool = False, **kw) -> tuple[float, float]:
    """(wall seconds, events) per simulated step."""
    tic = time.perf_counter()
    r = utilization(UtilizationConfig(method, model, workers=workers, bandwidth=10e9 / 8, full_network=full, **kw))
    steps = r.run.steps
    return (time.perf_counter() - tic) / steps, r.events_per_step


def main() -> int:
    per_step("ddp", 2, MODELS["unequal pieces"], True, outer_steps=1)  # warm up: imports and first calls
    print(f"{'workers':>7} {'ddp full':>9} {'unequal':>9} {'equal':>9} {'full/uneq':>10} {'events':>7}   "
          f"{'diloco':>9} {'events':>7} {'noloco':>9} {'events':>7}   (s and events per simulated step)")
    for n in WORKERS:
        full = per_step("ddp", n, MODELS["unequal pieces"], True, outer_steps=1)[0] if n <= FULL_UP_TO else None
        unequal, ev = per_step("ddp", n, MODELS["unequal pieces"], outer_steps=1)
        equal = per_step("ddp", n, MODELS["equal pieces"], outer_steps=1)[0]
        diloco, dev = per_step("diloco", n, MODELS["unequal pieces"], inner_steps=20)
        noloco, nev = per_step("noloco", n, MODELS["unequal pieces"], inner_steps=20)
        ratio = f"{full / unequal:10.1f}" if full else f"{'-':>10}"
        shown = f"{full:9.3f}" if full else f"{'-':>9}"
        print(f"{n:>7} {shown} {unequal:9.3f} {equal:9.4f} {ratio} {ev:7.0f}   {diloco:9.5f} {dev:7.1f} "
              f"{noloco:9.5f} {nev:7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

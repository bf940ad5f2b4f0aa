"""Benchmark: a full sweep-bandwidth — 5 methods x 50 bandwidths x 3 model sizes (24, 48 and
108 layers; 1.3B, 2.7B and 7B parameters scaled with them), H = 100, 2 workers. Goal on the 2-core
machine: under 60 s. Prints wall time and runs per second; asserts nothing.
"""

from __future__ import annotations

import sys
import time

from netsim.workloads.compute import ComputeModel
from netsim.workloads.methods import SWEEP_DEFAULT
from netsim.workloads.sweep import DEFAULT_GRID, sweep_bandwidth
from netsim.workloads.utilization import UtilizationConfig

METHODS = list(SWEEP_DEFAULT)  # ddp, diloco, streaming_diloco, noloco, co2
MODELS = {24: 1.3e9, 48: 2.7e9, 108: 7e9}


def main() -> int:
    start = time.perf_counter()
    runs = 0
    print(f"{'layers':>6} {'params':>8} {'runs':>5} {'wall s':>8}")
    for layers, params in MODELS.items():
        t0 = time.perf_counter()
        model = ComputeModel(layers, 0.1 * params / 1.3e9, params)
        config = UtilizationConfig(METHODS[0], model, workers=2, inner_steps=100, fragments=8, overlap=1)
        frame = sweep_bandwidth(METHODS, DEFAULT_GRID, config)
        runs += len(frame)
        print(f"{layers:>6} {params:>8.2g} {len(frame):>5} {time.perf_counter() - t0:>8.2f}")
    wall = time.perf_counter() - start
    print(f"total: {runs} runs in {wall:.1f} s ({runs / wall:.1f} runs/s); goal 60 s, ratio {wall / 60:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

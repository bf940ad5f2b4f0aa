"""Benchmark: in the built-in `netsim train` scenario, the simulation's own overhead —
everything but the torch forward, backward and optimizer steps — against the torch compute time.
Goal: at most 10%. Prints both and the ratio; asserts nothing.
"""

from __future__ import annotations

import sys
import time

import torch

from netsim.scenario.train import load_train_scenario, run_training


def main() -> int:
    torch.set_num_threads(1)  # the 2-core machine: one thread for torch keeps timings steady
    cfg, topo, _ = load_train_scenario(None)
    tic = time.perf_counter()
    out = run_training(cfg, topo)
    total = time.perf_counter() - tic
    torch_s = float(out["summary"]["torch_s"].sum())
    overhead = total - torch_s
    print(f"built-in scenario: {len(cfg.methods)} methods x {cfg.steps} steps x 4 workers")
    print(f"total wall {total:.2f} s, torch forward/backward/optimizer {torch_s:.2f} s, "
          f"everything else {overhead:.2f} s = {100 * overhead / torch_s:.1f}% of torch (goal <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

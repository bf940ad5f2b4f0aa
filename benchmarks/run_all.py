"""`make bench`: every benchmark in turn. They print figures and ratios; none asserts on time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ["max_min.py", "ring_allreduce.py", "algorithms_1024.py", "contention.py", "sweep_bandwidth.py", "utilization_workers.py", "sweep_overhead.py",
              "training_overhead.py", "concurrency.py", "replay_scale.py", "torchrun.py"]


def main() -> int:
    here = Path(__file__).resolve().parent
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(here / name)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

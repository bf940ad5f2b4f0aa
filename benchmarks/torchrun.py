"""Benchmark: the netsim torch.distributed backend's recording overhead, and `netsim torchrun` end to end.

1. examples/torch/ddp.py (4 local ranks, 20 steps, width 1024: 4.5 MB of gradients per step in buckets)
   run the same way twice, on plain gloo and under the recording netsim backend (gloo's maths): wall
   seconds of the whole launch, the best of 3 each, alternating, and their ratio. The ranks share this
   machine's cores, so both figures carry the same contention.
2. `netsim torchrun --nproc 4 --topology fattree1024 --rescale 1024 examples/torch/ddp.py --steps 3` as a
   command: wall seconds (launch, record, rescale to 1,024 ranks, simulate, print).

Prints figures; asserts nothing.

    .venv/bin/python benchmarks/torchrun.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DDP = ROOT / "examples" / "torch" / "ddp.py"
ARGS = ["--steps", "20", "--width", "1024"]


def launch(route: bool) -> float:
    from netsim.training.launch import failure_report, run_ranks

    with tempfile.TemporaryDirectory() as tmp:
        logs, record = Path(tmp) / "logs", Path(tmp) / "record"
        logs.mkdir()
        record.mkdir()
        t0 = time.perf_counter()
        codes = run_ranks(DDP, ARGS, 4, logs=logs, record=record if route else None, route=route, timeout=300)
        took = time.perf_counter() - t0
        if any(codes.values()):
            raise SystemExit(failure_report(codes, logs))
    return took


def main() -> int:
    launch(False)  # the fork server's start and the first imports, outside the figures
    plain, recorded = [], []
    for _ in range(3):
        plain.append(launch(False))
        recorded.append(launch(True))
    print(f"DDP example, 4 ranks x 20 steps: plain gloo {min(plain):.2f} s, netsim backend {min(recorded):.2f} s "
          f"(best of 3; recording costs {100 * (min(recorded) / min(plain) - 1):+.1f}%)")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netsim", "torchrun", "--nproc", "4", "--topology", "fattree1024",
                        "--rescale", "1024", "--json", str(DDP), "--steps", "3"], check=True, cwd=tmp,
                       stdout=subprocess.DEVNULL)
        print(f"netsim torchrun, DDP example on 4 ranks rescaled to 1,024 GPUs, as a command: "
              f"{time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

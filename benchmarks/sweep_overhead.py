"""Benchmark: the per-run overhead of each sweep executor against running the same points in a loop.

40 tiny utilisation points (2 workers, 4 layers, 2 outer periods of 5 steps): each run takes a few
milliseconds, so what is measured is the executor's own cost per run (start-up included: pools, a dask
LocalCluster). Prints seconds in total and per run, and the ratio to the loop; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from netsim.sweep.executors import DaskExecutor, LocalExecutor, run_point
from netsim.sweep.runner import run_sweep
from netsim.sweep.spec import load_spec, points

SPEC = """name: overhead
kind: utilization
base: {method: diloco, model: {layers: 4, step_time: 10ms, params: 1e6}, workers: 2, inner_steps: 5, outer_steps: 2}
grid:
  bandwidth: [%s]
  method: [diloco, streaming_diloco]
""" % ", ".join(f"{b}Gbps" for b in range(1, 21))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(SPEC)
        spec, base, folder = load_spec(path)
        pts = points(spec, base, folder)
        run_point(spec.kind, pts[0].document, str(folder))  # imports and first-call costs out of the figures
        tic = time.perf_counter()
        for p in pts:
            run_point(spec.kind, p.document, str(folder))
        loop = time.perf_counter() - tic
        print(f"{len(pts)} runs; plain loop {loop:.2f} s ({loop / len(pts) * 1e3:.1f} ms per run)")
        cases = [("local, 1 worker", lambda: LocalExecutor(1)), ("local, 2 workers", lambda: LocalExecutor(2))]
        try:
            import dask.distributed  # noqa: F401

            cases.append(("dask LocalCluster, 2 workers", lambda: DaskExecutor(2)))
        except ImportError:
            print("dask not installed: skipped")
        for name, make in cases:
            tic = time.perf_counter()
            executor = make()
            try:
                run_sweep(spec, pts, folder, Path(tmp) / name.replace(" ", "_").replace(",", ""), executor)
            finally:
                executor.close()
            wall = time.perf_counter() - tic
            print(f"{name:<30} {wall:6.2f} s, {(wall - loop) / len(pts) * 1e3:7.1f} ms overhead per run, "
                  f"{wall / loop:5.1f}x the loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compressed against full simulation: how far skipping repeated steps by their period moves the end time.

Each case runs one collective twice in this process on the same fabric: every step simulated, then with
`Simulation(compress=M)` for each M given (the first M steps of each long run of identical steps simulated,
the rest skipped by the measured period). Printed per case: the full end time and run time, then per M
the compressed end time, its relative error, the speed-up of the run, and the run's note (the window's pace,
the network's least time per step, and how far the window's per-step times spread). Writes
`compression.csv` into the results folder (`out/validation/`, or $NETSIM_RESULTS).

Fabrics: the rail-optimized leaf-spine of `benchmarks/scale.py` (8-GPU servers, 400 Gb/s NICs, at most 64
servers per rail leaf, 1:1, NVLink 450 GB/s), and a 2:1 oversubscribed leaf-spine of single-GPU hosts where
ECMP collisions make some ring hops slower than others.

    .venv/bin/python validation/compression.py            # every case, M = 16 and 64 (~2 min)
    .venv/bin/python validation/compression.py --quick    # the small cases, M = 16
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

from netsim.collectives import Communicator
from netsim.sim import Simulation
from netsim.topology.config import topology_from_dict


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scale import fabric as rail  # noqa: E402  (the scale benchmark's rail-optimized fabric)


def oversubscribed(hosts: int):
    return topology_from_dict({
        "kind": "leaf_spine", "name": f"ls{hosts}-2to1", "leaves": hosts // 16, "spines": 8, "hosts_per_leaf": 16,
        "gpus_per_host": 1, "host_bandwidth": "100Gbps", "spine_bandwidth": "100Gbps",
        "host_latency": "1us", "spine_latency": "1us"})


# (name, fabric, op, size in bytes, algorithm, chunks, quick)
CASES = [
    ("ring 512, rail", lambda: rail(512), "all_reduce", 2**30, "ring", 1, True),
    ("rings 256, rail", lambda: rail(256), "all_reduce", 2**30, "rings", 1, True),
    ("rings 512, rail", lambda: rail(512), "all_reduce", 2**30, "rings", 1, False),
    ("rings 256, rail, 64 MiB", lambda: rail(256), "all_reduce", 2**26, "rings", 1, False),
    ("ring x4 chunks 256, rail", lambda: rail(256), "all_reduce", 2**30, "ring", 4, False),
    ("ring_bidir 256, rail", lambda: rail(256), "all_reduce", 2**30, "ring_bidir", 1, False),
    ("hierarchical 1024, rail", lambda: rail(1024), "all_reduce", 2**30, "hierarchical", 1, True),
    ("hierarchical 4096, rail", lambda: rail(4096), "all_reduce", 2**30, "hierarchical", 1, False),
    ("ring 256, 2:1 leaf-spine", lambda: oversubscribed(256), "all_reduce", 2**28, "ring", 1, True),
    ("reduce-scatter ring 256, 2:1", lambda: oversubscribed(256), "reduce_scatter", 2**28, "ring", 1, False),
]


def run(topo, op: str, size: int, algo: str, chunks: int, compress: int) -> tuple[float, float, list]:
    sim = Simulation(topo, record_links=False, transfers="drop", compress=compress)
    comm = Communicator(sim, topo.gpus)
    t0 = time.perf_counter()
    sim.run(comm.run(op, size, algo=algo, chunks=chunks))
    return sim.now, time.perf_counter() - t0, sim.meta.get("compressed", [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small cases, M = 16")
    parser.add_argument("--keep", type=int, nargs="+", default=None, help="steps kept per run (default 16 64)")
    args = parser.parse_args(argv)
    keeps = args.keep or ([16] if args.quick else [16, 64])
    out = Path(os.environ.get("NETSIM_RESULTS", "out/validation"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'case':<30} {'full':>12} {'run':>7}   {'M':>3} {'compressed':>12} {'error':>8} {'speed-up':>8}  "
          f"{'pace/step':>10} {'least/step':>10} {'spread':>6}")
    for name, fabric, op, size, algo, chunks, quick in CASES:
        if args.quick and not quick:
            continue
        topo = fabric()
        full, full_s, _ = run(topo, op, size, algo, chunks, 0)
        for m in keeps:
            end, run_s, notes = run(topo, op, size, algo, chunks, m)
            note = notes[0] if notes else {}
            err = (end - full) / full
            print(f"{name:<30} {full * 1e3:>9.4f} ms {full_s:>6.2f}s   {m:>3} {end * 1e3:>9.4f} ms {err:>+8.2%} "
                  f"{full_s / run_s:>7.0f}x  {note.get('pace_s', math.nan) * 1e6:>7.3f} us "
                  f"{note.get('bound_s', math.nan) * 1e6:>7.3f} us {note.get('spread', math.nan):>6.2f}", flush=True)
            rows.append({"case": name, "op": op, "algo": algo, "chunks": chunks, "size_B": size, "keep": m,
                         "full_s": full, "compressed_s": end, "error": err, "full_run_s": full_s,
                         "compressed_run_s": run_s, "pace_s": note.get("pace_s"), "bound_s": note.get("bound_s"),
                         "spread": note.get("spread"), "runs": len(notes)})
    with open(out / "compression.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    worst = max(abs(r["error"]) for r in rows)
    print(f"worst error {worst:.2%} over {len(rows)} runs; written to {out / 'compression.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

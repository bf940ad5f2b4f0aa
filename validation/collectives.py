"""Validation of the collective algorithms.

1. Closed forms: every algorithm on an ideal fabric (a full mesh: every rank pair has its own
   link, so no two transfers in flight share one) in the fluid and analytic models, against
   the forms in README.md; the relative error must stay below 1e-6.
2. Bus-bandwidth plateaus: nccl-tests-style sweeps on the 64-GPU rail-optimized fabric (1:1)
   and the 128-GPU 2:1 oversubscribed leaf-spine; large-message busbw per algorithm.

Writes results/closed_form.csv and results/busbw_plateau.csv and prints both tables.
Run: python validation/collectives.py   (about a minute)
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from netsim.collectives import closed_form, time_collective
from netsim.topology import full_mesh, load_topology
from netsim.workloads import run_bench
from text_report import results_dir  # a sibling: validation/ is on the path

HERE = Path(__file__).resolve().parent
BW, ALPHA = 25e9, 2e-6
TOLERANCE = 1e-6

CASES = [  # op, algo, ranks, chunks
    ("all_reduce", "ring", 8, 1), ("all_reduce", "ring", 16, 1), ("reduce_scatter", "ring", 8, 1),
    ("all_gather", "ring", 8, 1), ("all_reduce", "ring_bidir", 8, 1), ("all_gather", "ring_bidir", 9, 1),
    ("all_reduce", "halving_doubling", 8, 1), ("all_reduce", "halving_doubling", 16, 1),
    ("all_reduce", "halving_doubling", 12, 1), ("reduce_scatter", "halving_doubling", 16, 1),
    ("all_gather", "halving_doubling", 8, 1), ("all_reduce", "direct", 8, 1), ("all_to_all", "direct", 16, 1),
    ("reduce_scatter", "direct", 8, 1), ("all_gather", "direct", 8, 1), ("broadcast", "direct", 8, 1),
    ("reduce", "direct", 8, 1), ("broadcast", "ring", 8, 1), ("broadcast", "ring", 8, 16),
    ("reduce", "ring", 8, 16), ("broadcast", "tree", 15, 1), ("broadcast", "tree", 15, 16),
    ("reduce", "tree", 16, 16), ("all_reduce", "tree", 16, 8), ("barrier", "dissemination", 16, 1),
]
SIZES = [2**20 * 3 * 5 * 7, 2**26 * 3 * 5 * 7]


def simulate(op: str, algo: str, n: int, size: int, chunks: int, model: str) -> float:
    seconds, _ = time_collective(full_mesh(n, BW, ALPHA), op, size, algo=algo, chunks=chunks, network=model,
                                 record_links=False)
    return seconds


def closed_form_table() -> pl.DataFrame:
    rows = []
    for op, algo, n, chunks in CASES:
        for size in [0] if op == "barrier" else SIZES:
            expected = closed_form(op, algo, n, size, ALPHA, BW, chunks)
            # the double tree's two trees share links in the fluid model: only the analytic model is ideal
            models = ["analytic"] if (op, algo) == ("all_reduce", "tree") else ["fluid", "analytic"]
            for model in models:
                got = simulate(op, algo, n, size, chunks, model)
                rows.append({"op": op, "algo": algo, "ranks": n, "chunks": chunks, "bytes": size, "model": model,
                             "simulated_s": got, "closed_form_s": expected,
                             "rel_error": abs(got - expected) / expected if expected else abs(got)})
    return pl.DataFrame(rows)


def plateau_table() -> pl.DataFrame:
    rows = []
    fabrics = {"rail64 (1:1)": "rail64.yaml", "leafspine128 (2:1)": "leafspine128_2to1.yaml"}
    for label, file in fabrics.items():
        topo = load_topology(HERE.parent / "topologies" / file)
        sizes = [2**25, 2**26, 2**27]
        for algo in ("ring", "rings", "hierarchical", "tree", "halving_doubling"):
            bench = run_bench(topo, "all_reduce", sizes, [algo], chunks=8 if algo == "tree" else 1)
            busbw = [r.busbw_Bps / 1e9 for r in bench]
            rows.append({"fabric": label, "algo": algo, "busbw_32MiB": busbw[0], "busbw_64MiB": busbw[1],
                         "busbw_128MiB": busbw[2], "plateau_spread": (max(busbw) - min(busbw)) / max(busbw)})
    return pl.DataFrame(rows)


def main() -> int:
    out = results_dir()
    closed = closed_form_table()
    closed.write_csv(out / "closed_form.csv", float_precision=12)
    worst = float(closed["rel_error"].max())
    with pl.Config(tbl_rows=200, tbl_width_chars=200):
        print(closed.select("op", "algo", "ranks", "chunks", "bytes", "model", "rel_error"))
    print(f"closed forms: {len(closed)} runs, worst relative error {worst:.2e} (tolerance {TOLERANCE:g})")
    plateau = plateau_table()
    plateau.write_csv(out / "busbw_plateau.csv", float_precision=4)
    with pl.Config(tbl_rows=50, tbl_width_chars=200):
        print(plateau)
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

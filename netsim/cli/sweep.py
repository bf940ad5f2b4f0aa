"""`netsim sweep`: a base scenario swept over parameters, on a process pool or a Dask cluster, resumable."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from netsim.cli import flags, names
from netsim.config import OutputDirectory

OUTPUTS = {"table.parquet", "report.html"}


def add_parser(sub) -> None:
    from netsim.sweep.executors import EXECUTORS
    from netsim.sweep.kinds import KINDS

    listing = names.epilog("kinds (kind: in the spec):\n" + "\n".join(f"  {k.name}: {k.help}" for k in KINDS.values()),
                           "executors:\n" + "\n".join(f"  {k}: {v}" for k, v in EXECUTORS.items()))
    p = sub.add_parser("sweep", help="run a base scenario over a grid of parameters (local pool or dask), resumable",
                       **listing)
    p.add_argument("spec", help="sweep spec YAML (kind, base, grid / zip, metrics)")
    p.add_argument("-o", "--output", default="out/sweep", help="directory for table.parquet and report.html")
    p.add_argument("--executor", default="local", choices=tuple(EXECUTORS))
    p.add_argument("--workers", type=flags.integer(1, 1024), default=1, help="processes (local pool or local dask)")
    p.add_argument("--scheduler", help="dask scheduler address (tcp://HOST:PORT); default: a local cluster")
    p.add_argument("--cache", default=".netsim-sweep-cache",
                   help="folder of finished runs (one Parquet per run, by scenario hash); reused across sweeps")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", dest="fresh", action="store_false",
                       help="reuse finished runs from the cache, run only the missing ones (the default)")
    again.add_argument("--fresh", dest="fresh", action="store_true", help="run every point again")
    p.set_defaults(fresh=False)
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.report import write_sweep_table_report
    from netsim.sweep.executors import make_executor
    from netsim.sweep.runner import run_sweep
    from netsim.sweep.spec import load_spec, points

    out = OutputDirectory(args.output, command="sweep", outputs=OUTPUTS)
    spec, base, folder = load_spec(args.spec)
    pts = points(spec, base, folder)
    executor = make_executor(args.executor, args.workers, args.scheduler)
    start = time.perf_counter()
    shown = [0.0]

    def progress(done: int, failed: int, total: int) -> None:
        now = time.perf_counter()
        if args.json or (now - shown[0] < 0.5 and done < total):
            return
        shown[0] = now
        elapsed = now - start
        eta = "" if done in (0, total) else f", ETA {elapsed / done * (total - done):.0f} s"
        print(f"sweep {spec.name}: {done}/{total} runs done, {failed} failed{eta}", file=sys.stderr, flush=True)

    try:
        table = run_sweep(spec, pts, folder, Path(args.cache), executor, fresh=args.fresh, progress=progress)
    finally:
        executor.close()
    failed = int(table["error"].is_not_null().sum()) if "error" in table.columns else 0
    if args.json:
        print(json.dumps(table.to_dicts(), indent=1, default=str))
    else:
        console.print(f"{len(pts)} points, {failed} failed, in {time.perf_counter() - start:.1f} s "
                      f"({args.executor}, {args.workers} worker{'s' if args.workers > 1 else ''})")
    with out.writing() as tmp:
        table.write_parquet(tmp / "table.parquet", statistics=False)
        write_sweep_table_report(tmp / "report.html", table, list(spec.grid) + list(spec.zip), spec.metrics,
                                 f"netsim sweep — {spec.name}")
    if not args.json:
        console.print(f"results written to {out.shown} (table.parquet, report.html)")
    return 0

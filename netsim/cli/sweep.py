"""`netsim sweep`: a base scenario swept over parameters, on a process pool or a Dask cluster, resumable."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import print_json
from netsim.config import OutputDirectory
from netsim.errors import ConfigError

OUTPUTS = {"table.parquet", "report.html"}


def add_parser(sub) -> None:
    from netsim.sweep.executors import EXECUTORS
    from netsim.sweep.kinds import KINDS

    listing = names.epilog("kinds (kind: in the spec):\n" + "\n".join(f"  {k.name}: {k.help}" for k in KINDS.values()),
                           "executors:\n" + "\n".join(f"  {k}: {v}" for k, v in EXECUTORS.items()))
    p = sub.add_parser("sweep", help=HELP["sweep"], **listing)
    p.add_argument("spec", help="sweep spec YAML (kind, base, grid / zip, metrics)")
    p.add_argument("-o", "--output", default="out/sweep", help="directory for table.parquet and report.html")
    p.add_argument("--executor", default="local", choices=tuple(EXECUTORS))
    p.add_argument("--processes", type=flags.integer(1, 1024), default=1,
                   help="processes that run points (local pool or local dask; default 1)")
    p.add_argument("--workers", dest="processes", type=flags.integer(1, 1024), action=flags.renamed("--processes"),
                   help=argparse.SUPPRESS)
    p.add_argument("--scheduler", help="dask scheduler address (tcp://HOST:PORT); default: a local cluster")
    p.add_argument("--cache", default=".netsim-sweep-cache",
                   help="folder of finished runs (one Parquet per run, by scenario hash); reused across sweeps")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", dest="fresh", action="store_false",
                       help="reuse finished runs from the cache, run only the missing ones (the default)")
    again.add_argument("--fresh", dest="fresh", action="store_true", help="run every point again")
    p.set_defaults(fresh=False)
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")
    flags.add_max_transfers(p)


def check_cache(text: str) -> Path:
    """The --cache folder: an existing directory this process may write into, or one it can create (it is
    created when the first run is written, so a sweep refused on its input leaves nothing)."""
    def error(message: str) -> ConfigError:
        return ConfigError(f"{text!r} {message}", field="--cache")

    if not text.strip():
        raise ConfigError(f"expected a directory path, got {text!r}", field="--cache")
    if "\0" in text:
        raise ConfigError("a path cannot contain a NUL character", field="--cache")
    path = Path(text)
    try:
        if path.is_symlink() and not path.exists():
            raise error("is a symbolic link to nothing; give a directory")
        if path.exists():
            if not path.is_dir():
                raise error("exists and is not a directory; give a directory for the finished runs (new, or "
                            "one an earlier sweep filled)")
            if not os.access(path, os.W_OK | os.X_OK):
                raise error("is not writable")
            return path
        ancestor = path.absolute().parent
        while not ancestor.exists() and not ancestor.is_symlink():
            ancestor = ancestor.parent
    except OSError as exc:  # a name too long, a folder on the way that may not be read
        raise error(f"cannot be used: {exc.strerror or exc}") from None
    if not ancestor.is_dir():
        raise error(f"cannot be created: {str(ancestor)!r} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise error(f"cannot be created: {str(ancestor)!r} is not writable")
    return path


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.report import write_sweep_table_report
    from netsim.sweep.executors import check_scheduler, make_executor
    from netsim.sweep.runner import sweep
    from netsim.sweep.spec import check_points, describe, load_spec, points

    # everything the user gave is checked before anything runs or is written: flags, spec, every point
    out = OutputDirectory(args.output, command="sweep", outputs=OUTPUTS)
    cache = check_cache(args.cache)
    if args.scheduler is not None:
        if args.executor != "dask":
            raise ConfigError("a scheduler address goes with --executor dask", field="--scheduler")
        check_scheduler(args.scheduler)
    spec, base, folder = load_spec(args.spec)
    pts = points(spec, base, folder)
    check_points(spec, pts, folder, source=args.spec, max_transfers=args.max_transfers)
    executor = make_executor(args.executor, args.processes, args.scheduler)
    start = time.perf_counter()
    shown = [0.0]
    name = " ".join(spec.name.split())

    def progress(done: int, failed: int, total: int) -> None:
        now = time.perf_counter()
        if args.json or (now - shown[0] < 0.5 and done < total):
            return
        shown[0] = now
        elapsed = now - start
        eta = "" if done in (0, total) else f", ETA {elapsed / done * (total - done):.0f} s"
        print(f"sweep {name}: {done}/{total} runs done, {failed} failed{eta}", file=sys.stderr, flush=True)

    def notice(message: str) -> None:
        print(f"netsim: notice: {' '.join(message.split())}", file=sys.stderr, flush=True)

    try:
        result = sweep(spec, pts, folder, cache, executor, fresh=args.fresh, progress=progress, notice=notice)
    finally:
        executor.close()
    table, failed = result.table, len(result.failed)
    everything_failed = bool(pts) and failed == len(pts)
    if everything_failed and result.failed_on_input == failed:  # a mistake the checks could not see: no output
        point, error = result.failed[0]
        raise ConfigError(f"all {len(pts)} points failed on their input, nothing written; the first, "
                          f"{describe(point)}: {error}", source=args.spec)
    if args.json:
        print_json("sweep", table.to_dicts(), spec=args.spec)
    else:
        console.print(f"{len(pts)} points, {failed} failed, in {time.perf_counter() - start:.1f} s "
                      f"({args.executor}, {args.processes} process{'es' if args.processes > 1 else ''})")
    with out.writing() as tmp:
        table.write_parquet(tmp / "table.parquet", statistics=False)
        write_sweep_table_report(tmp / "report.html", table, list(spec.grid) + list(spec.zip), spec.metrics or [],
                                 f"netsim sweep — {spec.name}", along=list(spec.grid))
    if not args.json:
        console.print(f"results written to {out.shown} (table.parquet, report.html)")
    if everything_failed:  # crashes, not mistakes in the points: the table keeps each error for the report
        point, error = result.failed[0]
        print(f"netsim: error: {args.spec}: all {len(pts)} points failed (the first, {describe(point)}: "
              f"{' '.join(error.split())}); the errors are in {out.shown}/table.parquet", file=sys.stderr)
        return 1
    return 0

"""`netsim utilization` and `netsim sweep-bandwidth`: low-communication training across datacenters."""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, notice, print_json
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.report import write_sweep_report
from netsim.units import format_bandwidth, format_size, format_time, parse_bandwidth
from netsim.workloads.compute import ComputeModel
from netsim.workloads.sweep import DEFAULT_TARGETS, sweep_bandwidth, thresholds
from netsim.workloads.methods import SWEEP_DEFAULT, check_method, help_text
from netsim.workloads.utilization import UtilizationConfig, utilization

MAX_PARAMS = 1e15  # parameters: beyond any model trained today, and exact in float64 bytes
MAX_WORKERS = 256  # a ring all-reduce with unequal pieces costs 2n(n - 1) transfers: ~10 s per ddp step at 256


def _training_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=flags.integer(1, 100_000), default=24)
    p.add_argument("--step-time", type=flags.step_duration, default=0.1,
                   help="seconds per inner step (e.g. 0.1s, 250ms)")
    p.add_argument("--params", default="1e9", help="model parameters (e.g. 1e9)")
    p.add_argument("--bits", type=int, choices=(4, 8, 16, 32), default=16, help="bits per exchanged value")
    p.add_argument("--inner-steps", type=flags.integer(1, 10**6), default=100, help="H: inner steps per outer step")
    p.add_argument("--fragments", type=flags.integer(1, 10_000), default=1, help="F: Streaming DiLoCo fragments")
    p.add_argument("--overlap", type=flags.integer(0, 10**6), default=0,
                   help="tau: steps a fragment's result may arrive late")
    p.add_argument("--outer-steps", type=flags.integer(1, 10_000), default=3,
                   help="outer periods simulated (>= 3 recommended)")
    p.add_argument("--workers", type=flags.integer(2, MAX_WORKERS), default=2,
                   help=f"workers, one per datacenter (2 to {MAX_WORKERS})")
    p.add_argument("--latency", type=flags.duration, default=0.0, help="inter-datacenter link latency (e.g. 30ms)")
    p.add_argument("--tcp-window", type=flags.size, help="TCP-like cap: bytes in flight per stream (e.g. 16MiB)")
    p.add_argument("--streams", type=flags.integer(1, 4096), default=1,
                   help="parallel streams per transfer (with --tcp-window)")
    p.add_argument("--speeds", help="per-worker slowdown factors, comma-separated (1.5: a 1.5x slower worker)")
    p.add_argument("--jitter", type=flags.number(0, 10), default=0.0,
                   help="lognormal sigma of per-step slowdowns (stragglers)")
    p.add_argument("--bucket-bytes", type=flags.size,
                   help="fuse consecutive layers' reductions into buckets of about this size (e.g. 25MB; "
                        "default one per layer)")
    p.add_argument("--seed", type=flags.seed, default=0)
    p.add_argument("--json", action="store_true")


def add_parsers(sub) -> None:
    listing = names.epilog("training methods:\n" + "\n".join("  " + line for line in help_text().splitlines()))
    util = sub.add_parser("utilization", help=HELP["utilization"],
                          **listing)
    util.add_argument("--method", default="streaming_diloco", help="training method (default streaming_diloco; "
                                                                    "listed below)")
    util.add_argument("--bandwidth", type=flags.bandwidth, default=parse_bandwidth("10Gbps"),
                      help="inter-datacenter link bandwidth (default 10Gbps)")
    _training_arguments(util)
    sweep = sub.add_parser("sweep-bandwidth", help=HELP["sweep-bandwidth"],
                           **listing)
    sweep.add_argument("--methods", default=",".join(SWEEP_DEFAULT),
                       help=f"comma-separated methods (default {','.join(SWEEP_DEFAULT)}; listed below)")
    sweep.add_argument("--grid", default="0.1:1000:50",
                       help="bandwidths in Gbit/s: 'lo:hi:count' (log-spaced, default 0.1:1000:50) or a comma list")
    sweep.add_argument("--targets", default=",".join(str(t) for t in DEFAULT_TARGETS),
                       help="utilisation targets, fractions in (0, 1]")
    sweep.add_argument("-o", "--output", help="also write sweep.parquet, thresholds.parquet and report.html here")
    _training_arguments(sweep)


def _training(args: argparse.Namespace) -> tuple[ComputeModel, dict]:
    """The compute model and the `utilization` keywords the training flags describe."""
    try:
        params = float(args.params)  # a count: plain numbers such as 1e9
    except ValueError:
        params = float("nan")
    if not 0 < params <= MAX_PARAMS:
        raise ConfigError(f"expected a parameter count > 0 and <= {MAX_PARAMS:g}, got {args.params!r}",
                          field="--params")
    model = ComputeModel(args.layers, args.step_time, params)
    kw = dict(workers=args.workers, latency=args.latency, inner_steps=args.inner_steps, fragments=args.fragments,
              overlap=args.overlap, bits=args.bits, outer_steps=args.outer_steps,
              tcp_window=None if args.tcp_window is None else float(args.tcp_window),
              streams=args.streams, jitter=args.jitter, seed=args.seed,
              bucket_bytes=None if args.bucket_bytes is None else float(args.bucket_bytes))
    if args.speeds:
        try:
            speeds = np.array([float(x) for x in args.speeds.split(",")])
        except ValueError:
            raise ConfigError(f"expected comma-separated numbers, got {args.speeds!r}", field="--speeds") from None
        if len(speeds) != args.workers or not (np.isfinite(speeds) & (speeds > 0)).all():
            raise ConfigError(f"expected {args.workers} finite positive factors, got {args.speeds!r}", field="--speeds")
        kw["speeds"] = tuple(speeds.tolist())
    return model, kw


def _flag_errors(call, *args, **kwargs):
    """Run a library call; a field it names is reported as the command-line flag that set it."""
    try:
        return call(*args, **kwargs)
    except ConfigError as exc:
        if exc.source is None and exc.field and not exc.field.startswith("-"):
            raise ConfigError(exc.detail, field="--" + exc.field.replace("_", "-")) from None
        raise


def utilization_command(args: argparse.Namespace, console: Console) -> int:
    check_method(args.method, field="--method")
    model, kw = _flag_errors(_training, args)
    result = _flag_errors(lambda: utilization(UtilizationConfig(args.method, model, bandwidth=args.bandwidth, **kw)))
    if args.json:
        print_json("utilization", [result.as_dict()], method=args.method, bandwidth_Bps=args.bandwidth)
        return 0
    table = Table(title=f"{args.method}: {args.workers} workers, {format_bandwidth(args.bandwidth)}, "
                        f"latency {format_time(args.latency)}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("compute utilisation", f"{100 * result.utilization:.2f}%"),
        ("wall time", format_time(result.wall_s)),
        ("time per outer step", format_time(result.outer_step_s)),
        ("exposed communication", format_time(result.exposed_comm_s)),
        ("bytes sent per worker", format_size(result.sent_per_worker_B)),
        ("bytes sent in total", format_size(result.sent_total_B)),
        ("peak bandwidth demand (largest sync in one step)", format_bandwidth(result.peak_demand_Bps)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    return 0


def _grid(text: str) -> np.ndarray:
    """'lo:hi:count' Gbit/s log-spaced, or a comma list of bandwidths (plain numbers in Gbit/s)."""
    parts = text.split(":")
    try:
        if len(parts) == 3:
            lo, hi, count = float(parts[0]), float(parts[1]), int(parts[2])
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi and 1 <= count <= 10_000):
                raise ValueError
            return np.logspace(np.log10(lo), np.log10(hi), count) * 1e9 / 8
        grid = np.array([parse_bandwidth(x, "Gbps", field="--grid") for x in text.split(",")])
        if not (grid > 0).all():
            raise ValueError
        return grid
    except (ValueError, ConfigError):
        raise ConfigError(f"expected 'lo:hi:count' in Gbit/s (0 < lo <= hi, 1 <= count <= 10000) or a comma list "
                          f"of positive bandwidths, got {text!r}", field="--grid") from None


def _targets(text: str) -> tuple[float, ...]:
    try:
        targets = tuple(float(x) for x in text.split(","))
    except ValueError:
        targets = ()
    if not targets or not all(0 < t <= 1 for t in targets):  # also false for NaN
        raise ConfigError(f"expected comma-separated fractions in (0, 1], got {text!r}", field="--targets")
    return targets


def sweep_command(args: argparse.Namespace, console: Console) -> int:
    out = (OutputDirectory(args.output, command="sweep-bandwidth",
                           outputs={"sweep.parquet", "thresholds.parquet", "report.html"}) if args.output is not None else None)
    model, kw = _flag_errors(_training, args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or len(set(methods)) != len(methods):
        raise ConfigError(f"expected distinct comma-separated method names, got {args.methods!r}", field="--methods")
    for m in methods:
        check_method(m, field="--methods")
    targets = _targets(args.targets)
    grid = _grid(args.grid)
    parts = []
    with Stages(len(methods), f"sweep-bandwidth ({len(grid)} bandwidths each)", quiet=args.json) as stages:
        for m in methods:
            stages.start(m)
            parts.append(_flag_errors(lambda: sweep_bandwidth([m], grid, UtilizationConfig(m, model, **kw))))
    frame = pl.concat(parts)
    found = thresholds(frame, targets)
    if args.json:
        print_json("sweep-bandwidth", [{"method": r["method"], "target": r["target"],
                                        "bandwidth_Bps": r["bandwidth_Bps"]}
                                       for r in found.iter_rows(named=True)], methods=methods, grid_gbps=args.grid)
    else:
        table = Table(title="Lowest grid bandwidth reaching each compute utilisation")
        table.add_column("method")
        for t in targets:
            table.add_column(f"{100 * t:g}%", justify="right")
        for m in methods:
            part = found.filter(pl.col("method") == m)["bandwidth_Bps"].to_list()
            table.add_row(m, *["never" if b is None else format_bandwidth(b) for b in part])
        console.print(table)
    if out is not None:
        with out.writing() as tmp:
            frame.write_parquet(tmp / "sweep.parquet", statistics=False)
            found.write_parquet(tmp / "thresholds.parquet", statistics=False)
            write_sweep_report(tmp / "report.html", frame, found,
                               f"netsim sweep-bandwidth — {args.workers} workers, {args.layers} layers, "
                               f"{args.params} parameters", f"H = {args.inner_steps}, F = {args.fragments}, "
                               f"tau = {args.overlap}, {args.bits}-bit exchange, latency {format_time(args.latency)}.")
        if not args.json:
            notice(f"results written to {out.shown} (sweep.parquet, thresholds.parquet, report.html)")
    return 0

"""The `netsim` command line: `run` a scenario, `topo show` a topology file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import json

import numpy as np
import polars as pl

from netsim.collectives import OPS, algorithms
from netsim.errors import ConfigError, NetsimError
from netsim.report import (
    write_bench_report, write_compare_report, write_report, write_sweep_report, write_training_report,
)
from netsim.routing import make_policy
from netsim.scenario import default_scenario, load_scenario, run_scenario, summarize
from netsim.scenario.compare import compare_routing
from netsim.sim import atomic_directory
from netsim.topology import PathCache, load_topology
from netsim.topology.summary import summarize_topology
from netsim.units import format_bandwidth, format_size, format_time, parse_bandwidth, parse_size, parse_time
from netsim.workloads import parse_bench_size, run_bench, size_range
from netsim.workloads.collective_bench import format_table
from netsim.workloads.compute import ComputeModel
from netsim.workloads.utilization import METHODS as UTIL_METHODS
from netsim.workloads.sweep import DEFAULT_TARGETS, sweep_bandwidth, thresholds
from netsim.workloads.utilization import utilization


def _training_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--step-time", default="0.1s", help="seconds per inner step (e.g. 0.1s, 250ms)")
    p.add_argument("--params", default="1e9", help="model parameters (e.g. 1e9)")
    p.add_argument("--bits", type=int, default=16, help="bits per exchanged value (4, 8, 16, 32)")
    p.add_argument("--inner-steps", type=int, default=100, help="H: inner steps per outer step")
    p.add_argument("--fragments", type=int, default=1, help="F: Streaming DiLoCo fragments")
    p.add_argument("--overlap", type=int, default=0, help="tau: steps a fragment's result may arrive late")
    p.add_argument("--outer-steps", type=int, default=3, help="outer periods simulated (>= 3 recommended)")
    p.add_argument("--workers", type=int, default=2, help="workers, one per datacenter")
    p.add_argument("--latency", default="0", help="inter-datacenter link latency (e.g. 30ms)")
    p.add_argument("--tcp-window", help="TCP-like cap: bytes in flight per stream (e.g. 16MiB); none by default")
    p.add_argument("--streams", type=int, default=1, help="parallel streams per transfer (with --tcp-window)")
    p.add_argument("--speeds", help="per-worker slowdown factors, comma-separated (1.5: a 1.5x slower worker)")
    p.add_argument("--jitter", type=float, default=0.0, help="lognormal sigma of per-step slowdowns (stragglers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def _training(args: argparse.Namespace) -> tuple[ComputeModel, dict]:
    """The compute model and the `utilization` keywords the training flags describe."""
    params = float(parse_size(args.params, field="--params"))  # a count: plain numbers such as 1e9
    model = ComputeModel(args.layers, parse_time(args.step_time, field="--step-time"), params)
    kw = dict(workers=args.workers, latency=parse_time(args.latency, field="--latency"), inner_steps=args.inner_steps,
              fragments=args.fragments, overlap=args.overlap, bits=args.bits, outer_steps=args.outer_steps,
              tcp_window=None if args.tcp_window is None else float(parse_size(args.tcp_window, field="--tcp-window")),
              streams=args.streams, jitter=args.jitter, seed=args.seed)
    if args.speeds:
        try:
            speeds = np.array([float(x) for x in args.speeds.split(",")])
        except ValueError:
            raise ConfigError(f"expected comma-separated numbers, got {args.speeds!r}", field="--speeds") from None
        if len(speeds) != args.workers or not (speeds > 0).all():
            raise ConfigError(f"expected {args.workers} positive factors, got {args.speeds!r}", field="--speeds")
        kw["speeds"] = speeds
    return model, kw


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netsim", description="Network-level simulator for distributed ML training.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario file (default: the built-in scenario)")
    run.add_argument("scenario", nargs="?", help="scenario YAML file; omitted: the built-in default")
    run.add_argument("-o", "--output", default="out", help="directory for Parquet results and report.html (default: out)")
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    bench = sub.add_parser("bench", help="nccl-tests-style sweep of one collective over message sizes")
    bench.add_argument("--topology", required=True, help="topology YAML file")
    bench.add_argument("--op", default="all_reduce", choices=list(OPS), help="collective (default all_reduce)")
    bench.add_argument("-b", "--minbytes", default="8", help="smallest size, nccl-tests style (8, 64K, 8G)")
    bench.add_argument("-e", "--maxbytes", default="128M", help="largest size (default 128M)")
    bench.add_argument("-f", "--stepfactor", type=float, default=2.0, help="multiply the size by this (default 2)")
    bench.add_argument("-i", "--stepbytes", default="0", help="add this many bytes instead of multiplying")
    bench.add_argument("--algo", default="auto", help="algorithm or comma-separated list (default auto)")
    bench.add_argument("--ranks", type=int, help="use the first N GPUs (default all)")
    bench.add_argument("--chunks", type=int, default=1, help="pipelined chunks per transfer (default 1)")
    bench.add_argument("--network", default="fluid", choices=["fluid", "analytic"])
    bench.add_argument("--routing", default="ecmp", help="routing policy (default ecmp)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", action="store_true", help="print the rows as JSON")
    bench.add_argument("-o", "--output", help="also write bench.parquet and report.html (busbw against size) here")
    cmp_ = sub.add_parser("compare-routing", help="run a scenario once per routing policy and compare")
    cmp_.add_argument("scenario", help="scenario YAML file")
    cmp_.add_argument("--policies", default="ecmp,spray,split:min,planned",
                      help="comma-separated routing policies (default ecmp,spray,split:min,planned)")
    cmp_.add_argument("-o", "--output", default="out/compare", help="directory for Parquet and report.html")
    cmp_.add_argument("--json", action="store_true", help="print the table as JSON")
    util = sub.add_parser("utilization", help="compute utilisation of a training method across datacenters")
    util.add_argument("--method", default="streaming_diloco", choices=list(UTIL_METHODS))
    util.add_argument("--bandwidth", default="10Gbps", help="inter-datacenter link bandwidth")
    _training_arguments(util)
    sweep = sub.add_parser("sweep-bandwidth", help="utilisation against bandwidth per method, and thresholds")
    sweep.add_argument("--methods", default="dp,diloco,streaming_diloco,noloco,co2",
                       help="comma-separated methods (default dp,diloco,streaming_diloco,noloco,co2)")
    sweep.add_argument("--grid", default="0.1:1000:50",
                       help="bandwidths in Gbit/s: 'lo:hi:count' (log-spaced, default 0.1:1000:50) or a comma list")
    sweep.add_argument("--targets", default=",".join(str(t) for t in DEFAULT_TARGETS), help="utilisation targets")
    sweep.add_argument("-o", "--output", help="also write sweep.parquet, thresholds.parquet and report.html here")
    _training_arguments(sweep)
    tr = sub.add_parser("train", help="real training per method on the simulated clock (built-in: 4 datacenters)")
    tr.add_argument("scenario", nargs="?", help="training scenario YAML; omitted: the built-in one")
    tr.add_argument("-o", "--output", default="out/train", help="directory for Parquet and report.html")
    tr.add_argument("--steps", type=int, help="override the scenario's number of steps")
    topo = sub.add_parser("topo", help="topology tools")
    topo_sub = topo.add_subparsers(dest="topo_command", required=True)
    show = topo_sub.add_parser("show", help="validate a topology file and print a summary")
    show.add_argument("file", help="topology YAML file")
    return p


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    console.print(f"[bold]netsim run[/bold] {scenario.name}: topology {scenario.topology.name} "
                  f"({len(scenario.topology.gpus)} GPUs), routing {', '.join(scenario.config.routing)}")
    results = run_scenario(scenario, progress=lambda v: console.print(f"  simulating [cyan]{v}[/cyan] ..."))
    summary = summarize(results)
    _print_summary(summary, console)
    outputs = scenario.config.outputs
    with atomic_directory(args.output) as tmp:
        if outputs.parquet:
            results.write(tmp)
            summary.write_parquet(Path(tmp) / "summary.parquet", statistics=False)
        if outputs.report and not args.no_report:
            write_report(Path(tmp) / "report.html", results, scenario.topology, summary,
                         title=f"netsim — {scenario.name}", description=scenario.config.description)
    console.print(f"results written to [bold]{args.output}/[/bold]"
                  + (" (open report.html)" if outputs.report and not args.no_report else ""))
    return 0


def _print_summary(summary, console: Console) -> None:
    table = Table(title="Collectives (mean per call)")
    for col in ("variant", "collective", "op/algo", "ranks", "size", "calls", "time", "algbw", "busbw", "busiest link"):
        table.add_column(col, justify="left" if col in ("variant", "collective", "op/algo") else "right")
    jobs = summary["job"].n_unique() > 1
    for r in summary.iter_rows(named=True):
        table.add_row(r["variant"], f"{r['job']}: {r['label']}" if jobs else r["label"], f"{r['op']}/{r['algo']}", str(r["ranks"]), format_size(r["bytes"]),
                      str(r["count"]), format_time(r["time_mean"]), format_bandwidth(r["algbw"]),
                      format_bandwidth(r["busbw"]), format_size(r["max_link_bytes"]))
    console.print(table)


def cmd_topo_show(args: argparse.Namespace, console: Console) -> int:
    topo = load_topology(args.file)
    s = summarize_topology(topo)
    console.print(f"[bold]{s.name}[/bold] ({s.kind}): {s.gpus} GPUs, {topo.num_nodes} nodes, "
                  f"{topo.num_links} directed links — valid")
    console.print("nodes: " + ", ".join(f"{k} {v}" for k, v in s.nodes.items()))
    table = Table(title="Links by tier")
    for col in ("tier", "directed links", "bandwidth (min)", "latency (max)"):
        table.add_column(col, justify="left" if col == "tier" else "right")
    for tier, count, cap, lat in s.links:
        table.add_row(tier, str(count), format_bandwidth(cap), format_time(lat))
    console.print(table)
    console.print(f"bisection bandwidth (GPUs 0..{s.gpus // 2 - 1} -> the rest, max-flow): "
                  f"{format_bandwidth(s.bisection)}")
    console.print("equal-cost paths from GPU 0: " + ", ".join(
        f"{paths} path{'s' if paths > 1 else ''} to {pairs} GPU{'s' if pairs > 1 else ''}"
        for paths, pairs in s.path_counts.items()))
    return 0


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    topo = load_topology(args.topology)
    algos = [a.strip() for a in args.algo.split(",") if a.strip()]
    for algo in algos:
        if algo not in algorithms(args.op):
            raise ConfigError(f"no algorithm {algo!r} for {args.op} (known: {', '.join(algorithms(args.op))})",
                              field="--algo")
    if args.chunks < 1:
        raise ConfigError(f"must be >= 1, got {args.chunks}", field="--chunks")
    make_policy(args.routing, topo, PathCache(topo), args.seed)  # validates the name before any work
    sizes = size_range(parse_bench_size(args.minbytes, "-b"), parse_bench_size(args.maxbytes, "-e"),
                       args.stepfactor, parse_bench_size(args.stepbytes, "-i"))
    rows = run_bench(topo, args.op, sizes, algos, ranks=args.ranks, network=args.network, routing=args.routing,
                     seed=args.seed, chunks=args.chunks)
    n = args.ranks or len(topo.gpus)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(format_table(args.op, n, rows))
    if args.output:
        frame = pl.DataFrame([r.as_dict() for r in rows])
        with atomic_directory(args.output) as tmp:
            frame.write_parquet(Path(tmp) / "bench.parquet", statistics=False)
            write_bench_report(Path(tmp) / "report.html", frame, f"netsim bench — {args.op} on {topo.name}",
                               f"{n} ranks, {args.network} model, {args.routing} routing; busbw uses the "
                               f"nccl-tests factor for {args.op}.")
        if not args.json:
            print(f"# results written to {args.output}/ (bench.parquet, report.html)")
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    scenario = load_scenario(args.scenario)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies or len(set(policies)) != len(policies):
        raise ConfigError("expected distinct comma-separated policy names", field="--policies")
    quiet = args.json
    result = compare_routing(scenario, policies, progress=None if quiet else lambda m: console.print(f"  {m} ..."))
    table = result.table
    if args.json:
        print(json.dumps(table.to_dicts(), indent=1, default=str))
    else:
        out = Table(title=f"compare-routing: {scenario.name}")
        for col in ("policy", "job", "collective", "time", "busbw", "% of ideal", "slowdown", "worst step load/bound"):
            out.add_column(col, justify="left" if col in ("policy", "job", "collective") else "right")
        for r in table.iter_rows(named=True):
            ratio = r.get("worst_step_load_ratio")
            out.add_row(r["variant"], r["job"], r["label"], format_time(r["time_mean"]), format_bandwidth(r["busbw"]),
                        f"{r['pct_of_ideal']:.1f}%", f"{r['slowdown']:.3f}", "-" if ratio is None else f"{ratio:.3f}")
        console.print(out)
    with atomic_directory(args.output) as tmp:
        table.write_parquet(Path(tmp) / "compare.parquet", statistics=False)
        if len(result.steps):
            result.steps.write_parquet(Path(tmp) / "steps.parquet", statistics=False)
        result.links.write_parquet(Path(tmp) / "links.parquet", statistics=False)
        write_compare_report(Path(tmp) / "report.html", table, result.steps, result.links,
                             f"netsim compare-routing — {scenario.name}",
                             f"Topology {scenario.topology.name}; policies {', '.join(policies)}; seed "
                             f"{scenario.config.seed}. Ideal = each job alone with ideal packet spraying.")
    if not quiet:
        console.print(f"results written to [bold]{args.output}/[/bold] (open report.html)")
    return 0


def cmd_utilization(args: argparse.Namespace, console: Console) -> int:
    model, kw = _training(args)
    result = utilization(args.method, model, bandwidth=parse_bandwidth(args.bandwidth, field="--bandwidth"), **kw)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return 0
    table = Table(title=f"{args.method}: {args.workers} workers, {args.bandwidth}, latency {args.latency}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("compute utilisation", f"{100 * result.utilization:.2f}%"),
        ("wall time", format_time(result.wall_s)),
        ("time per outer step", format_time(result.outer_step_s)),
        ("exposed communication", format_time(result.exposed_comm_s)),
        ("bytes sent per worker", format_size(result.bytes_per_worker)),
        ("bytes sent in total", format_size(result.bytes_total)),
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
            if not 0 < lo <= hi or count < 1:
                raise ValueError
            return np.logspace(np.log10(lo), np.log10(hi), count) * 1e9 / 8
        return np.array([parse_bandwidth(x, "Gbps", field="--grid") for x in text.split(",")])
    except ValueError:
        raise ConfigError(f"expected 'lo:hi:count' in Gbit/s or a comma list, got {text!r}", field="--grid") from None


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    model, kw = _training(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in UTIL_METHODS:
            raise ConfigError(f"unknown method {m!r} (known: {', '.join(UTIL_METHODS)})", field="--methods")
    try:
        targets = tuple(float(x) for x in args.targets.split(","))
    except ValueError:
        raise ConfigError(f"expected comma-separated fractions, got {args.targets!r}", field="--targets") from None
    grid = _grid(args.grid)
    frame = sweep_bandwidth(methods, model, grid, **kw)
    found = thresholds(frame, targets)
    if args.json:
        print(json.dumps({m: {str(t): (None if b is None else b * 8 / 1e9) for t, b in
                              zip(found.filter(pl.col("method") == m)["target"].to_list(),
                                  found.filter(pl.col("method") == m)["bandwidth"].to_list())}
                          for m in methods}, indent=1))
    else:
        table = Table(title="Lowest grid bandwidth reaching each compute utilisation")
        table.add_column("method")
        for t in targets:
            table.add_column(f"{100 * t:g}%", justify="right")
        for m in methods:
            part = found.filter(pl.col("method") == m)["bandwidth"].to_list()
            table.add_row(m, *["never" if b is None else format_bandwidth(b) for b in part])
        console.print(table)
    if args.output:
        with atomic_directory(args.output) as tmp:
            frame.write_parquet(Path(tmp) / "sweep.parquet", statistics=False)
            found.write_parquet(Path(tmp) / "thresholds.parquet", statistics=False)
            write_sweep_report(Path(tmp) / "report.html", frame, found,
                               f"netsim sweep-bandwidth — {args.workers} workers, {args.layers} layers, "
                               f"{args.params} parameters", f"H = {args.inner_steps}, F = {args.fragments}, "
                               f"tau = {args.overlap}, {args.bits}-bit exchange, latency {args.latency}.")
    return 0


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import Progress

    from netsim.scenario.train import load_train_scenario, run_training

    cfg, topo, _source = load_train_scenario(args.scenario)
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"must be >= 1, got {args.steps}", field="--steps")
        cfg = cfg.model_copy(update={"steps": args.steps})
    console.print(f"[bold]netsim train[/bold] {cfg.name}: {len(cfg.methods)} methods, {cfg.steps} steps, "
                  f"topology {topo.name}")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("training", total=len(cfg.methods))

        def step(method: str) -> None:
            bar.update(task, description=f"training {method}", advance=0 if bar.tasks[0].completed == 0 and
                       method == cfg.methods[0] else 1)

        out = run_training(cfg, topo, progress=step)
        bar.update(task, completed=len(cfg.methods))
    table = Table(title="Training summary (loss: mean over workers, last 10 steps)")
    for col in ("method", "final loss", "wall-clock", "to target", "bytes", "utilisation"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in out["summary"].iter_rows(named=True):
        table.add_row(r["method"], f"{r['final_loss']:.4f}", format_time(r["wall_s"]),
                      "-" if r["time_to_target_s"] is None else format_time(r["time_to_target_s"]),
                      format_size(r["bytes"]), f"{100 * r['utilization']:.1f}%")
    console.print(table)
    with atomic_directory(args.output) as tmp:
        out["steps"].write_parquet(Path(tmp) / "steps.parquet", statistics=False)
        out["summary"].write_parquet(Path(tmp) / "summary.parquet", statistics=False)
        write_training_report(Path(tmp) / "report.html", out["steps"], out["summary"], f"netsim train — {cfg.name}",
                              f"{cfg.steps} steps, H = {cfg.inner_steps}, F = {cfg.fragments}, tau = {cfg.overlap}, "
                              f"{cfg.exchange} exchange, topology {topo.name}.")
    console.print(f"results written to [bold]{args.output}/[/bold] (open report.html)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    commands = {"run": cmd_run, "bench": cmd_bench, "compare-routing": cmd_compare, "utilization": cmd_utilization,
                "sweep-bandwidth": cmd_sweep, "train": cmd_train, "topo": cmd_topo_show}
    try:
        return commands[args.command](args, console)
    except NetsimError as exc:
        print(f"netsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

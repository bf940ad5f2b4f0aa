"""`netsim bench`: an nccl-tests-style sweep of one collective over message sizes."""

from __future__ import annotations

import argparse

import polars as pl
from rich.console import Console

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, notice, print_json
from netsim.collectives import OPS, Communicator, algorithms
from netsim.collectives.nccl import ARCHS
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.network import model_names
from netsim.report import write_bench_report
from netsim.routing import make_policy
from netsim.scenario.budget import check_budget, collective_transfers
from netsim.sim import Simulation
from netsim.topology import PathCache, load_topology
from netsim.units import MAX_SIZE, format_size
from netsim.workloads import parse_bench_size, run_bench, size_range
from netsim.workloads.collective_bench import COLLECTIVES, beside_measured, format_table
from netsim.workloads.nccl_tests import read_nccl_tests


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help=HELP["bench"],
                       **names.epilog(names.collectives(), names.network_models(), names.routing_policies()))
    p.add_argument("--topology", required=True, help="topology YAML file")
    p.add_argument("--op", choices=list(OPS), help="collective (default all_reduce, or the one --measured ran)")
    p.add_argument("-b", "--minbytes", help="smallest size, nccl-tests style (8, 64K, 8G; default 8)")
    p.add_argument("-e", "--maxbytes", help="largest size (default 128M)")
    p.add_argument("-f", "--stepfactor", type=flags.number(1, lo_open=True), default=2.0,
                   help="multiply the size by this (> 1; default 2)")
    p.add_argument("-i", "--stepbytes", default="0", help="add this many bytes instead of multiplying")
    p.add_argument("--algo", default="auto", help="algorithm or comma-separated list (default auto; listed below)")
    p.add_argument("--ranks", type=flags.integer(1), help="use the first N GPUs (default all)")
    p.add_argument("--chunks", type=flags.integer(1), default=1, help="pipelined chunks per transfer (default 1)")
    p.add_argument("--network", default="fluid", choices=model_names(), help="network model (default fluid)")
    p.add_argument("--routing", default="ecmp", help="routing policy (default ecmp; listed below)")
    p.add_argument("--seed", type=flags.seed, default=0)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--collectives", choices=COLLECTIVES, default="ideal",
                   help="ideal: netsim's algorithms at line rate (default); nccl: NCCL's tuner picks algorithm and "
                        "protocol, and the call runs with its protocol lines, per-hop latencies and channel caps")
    p.add_argument("--sm", type=int, choices=ARCHS, default=90,
                   help="with --collectives nccl: the GPUs' compute capability x 10 (80 A100, 86 A10, 90 H100)")
    p.add_argument("--measured", metavar="FILE", help="a real nccl-tests output (all_reduce_perf and friends): "
                   "simulate its sizes (and its rank count, from its '# Rank' lines) and set the measured time and "
                   "busbw beside each row, with the error")
    p.add_argument("-o", "--output", help="also write bench.parquet and report.html (busbw against size) here")
    flags.add_max_transfers(p)
    flags.add_compress(p)


def _size(text: str, flag: str) -> int:
    value = parse_bench_size(text, flag)
    if value > MAX_SIZE:
        raise ConfigError(f"{value} bytes is beyond the largest size netsim represents (2^53 bytes)", field=flag)
    return value


def command(args: argparse.Namespace, console: Console) -> int:
    out = OutputDirectory(args.output, command="bench", outputs={"bench.parquet", "report.html"}) if args.output is not None else None
    topo = load_topology(args.topology)
    measured = read_nccl_tests(args.measured) if args.measured is not None else None
    op = args.op or (measured.op if measured is not None and measured.op else "all_reduce")
    if measured is not None and measured.op and measured.op != op:
        raise ConfigError(f"the measurement is {measured.op}, not {op}", source=measured.source, field="--op")
    algos = [a.strip() for a in args.algo.split(",") if a.strip()]
    if not algos:
        raise ConfigError(f"expected an algorithm name or a comma-separated list, got {args.algo!r}", field="--algo")
    for algo in algos:
        if algo not in algorithms(op):
            raise ConfigError(f"no algorithm {algo!r} for {op} (known: {', '.join(algorithms(op))})",
                              field="--algo")
    try:
        make_policy(args.routing, topo, PathCache(topo), args.seed)  # validates the name before any work
    except ConfigError as exc:
        raise ConfigError(exc.detail, field="--routing") from None
    if len(set(algos)) != len(algos):
        raise ConfigError(f"an algorithm is listed twice in {args.algo!r}", field="--algo")
    if args.collectives == "nccl" and not set(algos) <= {"auto", "ring", "tree"}:
        raise ConfigError("with --collectives nccl NCCL's tuner picks the algorithm: auto (default), or ring or tree "
                          "to force one, as NCCL_ALGO does", field="--algo")
    n = args.ranks or (measured.ranks if measured is not None and measured.ranks else len(topo.gpus))
    if n > len(topo.gpus) or n < 2:
        where = "" if args.ranks or measured is None or not measured.ranks else " (the measurement's ranks)"
        raise ConfigError(f"must be between 2 and {len(topo.gpus)} (the topology's GPUs), got {n}{where}",
                          field="--ranks")
    if measured is not None:
        if args.minbytes is not None or args.maxbytes is not None or args.stepfactor != 2.0 or args.stepbytes != "0":
            raise ConfigError("--measured runs the measurement's sizes; leave -b/-e/-f/-i out", field="-b/-e")
        if args.ranks and measured.ranks and args.ranks != measured.ranks:
            raise ConfigError(f"the measurement ran on {measured.ranks} ranks, not {args.ranks}", field="--ranks")
        sizes = [r.size_B for r in measured.rows]
    else:
        sizes = size_range(_size(args.minbytes or "8", "-b"), _size(args.maxbytes or "128M", "-e"), args.stepfactor,
                           _size(args.stepbytes, "-i"))
    for size in sizes:
        if args.chunks > max(size, 1):
            raise ConfigError(f"{args.chunks} chunks for a {size}-byte message: a chunk must hold at least one byte",
                              field="--chunks")
    probe = Communicator(Simulation(topo, network=args.network, routing=args.routing, seed=args.seed,
                                    record_links=False, collectives=args.collectives, sm=args.sm,
                                    compress=args.compress),
                         topo.gpus[:n], name="estimate")
    estimate = sum(collective_transfers(probe, op, size, algo, args.chunks) for algo in algos for size in sizes)
    check_budget(estimate, f"this sweep ({len(algos)} x {len(sizes)} runs)", args.max_transfers)
    rows = []
    with Stages(len(algos) * len(sizes), "bench", quiet=args.json, prefix="# ") as stages:
        for algo in algos:
            for size in sizes:
                stages.start(f"{algo} {format_size(size)}")
                rows += run_bench(topo, op, [size], [algo], ranks=n, network=args.network,
                                  routing=args.routing, seed=args.seed, chunks=args.chunks,
                                  collectives=args.collectives, arch=args.sm, compress=args.compress)
    records = beside_measured(rows, measured)
    if args.json:
        print_json("bench", records, op=op, ranks=n, topology=topo.name,
                   measured=None if measured is None else measured.source)
    else:
        print(format_table(op, n, rows, measured))
        print("# algo: the algorithm that ran; 'NAMExK' = `auto` chose NAME pipelined in K chunks")
    if out is not None:
        frame = pl.DataFrame(records)
        with out.writing() as tmp:
            frame.write_parquet(tmp / "bench.parquet", statistics=False)
            write_bench_report(tmp / "report.html", frame, f"netsim bench — {op} on {topo.name}",
                               f"{n} ranks, {args.network} model, {args.routing} routing; busbw uses the "
                               f"nccl-tests factor for {op}." + ("" if measured is None else
                                                                 f" Measured: {measured.source} (out-of-place)."))
        if not args.json:
            notice(f"# results written to {out.shown} (bench.parquet, report.html)")
    return 0

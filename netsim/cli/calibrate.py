"""`netsim calibrate`: fit a topology's per-connection bandwidth and latency to real nccl-tests runs."""

from __future__ import annotations

import argparse

import polars as pl
from rich.console import Console
from rich.table import Table

from netsim.cli import flags
from netsim.cli.commands import HELP
from netsim.cli.progress import notice, print_json
from netsim.collectives import OPS
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.topology import load_topology
from netsim.topology.config import find_topology
from netsim.units import format_bandwidth, format_time


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help=HELP["calibrate"],
                       description="Fit connection_bandwidth (the most one connection gets) and connection_latency "
                                   "(what each transfer pays) of a topology to nccl-tests outputs, and write the "
                                   "calibrated topology file with the fit's error before and after.")
    p.add_argument("files", nargs="+", metavar="FILE", help="nccl-tests outputs (all_reduce_perf and friends), as "
                   "printed")
    p.add_argument("--topology", required=True, help="the topology YAML file (or a shipped name) to calibrate")
    p.add_argument("--op", choices=list(OPS), help="the collective of outputs that do not name their test")
    p.add_argument("--ranks", type=flags.integer(2), help="ranks of outputs without '# Rank' lines (default all "
                   "GPUs)")
    p.add_argument("--algo", default="auto", help="the algorithm to simulate each run with (default auto)")
    p.add_argument("-o", "--output", default="out/calibrate",
                   help="directory for the calibrated topology (NAME_calibrated.yaml) and fit.parquet")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.workloads.calibrate import calibrate, calibrated_yaml
    from netsim.workloads.nccl_tests import read_nccl_tests

    path = find_topology(args.topology)
    if path is None:
        raise ConfigError("file not found, and not the name of a shipped topology", source=args.topology)
    name = path.stem + "_calibrated.yaml"
    out = OutputDirectory(args.output, command="calibrate", outputs={name, "fit.parquet"})
    topo = load_topology(path)
    measurements = [read_nccl_tests(f, field="FILE") for f in args.files]
    fit = calibrate(topo, measurements, op=args.op, ranks=args.ranks, algo=args.algo)
    frame = pl.DataFrame([{"source": r.source, "op": r.op, "ranks": r.ranks, "sizes": r.sizes,
                           "plateau_busbw_Bps": r.plateau_busbw_Bps, "time_error_before": r.error_before,
                           "time_error_after": r.error_after} for r in fit.runs])
    if args.json:
        print_json("calibrate", frame.to_dicts(), topology=topo.name, connection_bandwidth_Bps=fit.connection_bandwidth,
                   connection_latency_s=fit.connection_latency, link_limited=fit.link_limited)
    else:
        table = Table(title=f"calibrate {topo.name}: connection_bandwidth {format_bandwidth(fit.connection_bandwidth)} "
                            f"({fit.connection_bandwidth / 1e9:.4g} GB/s), connection_latency "
                            f"{format_time(fit.connection_latency)}")
        for col in ("run", "op", "ranks", "sizes", "plateau busbw", "error before", "error after"):
            table.add_column(col, justify="left" if col in ("run", "op") else "right")
        for r in fit.runs:
            table.add_row(r.source, r.op, str(r.ranks), str(r.sizes), f"{r.plateau_busbw_Bps / 1e9:.2f} GB/s",
                          f"{100 * r.error_before:.1f}%", f"{100 * r.error_after:.1f}%")
        console.print(table)
        console.print("error: geometric mean over sizes of |simulated / measured time - 1|")
    if fit.link_limited:
        notice("note: the topology's links are slower than the measured busbw: the per-connection cap cannot bind; "
               "raise the link bandwidths first")
    with out.writing() as tmp:
        (tmp / name).write_text(calibrated_yaml(path.read_text(encoding="utf-8"), fit, list(args.files)),
                                encoding="utf-8")
        frame.write_parquet(tmp / "fit.parquet", statistics=False)
    notice(f"calibrated topology written to {out.shown}/{name}")
    return 0

"""`netsim trace show`: what a trace reader found, so a trace can be trusted before it is replayed."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import print_json
from netsim.units import format_size, format_time


def reader_help() -> str:
    from netsim.traces.readers import READERS

    return "trace formats (--format; auto recognises them):\n" + "\n".join(
        f"  {r.name}: {r.help}" for r in READERS.values())


def add_trace_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trace", help="trace file, folder, or per-rank prefix (e.g. traces/ddp2/chakra for chakra.<rank>.et)")
    p.add_argument("--format", default="auto", help="trace format (default auto; listed below)")
    p.add_argument("--npus", type=flags.integer(1, 131_072), help="ranks for a text workload that does not say")


def add_parser(sub) -> None:
    trace = sub.add_parser("trace", help=HELP["trace"])
    trace_sub = trace.add_subparsers(dest="trace_command", required=True)
    show = trace_sub.add_parser("show", help="read a trace and print what it holds", **names.epilog(reader_help()))
    add_trace_arguments(show)
    show.add_argument("--json", action="store_true")


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.traces import load_trace
    from netsim.traces.model import summary

    s = summary(load_trace(args.trace, format=args.format, npus=args.npus))
    if args.json:
        print_json("trace show", s.pop("collectives"), **s)
        return 0
    nodes = ", ".join(f"{k} {v}" for k, v in s["nodes"].items())
    console.print(f"{s['source']} ({s['format']}): {s['ranks']} ranks; nodes: {nodes}; compute "
                  f"{format_time(s['compute_s_per_rank'])} per rank — valid")
    console.print("process groups: " + "; ".join(f"{k}: ranks {v[0]}..{v[-1]} ({len(v)})" if len(v) > 4 else
                                                 f"{k}: ranks {v}" for k, v in s["groups"].items()))
    if s["collectives"]:
        table = Table(title="Collectives (per call: every rank of the group takes part)")
        for col in ("op", "group", "ranks", "size", "calls per rank"):
            table.add_column(col, justify="left" if col in ("op", "group") else "right")
        for c in s["collectives"]:
            table.add_row(c["op"], c["group"], str(c["ranks"]), format_size(c["size_B"]), str(c["calls_per_rank"]))
        console.print(table)
    if s["transfers"]:
        table = Table(title="Point-to-point transfers")
        for col in ("from", "to", "messages", "bytes"):
            table.add_column(col, justify="right")
        for t in s["transfers"]:
            table.add_row(str(t["src"]), str(t["dst"]), str(t["messages"]), format_size(t["sent_B"]))
        console.print(table)
    console.print(f"bytes: collectives {format_size(s['collective_B_per_rank'])} per rank (buffer sizes "
                  f"summed over calls), point to point {format_size(s['p2p_B'])}")
    for reason, count in s["skipped"].items():
        console.print(f"skipped {count}: {reason}")
    return 0

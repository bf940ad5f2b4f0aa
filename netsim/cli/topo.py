"""`netsim topo show`: validate a topology file (or a shipped topology, by name) and summarise it;
`netsim topo list`: the topologies that come with netsim."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli import names
from netsim.cli.commands import HELP
from netsim.cli.progress import print_json
from netsim.topology import load_topology
from netsim.config.yaml_file import leading_comment
from netsim.topology.config import read_yaml, shipped_topologies
from netsim.topology.summary import MAX_BISECTION_LINKS, summarize_topology
from netsim.units import format_bandwidth, format_time

PATH_SAMPLE = 256  # destinations whose equal-cost paths from GPU 0 are counted


def add_parser(sub) -> None:
    topo = sub.add_parser("topo", help=HELP["topo"])
    topo_sub = topo.add_subparsers(dest="topo_command", required=True)
    show = topo_sub.add_parser("show", help="validate a topology file and print a summary",
                               **names.epilog(names.topology_kinds_text()))
    show.add_argument("file", help="topology YAML file, or the name of a shipped topology (netsim topo list)")
    show.add_argument("--json", action="store_true", help="print the links by tier as JSON (meta: the summary)")
    listing = topo_sub.add_parser("list", help="the topologies that come with netsim (usable by name: "
                                               "--topology rail64, topology: rail64)")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")


def list_command(args: argparse.Namespace, console: Console) -> int:
    rows = []
    for name, path in shipped_topologies().items():
        topo = load_topology(name)
        kind = read_yaml(path).get("kind", "")
        rows.append({"name": name, "kind": kind, "gpus": int(topo.gpus.size), "description": leading_comment(path)})
    if args.json:
        print_json("topo list", rows)
        return 0
    table = Table(title="Shipped topologies (use by name: --topology NAME, topology: NAME)")
    for col in ("name", "kind", "GPUs", "description"):
        table.add_column(col, justify="right" if col == "GPUs" else "left", overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["kind"], str(r["gpus"]), r["description"])
    console.print(table)
    return 0


def command(args: argparse.Namespace, console: Console) -> int:
    if args.topo_command == "list":
        return list_command(args, console)
    topo = load_topology(args.file)
    s = summarize_topology(topo, sample=PATH_SAMPLE)
    if args.json:
        print_json("topo show", [{"tier": t, "directed_links": c, "bandwidth_min_Bps": cap, "latency_max_s": lat}
                                 for t, c, cap, lat in s.links], name=s.name, kind=s.kind, gpus=s.gpus,
                   nodes=s.nodes, links=topo.num_links, bisection_Bps=s.bisection,
                   equal_cost_paths_from_gpu0={str(k): v for k, v in s.path_counts.items()},
                   connection_bandwidth_Bps=topo.meta.get("connection_bandwidth"),
                   connection_latency_s=topo.meta.get("connection_latency"))
        return 0
    console.print(f"{s.name} ({s.kind}): {s.gpus} GPUs, {topo.num_nodes} nodes, "
                  f"{topo.num_links} directed links — valid")
    console.print("nodes: " + ", ".join(f"{k} {v}" for k, v in s.nodes.items()))
    table = Table(title="Links by tier")
    for col in ("tier", "directed links", "bandwidth (min)", "latency (max)"):
        table.add_column(col, justify="left" if col == "tier" else "right")
    for tier, count, cap, lat in s.links:
        table.add_row(tier, str(count), format_bandwidth(cap), format_time(lat))
    console.print(table)
    if topo.meta.get("connection_bandwidth") is not None:
        console.print(f"each connection: at most {format_bandwidth(topo.meta['connection_bandwidth'])} "
                      "(connection_bandwidth), however idle its links")
    if topo.meta.get("connection_latency"):
        console.print(f"each transfer: {format_time(topo.meta['connection_latency'])} more (connection_latency)")
    if s.bisection is None:
        console.print(f"bisection bandwidth: not computed ({topo.num_links:,} links; the max-flow is done up to "
                      f"{MAX_BISECTION_LINKS:,})")
    else:
        console.print(f"bisection bandwidth (GPUs 0..{s.gpus // 2 - 1} -> the rest, max-flow): "
                      f"{format_bandwidth(s.bisection)}")
    counted = sum(s.path_counts.values())
    sampled = f" ({counted} of {s.gpus - 1} GPUs, evenly spaced)" if counted < s.gpus - 1 else ""
    console.print(f"equal-cost paths from GPU 0{sampled}: " + ", ".join(
        f"{paths} path{'s' if paths > 1 else ''} to {pairs} GPU{'s' if pairs > 1 else ''}"
        for paths, pairs in s.path_counts.items()))
    return 0

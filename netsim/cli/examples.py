"""`netsim examples`: the example inputs that ship with netsim, each usable by its bare name."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli.commands import HELP
from netsim.cli.progress import print_json
from netsim.config.yaml_file import leading_comment, read_yaml, shipped_examples


def add_parser(sub) -> None:
    p = sub.add_parser("examples", help=HELP["examples"])
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def _command_for(doc: dict) -> str:
    """The command an example is written for, from its keys."""
    if "job" in doc or "campaign" in doc:
        return "faults"
    if "seq" in doc:
        return "attention"
    if "grid" in doc or "zip" in doc:
        return "sweep"
    if "methods" in doc:
        return "train"
    return "compare-routing" if "jobs" in doc else "run"


def command(args: argparse.Namespace, console: Console) -> int:
    rows = [{"name": name, "command": f"netsim {_command_for(read_yaml(path))} {name}",
             "description": leading_comment(path)} for name, path in shipped_examples().items()]
    if args.json:
        print_json("examples", rows)
        return 0
    table = Table(title="Examples that ship with netsim (use by name, or copy one to start your own)")
    for col in ("name", "run it", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["command"], r["description"])
    console.print(table)
    return 0

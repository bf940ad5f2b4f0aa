"""`netsim run`: a scenario file (or the built-in one), one simulation per routing policy."""

from __future__ import annotations

import argparse
import json

import polars as pl
from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, notice, print_json
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.report import write_report
from netsim.scenario import default_scenario, load_scenario, run_scenario, summarize
from netsim.scenario.budget import check_budget, scenario_transfers
from netsim.scenario.runner import export_program
from netsim.scenario.summary import busiest_links, timeline
from netsim.traces import chakra
from netsim.units import format_bandwidth, format_size, format_time


RUN_OUTPUTS = {"summary.parquet", "report.html", "meta.json", "transfers.parquet", "collectives.parquet",
               "links.parquet", "link_timeline.parquet", "timeline.json"}  # checked before the run; any others when written


def add_parser(sub) -> None:
    p = sub.add_parser("run", help=HELP["run"],
                       **names.epilog(names.topology_kinds_text(), names.network_models(), names.routing_policies(),
                                      names.collectives()))
    p.add_argument("scenario", nargs="?", help="scenario YAML file; omitted: the built-in default")
    p.add_argument("-o", "--output", default="out/run",
                   help="directory for Parquet results, timeline.json (Perfetto, chrome://tracing), the jobs as "
                        "Chakra ET (chakra.R.et per rank) and report.html "
                        "(default: out/run); it must be new, empty, "
                        "or hold an earlier output of netsim run")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--json", action="store_true", help="print the summary (a row per variant and collective) as JSON")
    flags.add_max_transfers(p)


def command(args: argparse.Namespace, console: Console) -> int:
    out = OutputDirectory(args.output, command="run", outputs=RUN_OUTPUTS)
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    check_budget(scenario_transfers(scenario, at_once=args.max_transfers is None), f"scenario {scenario.name!r}",
                 args.max_transfers, source=scenario.source)
    if not args.json:
        console.print(f"netsim run {scenario.name}: topology {scenario.topology.name} "
                      f"({len(scenario.topology.gpus)} GPUs), routing {', '.join(scenario.config.routing)}")
    with Stages(len(scenario.config.routing), "simulating", quiet=args.json) as stages:
        try:
            # per-transfer rows only for transfers.parquet (the summary and the report use none)
            results = run_scenario(scenario, progress=stages.start,
                                   transfers="keep" if scenario.config.outputs.parquet else "drop")
        except ConfigError as exc:  # found while running (a routing policy that cannot serve this fabric)
            if exc.source is None:
                raise ConfigError(exc.detail, source=scenario.source, field=exc.field) from None
            raise
    summary = summarize(results)
    if args.json:
        print_json("run", summary.to_dicts(), scenario=scenario.name, source=scenario.source,
                   topology=scenario.topology.name, gpus=len(scenario.topology.gpus), routing=scenario.config.routing)
    else:
        print_summary(summary, results.links, console)
    outputs = scenario.config.outputs
    report = outputs.report and not args.no_report
    with out.writing() as tmp:
        if outputs.parquet:
            results.write(tmp)
            summary.write_parquet(tmp / "summary.parquet", statistics=False)
            (tmp / "timeline.json").write_text(json.dumps(timeline(results)), encoding="utf-8")
            chakra.write(export_program(scenario), tmp / "chakra")  # chakra.R.et: the jobs as Chakra ET
        if report:
            write_report(tmp / "report.html", results, scenario.topology, summary,
                         title=f"netsim — {scenario.name}", description=scenario.config.description)
    notice(f"results written to {out.shown}" + (" (open report.html)" if report else ""))
    return 0


def print_summary(summary: pl.DataFrame, links: pl.DataFrame, console: Console) -> None:
    """The collectives table, then per variant the run's busiest link (one number per run, not per row)."""
    table = Table(title="Collectives (mean per call)")
    for col in ("variant", "collective", "op/algo", "ranks", "size", "calls", "time", "algbw", "busbw"):
        table.add_column(col, justify="left" if col in ("variant", "collective", "op/algo") else "right")
    jobs = summary["job"].n_unique() > 1
    for r in summary.iter_rows(named=True):
        table.add_row(r["variant"], f"{r['job']}: {r['label']}" if jobs else r["label"], f"{r['op']}/{r['algo']}",
                      str(r["ranks"]), format_size(r["size_B"]), str(r["count"]), format_time(r["time_mean_s"]),
                      _rate(r["algbw_Bps"]), _rate(r["busbw_Bps"]))
    console.print(table)
    console.print("algo 'NAMExK': the algorithm `auto` chose, pipelined in K chunks")
    for r in busiest_links(links).iter_rows(named=True):
        console.print(f"busiest link ({r['variant']}, whole run): {r['name']}, {format_size(r['carried_B'])}, "
                      f"peak {100 * r['peak_utilization']:.0f}% of its capacity")


def _rate(value: float | None) -> str:
    return "-" if value is None else format_bandwidth(value)

"""`netsim compare-routing`: a scenario once per routing policy, each job alone, and an ideal reference."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, notice, print_json
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.report import write_compare_report
from netsim.scenario import load_scenario
from netsim.scenario.budget import check_budget, scenario_transfers
from netsim.scenario.compare import compare_routing
from netsim.units import format_bandwidth, format_time


def add_parser(sub) -> None:
    p = sub.add_parser("compare-routing", help=HELP["compare-routing"],
                       **names.epilog(names.routing_policies()))
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--policies", default="ecmp,spray,split:min,planned",
                   help="comma-separated routing policies (default ecmp,spray,split:min,planned; listed below)")
    p.add_argument("-o", "--output", default="out/compare", help="directory for Parquet and report.html")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    flags.add_max_transfers(p)


def command(args: argparse.Namespace, console: Console) -> int:
    out = OutputDirectory(args.output, command="compare-routing",
                          outputs={"compare.parquet", "links.parquet", "report.html"})
    scenario = load_scenario(args.scenario)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies or len(set(policies)) != len(policies):
        raise ConfigError(f"expected distinct comma-separated policy names, got {args.policies!r}",
                          field="--policies")
    from netsim.routing.policy import policy_names

    unknown = [p for p in policies if p.partition(":")[0] not in policy_names()]
    if unknown:
        raise ConfigError(f"unknown routing policy {unknown[0]!r} (known: {', '.join(policy_names())})",
                          field="--policies")
    jobs = len(scenario.config.job_list())
    per_run = scenario_transfers(scenario, at_once=args.max_transfers is None) // len(scenario.config.routing)
    runs = 1 + len(policies) * (1 + (jobs if jobs > 1 else 0))
    check_budget(per_run * runs, f"comparing {len(policies)} policies ({runs} runs)", args.max_transfers,
                 source=scenario.source)
    with Stages(jobs + len(policies) * (1 + (jobs if jobs > 1 else 0)), "compare-routing",
                quiet=args.json) as stages:
        try:
            result = compare_routing(scenario, policies, progress=stages.start)
        except ConfigError as exc:
            if exc.field != "routing" or exc.source is not None:
                raise
            if "needs" in exc.detail:  # a policy that cannot serve this scenario's fabric: the scenario's matter
                raise ConfigError(exc.detail, source=scenario.source, field="--policies") from None
            raise ConfigError(exc.detail, field="--policies") from None  # (a policy's argument, e.g. split:x)
    table = result.table
    if args.json:
        print_json("compare-routing", table.to_dicts(), scenario=scenario.name, source=scenario.source,
                   policies=policies)
    else:
        view = Table(title=f"compare-routing: {scenario.name}")
        for col in ("policy", "job", "collective", "time", "busbw", "% of ideal", "slowdown", "worst step load/bound"):
            view.add_column(col, justify="left" if col in ("policy", "job", "collective") else "right")
        for r in table.iter_rows(named=True):
            ratio = r.get("worst_step_load_ratio")
            view.add_row(r["variant"], r["job"], r["label"], format_time(r["time_mean_s"]),
                         "-" if r["busbw_Bps"] is None else format_bandwidth(r["busbw_Bps"]),
                         "-" if r["pct_of_ideal"] is None else f"{r['pct_of_ideal']:.1f}%",
                         "-" if r["slowdown"] is None else f"{r['slowdown']:.3f}",
                         "-" if ratio is None else f"{ratio:.3f}")
        console.print(view)
    with out.writing() as tmp:
        table.write_parquet(tmp / "compare.parquet", statistics=False)
        if len(result.steps):
            result.steps.write_parquet(tmp / "steps.parquet", statistics=False)
        result.links.write_parquet(tmp / "links.parquet", statistics=False)
        write_compare_report(tmp / "report.html", table, result.steps, result.links,
                             f"netsim compare-routing — {scenario.name}",
                             f"Topology {scenario.topology.name}; policies {', '.join(policies)}; seed "
                             f"{scenario.config.seed}. Ideal = each job alone with ideal packet spraying.")
    if not args.json:
        notice(f"results written to {out.shown} (open report.html)")
    return 0

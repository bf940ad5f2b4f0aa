"""`netsim faults`: a long job with faults, C4D-like detection and recovery, or a campaign of them."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, print_json
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.faults.spec import FAULT_KINDS, MODE_LABELS, PARTS, POLICIES
from netsim.units import format_time

OUTPUTS = {"faults.parquet", "runs.parquet", "report.html"}
PRODUCTION_OUTPUTS = {"faults.parquet", "runs.parquet", "downtime.parquet", "report.html"}
CAMPAIGN_OUTPUTS = {"classes.parquet", "runs.parquet", "downtime.parquet", "report.html"}


def add_parser(sub) -> None:
    listing = names.epilog("fault kinds:\n" + "\n".join(f"  {k}: {v}" for k, v in FAULT_KINDS.items()),
                           "recovery policies (--recovery):\n" + "\n".join(f"  {k}: {v}" for k, v in POLICIES.items()))
    p = sub.add_parser("faults", help=HELP["faults"],
                       **listing)
    p.add_argument("scenario", help="fault scenario YAML (see validation/c4d_campaign.yaml)")
    p.add_argument("--campaign", type=flags.integer(1, 10_000), help="N runs, one random fault each, with and "
                                                                      "without detection")
    p.add_argument("--production", action="store_true",
                   help="the job over the scenario's `production` days under faults drawn from production rates "
                        "(MTBFs per GPU, server, NIC, network, software), with the detector, the manual-diagnosis "
                        "baseline and the watchdog alone")
    p.add_argument("--recovery", choices=tuple(POLICIES), help="override the scenario's recovery policy")
    p.add_argument("--policy", dest="recovery", choices=tuple(POLICIES), action=flags.renamed("--recovery"),
                   help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", help="write Parquet and report.html here (and, without --campaign, one healthy "
                   "iteration of the job as Chakra ET: chakra_iteration.R.et)")


def command(args: argparse.Namespace, console: Console) -> int:
    try:
        return _command(args, console)
    except ConfigError as exc:
        if exc.source is None and not (exc.field or "").startswith("-"):  # raised while running: the file's
            raise ConfigError(exc.detail, source=args.scenario, field=exc.field) from None
        raise


def _command(args: argparse.Namespace, console: Console) -> int:
    from netsim.faults.iteration import State, iteration_program
    from netsim.report import write_faults_report
    from netsim.traces import chakra
    from netsim.scenario.faults import fault_table, load_fault_scenario, run_campaign, run_scenario

    if args.campaign and args.production:
        raise ConfigError("--campaign and --production are two studies: give one", field="--production")
    outputs = CAMPAIGN_OUTPUTS if args.campaign else PRODUCTION_OUTPUTS if args.production else OUTPUTS
    out = OutputDirectory(args.output, command="faults", outputs=outputs) if args.output is not None else None
    cfg, topo = load_fault_scenario(args.scenario)
    if args.production:
        return _production(args, console, cfg, topo, out)
    if args.campaign:
        with Stages(args.campaign, "fault campaign", quiet=args.json) as stages:
            result = run_campaign(cfg, topo, args.campaign, args.recovery, progress=stages.start)
        rate = result.false_alarms / result.checks if result.checks else 0.0
        if args.json:
            print_json("faults", result.classes.to_dicts(), scenario=cfg.name, campaign=args.campaign,
                       false_alarms=result.false_alarms, checks=result.checks, downtime=result.downtime.to_dicts())
        else:
            table = Table(title=f"{cfg.name}: {args.campaign} runs, one random fault each")
            for col in ("fault", "class", "recall", "class precision", "place precision", "place recall",
                        "latency (median)", "overhead with", "overhead without"):
                table.add_column(col, justify="left" if col in ("fault", "class") else "right")
            for r in result.classes.iter_rows(named=True):
                among = f" (+{r['among_candidates']} among candidates)" if r["among_candidates"] else ""
                table.add_row(r["kind"], r["class"], f"{r['right_class_and_place']}/{r['injected']}{among}",
                              "-" if r["class_precision"] is None else f"{r['class_precision']:.2f}",
                              "-" if r["place_precision"] is None else f"{r['place_precision']:.2f}",
                              f"{r['place_recall']:.2f}",
                              "-" if r["latency_median_s"] is None else format_time(r["latency_median_s"]),
                              format_time(r["overhead_with_s"]), format_time(r["overhead_without_s"]))
            console.print(table)
            console.print(f"false alarms: {result.false_alarms} in {result.checks} checks ({rate:.2g} per check)")
            for r in result.downtime.iter_rows(named=True):
                parts = ", ".join(f"{name.replace('_', ' ')} {100 * r[name + '_share']:.1f}%" for name in PARTS
                                  if r.get(name + "_share"))
                console.print(f"error-induced downtime {'with detection' if r['mode'] == 'detector' else 'without'}: "
                              f"{100 * r['downtime_share']:.1f}% of {format_time(r['wall_s'])} ({parts})")
        if out is not None:
            with out.writing() as tmp:
                result.classes.write_parquet(tmp / "classes.parquet", statistics=False)
                result.runs.write_parquet(tmp / "runs.parquet", statistics=False)
                result.downtime.write_parquet(tmp / "downtime.parquet", statistics=False)
                write_faults_report(tmp / "report.html", f"netsim faults — {cfg.name} (campaign)", None, None,
                                    result)
        return 0
    results = run_scenario(cfg, topo, args.recovery)
    faults = fault_table(results)
    summary = {mode: r.summary() for mode, r in results.items()}
    if args.json:
        print_json("faults", faults.to_dicts(), scenario=cfg.name, runs=summary)
    else:
        t = Table(title=f"{cfg.name}: {cfg.job.iterations} iterations on {topo.name}")
        t.add_column("")
        for mode in results:
            t.add_column("with detection" if mode == "detector" else "without (watchdog)", justify="right")
        for key, label in (("wall_s", "wall time"), ("fault_free_s", "fault-free"), ("overhead_s", "overhead"),
                           ("lost_work_s", "  lost work"), ("detection_s", "  detection (stalled)"),
                           ("diagnosis_s", "  diagnosis"), ("restart_s", "  restart"),
                           ("slowed_s", "  slowed iterations"), ("checkpoint_s", "  checkpoint writes")):
            t.add_row(label, *[format_time(summary[m][key]) for m in results])
        t.add_row("iterations / s", *[f"{summary[m]['iterations_per_s']:.4g}" for m in results])
        console.print(t)
        f = Table(title="Faults (with detection)")
        for col in ("fault", "target", "struck", "detected", "class", "culprit", "right", "recovered"):
            f.add_column(col)
        for r in faults.filter(faults["mode"] == "detector").iter_rows(named=True):
            f.add_row(r["kind"], r["target"], "-" if r["struck_s"] is None else f"{r['struck_s']:.1f}s",
                      "-" if r["detected_s"] is None else f"{r['detected_s']:.1f}s", r["class"] or "-", r["culprit"] or "-",
                      "-" if r["correct"] is None else ("yes" if r["correct"] else "no"),
                      "-" if r["recovered_s"] is None else f"{r['recovered_s']:.1f}s")
        console.print(f)
    if out is not None:
        import polars as pl

        runs = pl.DataFrame([{"mode": m, **s} for m, s in summary.items()])
        with out.writing() as tmp:
            faults.write_parquet(tmp / "faults.parquet", statistics=False)
            runs.write_parquet(tmp / "runs.parquet", statistics=False)
            job = cfg.job_spec()  # one healthy iteration of the job, for Chakra's tools (faults have no Chakra form)
            chakra.write(iteration_program(job, State(tuple(range(job.replicas)))), tmp / "chakra_iteration")
            write_faults_report(tmp / "report.html", f"netsim faults — {cfg.name}", runs, faults, None)
    return 0


def _production(args: argparse.Namespace, console: Console, cfg, topo, out) -> int:
    from netsim.report import write_production_report
    from netsim.scenario.faults import run_production

    prod = cfg.production
    with Stages((len(set(prod.modes)) + len(prod.variants)) * prod.seeds, "production study", quiet=args.json) as stages:
        result = run_production(cfg, topo, args.recovery, progress=stages.start)
    if args.json:
        print_json("faults", result.downtime.to_dicts(), scenario=cfg.name, days=prod.days, seeds=prod.seeds,
                   iteration_s=result.iteration_s, runs=result.runs.to_dicts(),
                   sources={name: {"mtbf_hours": c.mtbf_hours, "per": c.per, "kinds": c.kinds, "source": c.source}
                            for name, c in result.sources.items()})
    else:
        table = Table(title=f"{cfg.name}: {cfg.job.replicas * cfg.job.pp * cfg.job.tp} GPUs, {prod.days:g} days of "
                            f"training, {prod.seeds} fault stream(s) at {prod.scale:g}x production rates")
        table.add_column("")
        for r in result.downtime.iter_rows(named=True):
            table.add_column(MODE_LABELS.get(r["mode"], r["mode"]), justify="right")
        rows = result.downtime.to_dicts()
        struck = {m: int(result.runs.filter(result.runs["mode"] == m)["faults"].sum()) for m in result.downtime["mode"]}
        table.add_row("faults struck", *[str(struck[r["mode"]]) for r in rows])
        table.add_row("wall-clock, every stream", *[f"{r['wall_s'] / 86400:.2f} days" for r in rows])
        table.add_row("error-induced downtime", *[f"{100 * r['downtime_share']:.2f}%" for r in rows])
        for name in PARTS:
            table.add_row(f"  {name.replace('_', ' ')}", *[f"{100 * r[name + '_share']:.2f}%" for r in rows])
        console.print(table)
        console.print("(checkpoint writes are paid with or without faults: not in the error-induced share)")
    if out is not None:
        with out.writing() as tmp:
            result.runs.write_parquet(tmp / "runs.parquet", statistics=False)
            result.faults.write_parquet(tmp / "faults.parquet", statistics=False)
            result.downtime.write_parquet(tmp / "downtime.parquet", statistics=False)
            write_production_report(tmp / "report.html", f"netsim faults — {cfg.name} (production)", result)
    return 0

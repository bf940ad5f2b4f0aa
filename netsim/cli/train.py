"""`netsim train`: real training per method on the simulated clock (built-in: 4 datacenters)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, notice, print_json
from netsim.config import OutputDirectory
from netsim.errors import needs
from netsim.report import write_training_report
from netsim.units import format_size, format_time
from netsim.workloads.methods import help_text


def add_parser(sub) -> None:
    p = sub.add_parser("train", help=HELP["train"],
                       **names.epilog("training methods (methods: in a training scenario):\n" + "\n".join(
                           "  " + line for line in help_text(training=True).splitlines())))
    p.add_argument("scenario", nargs="?", help="training scenario YAML; omitted: the built-in one")
    p.add_argument("-o", "--output", default="out/train", help="directory for Parquet, report.html, timeline.json "
                   "(each method's workers, for Perfetto or chrome://tracing) and each method's timing as Chakra ET "
                   "(chakra_METHOD.R.et)")
    p.add_argument("--steps", type=flags.integer(1, 10**6), help="override the scenario's number of steps")
    p.add_argument("--json", action="store_true", help="print the summary (a row per method) as JSON")


def command(args: argparse.Namespace, console: Console) -> int:
    needs("torch", "train", "netsim train")
    from netsim.program.timeline import write_timeline
    from netsim.traces import chakra
    from netsim.scenario.train import load_train_scenario, run_training  # torch loads only for this command

    out = OutputDirectory(args.output, command="train", outputs={"steps.parquet", "summary.parquet", "report.html",
                                                                        "timeline.json"})
    cfg, topo, _source = load_train_scenario(args.scenario)
    if args.steps is not None:
        cfg = cfg.model_copy(update={"steps": args.steps})
    if not args.json:
        console.print(f"netsim train {cfg.name}: {len(cfg.methods)} methods, {cfg.steps} steps, "
                      f"topology {topo.name}")
    with Stages(len(cfg.methods), "training", quiet=args.json) as stages:
        result = run_training(cfg, topo, progress=stages.start)
    summary = result["summary"]
    if args.json:
        print_json("train", summary.to_dicts(), scenario=cfg.name, steps=cfg.steps, topology=topo.name)
    else:
        table = Table(title="Training summary (loss: mean over workers, last 10 steps)")
        for col in ("method", "final loss", "wall-clock", "to target", "bytes", "utilisation"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for r in summary.iter_rows(named=True):
            table.add_row(r["method"], f"{r['final_loss']:.4f}", format_time(r["wall_s"]),
                          "-" if r["time_to_target_s"] is None else format_time(r["time_to_target_s"]),
                          format_size(r["sent_B"]), f"{100 * r['utilization']:.1f}%")
        console.print(table)
    if "syncs" in summary.columns:
        for r in summary.iter_rows(named=True):
            if r["syncs"] == 0 and r["method"] != "ddp":
                notice(f"warning: {r['method']} never synchronised in {cfg.steps} steps "
                       f"(it syncs every {cfg.inner_steps}); its bytes and utilisation say nothing about "
                       "its communication")
    with out.writing() as tmp:
        result["steps"].write_parquet(tmp / "steps.parquet", statistics=False)
        summary.write_parquet(tmp / "summary.parquet", statistics=False)
        rows, processes = result["timeline"]
        write_timeline(tmp / "timeline.json", rows, names=processes)
        for method, program in result["programs"].items():  # each method's timing, for Chakra's tools
            chakra.write(program, tmp / f"chakra_{method}")
        write_training_report(tmp / "report.html", result["steps"], summary, f"netsim train — {cfg.name}",
                              f"{cfg.steps} steps, H = {cfg.inner_steps}, F = {cfg.fragments}, tau = {cfg.overlap}, "
                              f"{cfg.exchange} exchange, topology {topo.name}.")
    notice(f"results written to {out.shown} (open report.html)")
    return 0

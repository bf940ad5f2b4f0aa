"""`netsim attention`: context-parallel attention schemes (Ring, zigzag Ring, TokenRing, Ulysses) on a fabric."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import Stages, notice, print_json
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.units import format_size, format_time
from netsim.workloads.attention import DTYPES, SCHEMES

FLAG_FIELDS = {  # flag attribute -> scenario field
    "topology": "topology", "gpus": "gpus", "seq": "seq", "heads": "heads", "kv_heads": "kv_heads",
    "head_dim": "head_dim", "batch": "batch", "dtype": "dtype", "tflops": "tflops", "efficiency": "efficiency",
}
OUTPUTS = {"summary.parquet", "tasks.parquet", "links.parquet", "sweep.parquet", "report.html", "timeline.json"}


def add_parser(sub) -> None:
    listing = names.epilog("schemes:\n" + "\n".join(f"  {s.name}: {s.help}" for s in SCHEMES.values()))
    p = sub.add_parser("attention", help=HELP["attention"], **listing)
    p.add_argument("scenario", nargs="?", help="attention scenario YAML (flags given as well override its fields)")
    p.add_argument("--schemes", help=f"comma-separated (default all: {','.join(SCHEMES)})")
    p.add_argument("--topology", help="topology YAML file (e.g. topologies/pcie4_a10.yaml)")
    p.add_argument("--gpus", type=flags.integer(2, 1024), help="GPUs taking part: the topology's first N "
                                                               "(default all)")
    p.add_argument("--seq", type=flags.integer(1, 2**24), help="sequence length in tokens (default 32768)")
    p.add_argument("--heads", type=flags.integer(1, 4096), help="query heads (default 32)")
    p.add_argument("--kv-heads", type=flags.integer(1, 4096), help="key/value heads (GQA/MQA; default = heads)")
    p.add_argument("--head-dim", type=flags.integer(1, 4096), help="head dimension (default 128)")
    p.add_argument("--batch", type=flags.integer(1, 4096), help="sequences per batch (default 1)")
    p.add_argument("--dtype", choices=tuple(DTYPES), help="element type of Q, K, V, O (default bf16; lse is fp32)")
    p.add_argument("--causal", action="store_true", default=None, help="causal attention (zigzag layouts)")
    p.add_argument("--backward", action="store_true", default=None, help="the backward pass too")
    p.add_argument("--tflops", type=flags.number(0, 1e6, lo_open=True), help="device peak TFLOP/s (default 125)")
    p.add_argument("--efficiency", type=flags.number(0, 1, lo_open=True),
                   help="fraction of the peak attention blocks reach (default 0.5)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-o", "--output", help="write Parquet, report.html (with time against S and N), timeline.json "
                   "and each scheme's program as Chakra ET (chakra_SCHEME.R.et; its sends wait for their receives) "
                   "here")


def _scenario(args: argparse.Namespace):
    from netsim.config import validated
    from netsim.scenario.attention import AttentionScenario, check_attention, load_attention_scenario
    from netsim.scenario.loader import topology_of

    updates = {field: getattr(args, attr) for attr, field in FLAG_FIELDS.items() if getattr(args, attr) is not None}
    for attr in ("causal", "backward"):
        if getattr(args, attr):
            updates[attr] = True
    if args.schemes is not None:
        schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
        unknown = [s for s in schemes if s not in SCHEMES]
        if not schemes or unknown or len(set(schemes)) != len(schemes):
            raise ConfigError(f"expected distinct schemes from {', '.join(SCHEMES)}, got {args.schemes!r}",
                              field="--schemes")
        updates["schemes"] = schemes
    if args.scenario is None:
        if "topology" not in updates:
            raise ConfigError("give a scenario file or --topology FILE", field="--topology")
        cfg = validated(AttentionScenario, updates, "command line")
        return cfg, check_attention(cfg, topology_of(updates["topology"], "--topology", None), "command line")
    cfg, topo = load_attention_scenario(args.scenario)
    if updates:
        if "topology" in updates:
            topo = topology_of(updates["topology"], "--topology", None)
        cfg = validated(AttentionScenario, cfg.model_dump() | updates, args.scenario)
        topo = check_attention(cfg, topo, args.scenario)
    return cfg, topo


def _sweep_points(cfg, topo) -> tuple[list[int], list[int]]:
    seqs = sorted({cfg.seq // 4, cfg.seq // 2, cfg.seq, cfg.seq * 2, cfg.seq * 4} - {0})
    most = cfg.gpus or len(topo.gpus)
    gpus = [n for n in (2, 4, 8, 16, 32, 64) if n <= most]
    return seqs, gpus


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.report import write_attention_report
    from netsim.traces import chakra
    from netsim.workloads.attention import attention_program, schedule
    from netsim.scenario.attention import (
        attention_links, attention_summary, attention_sweep, attention_tasks, attention_timeline, simulate_attention,
    )

    out = OutputDirectory(args.output, command="attention", outputs=OUTPUTS) if args.output is not None else None
    cfg, topo = _scenario(args)
    n = cfg.gpus or len(topo.gpus)
    with Stages(len(cfg.schemes), "attention", quiet=args.json) as stages:
        runs = simulate_attention(cfg, topo, progress=stages.start)
    summary = attention_summary(runs)
    if args.json:
        print_json("attention", summary.to_dicts(), scenario=cfg.name, topology=topo.name, gpus=n, seq=cfg.seq,
                   causal=cfg.causal, backward=cfg.backward)
    else:
        kind = "causal" if cfg.causal else "non-causal"
        table = Table(title=f"{cfg.name}: {kind} attention, S = {cfg.seq}, H = {cfg.heads}, H_kv = "
                            f"{cfg.kv_heads or cfg.heads}, d = {cfg.head_dim}, {cfg.dtype}, {n} GPUs of {topo.name}"
                            + (", forward + backward" if cfg.backward else ", forward"))
        for col in ("scheme", "time per layer", "per step", "compute", "exposed comm", "bytes sent", "busiest link"):
            table.add_column(col, justify="left" if col in ("scheme", "busiest link") else "right")
        for r in summary.iter_rows(named=True):
            table.add_row(r["scheme"], format_time(r["time_s"]), format_time(r["step_s"]), format_time(r["compute_s"]),
                          format_time(r["exposed_comm_s"]), format_size(r["sent_B"]),
                          f"{r['busiest_link']} ({100 * r['busiest_link_utilization']:.0f}%)")
        console.print(table)
    if out is not None:
        seqs, gpus = _sweep_points(cfg, topo)
        sweep = attention_sweep(cfg, topo, seqs=seqs, gpus=gpus)
        tasks, links = attention_tasks(runs), attention_links(runs)
        with out.writing() as tmp:
            summary.write_parquet(tmp / "summary.parquet", statistics=False)
            tasks.write_parquet(tmp / "tasks.parquet", statistics=False)
            (tmp / "timeline.json").write_text(json.dumps(attention_timeline(tasks)), encoding="utf-8")
            for name in cfg.schemes:  # each scheme's program, for Chakra's tools (replay it with --sends rendezvous)
                program = attention_program(schedule(name, cfg.shape(), n, backward=cfg.backward), cfg.device())
                chakra.write(program, tmp / f"chakra_{name}")
            links.write_parquet(tmp / "links.parquet", statistics=False)
            sweep.write_parquet(tmp / "sweep.parquet", statistics=False)
            write_attention_report(tmp / "report.html", summary, tasks, links, sweep,
                                   f"netsim attention — {cfg.name}",
                                   f"{'causal' if cfg.causal else 'non-causal'} attention, S = {cfg.seq}, "
                                   f"H = {cfg.heads}, H_kv = {cfg.kv_heads or cfg.heads}, d = {cfg.head_dim}, "
                                   f"batch {cfg.batch}, {cfg.dtype}; {n} GPUs of {topo.name}; "
                                   f"{cfg.tflops:g} TFLOP/s at {100 * cfg.efficiency:g}%.")
        if not args.json:
            notice(f"results written to {out.shown} (open report.html)")
    return 0


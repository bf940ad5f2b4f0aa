"""`netsim replay`: a recorded job's trace replayed on a simulated fabric."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import notice, print_json
from netsim.cli.trace import add_trace_arguments, reader_help
from netsim.config import OutputDirectory
from netsim.errors import ConfigError
from netsim.units import format_bandwidth, format_size, format_time

OUTPUTS = {"timeline.parquet", "timeline.json", "collectives.parquet", "trace.parquet", "report.html", "steps.parquet",
           "links.parquet"}


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help=HELP["replay"],
                       **names.epilog(reader_help(), names.routing_policies()))
    add_trace_arguments(p)
    add_replay_arguments(p, "replay")


def add_replay_arguments(p: argparse.ArgumentParser, command: str, *, device_tflops: bool = False) -> None:
    """The flags of replaying a program on a fabric (`replay`, `torchrun`); with `device_tflops`, the
    recorded compute's scale may be given as a device's rate instead (``--device-tflops``, which only a
    command that measures this CPU can offer)."""
    p.add_argument("--topology", required=True, help=f"topology YAML file to {command} on")
    p.add_argument("--routing", default="ecmp", help="routing policy (default ecmp; listed below)")
    p.add_argument("--placement", choices=("contiguous", "random"), default="contiguous",
                   help="ranks on GPUs: the topology's first N, or a seeded random sample")
    compute = p.add_mutually_exclusive_group() if device_tflops else p
    compute.add_argument("--scale-compute", type=flags.number(0, 1e9), default=1.0,
                         help="multiply recorded compute times (e.g. 0.5: a GPU twice as fast)")
    if device_tflops:
        compute.add_argument("--device-tflops", metavar="F", type=flags.number(0, 1e9, lo_open=True),
                             help="the recorded compute (CPU seconds) as on a device of F TFLOP/s: each gap times "
                                  "this CPU's measured float32 matmul rate over F·1e12 (the rate is in the "
                                  "outputs' meta)")
    p.add_argument("--rescale", metavar="M", type=flags.integer(1, 131_072),
                   help="rescale a data-parallel trace to M ranks")
    p.add_argument("--ranks", dest="rescale", type=flags.integer(1, 131_072), action=flags.renamed("--rescale"),
                   help=argparse.SUPPRESS)
    p.add_argument("--algo", default="auto", help="collective algorithm (default auto)")
    p.add_argument("--sends", choices=("eager", "rendezvous"), default="eager",
                   help="a send leaves when its own dependencies are met (eager, default), or also waits for "
                        "its receive to be posted (rendezvous)")
    flags.add_max_transfers(p)
    flags.add_compress(p)
    p.add_argument("--seed", type=flags.seed, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-o", "--output", help="write the timeline (Parquet, and timeline.json for Perfetto or "
                                          "chrome://tracing), collectives, the replayed program (netsim's "
                                          "trace.parquet and Chakra chakra.R.et per rank) and report.html here")


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.traces import load_trace

    out, topo = prepare("replay", args)
    trace = load_trace(args.trace, format=args.format, npus=args.npus)
    return simulate("replay", trace, topo, args, console, out)


def prepare(command: str, args: argparse.Namespace):
    """The output directory (checked, nothing written yet) and the topology, its routing policy checked."""
    from netsim.routing import make_policy
    from netsim.topology import PathCache, load_topology

    out = OutputDirectory(args.output, command=command, outputs=OUTPUTS) if args.output is not None else None
    topo = load_topology(args.topology)
    try:
        make_policy(args.routing, topo, PathCache(topo), args.seed)
    except ConfigError as exc:
        raise ConfigError(exc.detail, field="--routing") from None
    return out, topo


def simulate(command: str, trace, topo, args: argparse.Namespace, console: Console,
             out: OutputDirectory | None, meta: dict | None = None) -> int:
    """The program rescaled (--rescale), replayed on the topology, shown, and written to `out`; `meta`, the
    command's own facts, goes into the JSON summary's meta and the output's meta.json."""
    from netsim.traces.replay import replay, rescale

    if args.rescale is not None:
        trace = rescale(trace, args.rescale, gpus=len(topo.gpus), max_nodes=args.max_transfers).validate()
    result = replay(trace, topo, routing=args.routing, placement=args.placement, scale_compute=args.scale_compute,
                    algo=args.algo, seed=args.seed, sends=args.sends, max_transfers=args.max_transfers,
                    compress=args.compress)
    show(command, trace, topo, result, args, console, meta or {})
    if out is not None:
        write(out, command, trace, topo, result, args, meta or {})
    return 0


def show(command: str, trace, topo, result, args: argparse.Namespace, console: Console, meta: dict) -> None:
    """A replayed program's summary and longest calls (or, with --json, its calls as JSON rows)."""
    if args.json:
        steps = result.steps
        print_json(command, result.collectives.to_dicts(), trace=trace.source, format=trace.format,
                   topology=topo.name, **meta, **result.summary(),
                   **({"iterations_s": steps["iteration_s"].to_list()} if len(steps) else {}))
    else:
        console.print(f"{trace.source} ({trace.format}, {result.ranks} ranks) on {topo.name}, {args.routing} routing, "
                      f"{args.placement} placement")
        table = Table(title="Replay")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in result.rows():
            table.add_row(name, value)
        console.print(table)
        busiest = result.collectives.sort("time_s", descending=True).head(5)
        if len(busiest):
            t = Table(title="Longest collective calls")
            for col in ("group", "call", "op", "ranks", "size", "simulated", "recorded", "busbw"):
                t.add_column(col, justify="left" if col in ("group", "op") else "right")
            for r in busiest.iter_rows(named=True):
                t.add_row(r["group"], str(r["call"]), r["op"], str(r["ranks"]), format_size(r["size_B"]),
                          format_time(r["time_s"]), "-" if r["recorded_s"] is None else format_time(r["recorded_s"]),
                          "-" if r["busbw_Bps"] is None else format_bandwidth(r["busbw_Bps"]))
            console.print(t)


def write(out: OutputDirectory, command: str, trace, topo, result, args: argparse.Namespace, meta: dict) -> None:
    """A replayed program's outputs (OUTPUTS; meta.json with `meta` where given) into `out`, all or nothing."""
    import json

    from netsim.program.timeline import write_timeline
    from netsim.report import write_replay_report
    from netsim.traces import chakra, own
    from netsim.traces.replay import replayed_trace

    with out.writing() as tmp:
        result.timeline.write_parquet(tmp / "timeline.parquet", statistics=False)
        write_timeline(tmp / "timeline.json", result.timeline, gpus=result.gpus)
        result.collectives.write_parquet(tmp / "collectives.parquet", statistics=False)
        if result.links is not None:
            result.links.write_parquet(tmp / "links.parquet", statistics=False)
        if len(result.steps):  # per optimizer step of a torch recording
            result.steps.write_parquet(tmp / "steps.parquet", statistics=False)
        replayed = replayed_trace(trace, result)
        own.write(replayed, tmp / "trace.parquet")
        chakra.write(replayed, tmp / "chakra")  # chakra.R.et: the same program for Chakra's tools
        write_replay_report(tmp / "report.html", result, f"netsim {command} — {trace.source}",
                            f"{trace.format} trace, {result.ranks} ranks on {topo.name} ({args.routing} routing, "
                            f"{args.placement} placement, compute x {args.scale_compute:g}).")
        if meta:  # (the output directory adds its provenance to it)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if not args.json:
        notice(f"results written to {out.shown} (open report.html)")

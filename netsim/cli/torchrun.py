"""`netsim torchrun`: an unmodified torch.distributed script run on local ranks, recorded, and its program
simulated on a fabric.

    netsim torchrun --nproc 4 --topology fattree1024 --rescale 1024 -o out train.py --steps 3

The script runs as under ``torchrun --nproc-per-node 4`` (its own arguments after its path), its CPU process
groups on the ``netsim`` backend (gloo's maths, every call recorded: `netsim.training.backend`); then the
recorded program is replayed on the topology as `netsim replay` does (same flags, same outputs). A script
that fails shows its own output once per failed rank, each line prefixed with the rank, and netsim exits 1
with nothing written.

Recorded compute is this machine's CPU time. ``--scale-compute X`` multiplies it; ``--device-tflops F`` (one
or the other) says which device to predict instead: before the ranks start, the parent times float32 matmuls
(`netsim.training.flop_rate`) and every compute gap is multiplied by that rate over F·1e12 — the gap's FLOPs
as the CPU did them, done at F TFLOP/s. The rate is one process's with torch's threads, so where the ranks
computed at once on fewer cores than they used, their gaps, and the prediction, are longer than a device's
would be. The measured rate and the factor are in the JSON summary's meta and in the output's meta.json.

``--symmetric`` runs rank 0 alone in a world of ``--nproc`` ranks (`netsim.training.symmetric`): its
collectives complete locally as if every rank held its data, and its recording stands for every rank's.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
import tempfile
from pathlib import Path

from rich.console import Console

from netsim.cli import flags, names
from netsim.cli.commands import HELP
from netsim.cli.progress import notice
from netsim.cli.replay import add_replay_arguments, prepare, simulate
from netsim.errors import ConfigError

MAX_LOCAL_RANKS = 64  # ranks are processes on this machine (--rescale or --symmetric: larger worlds)
MAX_SYMMETRIC_RANKS = 131_072  # --symmetric's world: one process, recorded once


def add_parser(sub) -> None:
    p = sub.add_parser("torchrun", help=HELP["torchrun"], **names.epilog(names.routing_policies()))
    p.add_argument("--nproc", type=flags.integer(1, MAX_SYMMETRIC_RANKS), required=True,
                   help=f"local ranks to run the script on (processes on this machine, at most {MAX_LOCAL_RANKS}; "
                        "with --symmetric, the world one rank stands for)")
    p.add_argument("--symmetric", action="store_true",
                   help="run one rank as if in a world of --nproc ranks holding the same data (collectives complete "
                        "locally) and record it for all: worlds larger than this machine; no send/recv, gather, "
                        "scatter or subgroups")
    p.add_argument("--timeout", type=flags.number(1, 1e6), default=600.0,
                   help="seconds the script may run (default 600)")
    add_replay_arguments(p, "simulate the recorded program", device_tflops=True)
    p.add_argument("script", help="the torch.distributed script (run as __main__, as torchrun does)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="the script's own arguments")


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.traces.recording import program_from_recording

    script = Path(args.script)
    if not script.is_file():
        raise ConfigError(f"no such script: {args.script}", field="script")
    out, topo = prepare("torchrun", args)
    if args.nproc > MAX_LOCAL_RANKS and not args.symmetric:
        raise ConfigError(f"{args.nproc} local ranks; at most {MAX_LOCAL_RANKS} run on this machine (--symmetric "
                          "records one rank for a larger world)", field="--nproc")
    world = args.rescale or args.nproc
    if world > len(topo.gpus):
        raise ConfigError(f"{world} ranks, but {topo.name} has {len(topo.gpus)} GPUs", field="--nproc")
    from netsim.training.launch import failure_report, run_ranks

    meta = compute_scale(args) | ({"symmetric": True} if args.symmetric else {})
    with tempfile.TemporaryDirectory(prefix="netsim-torchrun-") as tmp:
        logs, record = Path(tmp) / "logs", Path(tmp) / "recording"
        logs.mkdir()
        record.mkdir()
        if not args.json:
            notice(f"running {script} on rank 0 of {args.nproc}, recorded for all (symmetric)" if args.symmetric else
                   f"running {script} on {args.nproc} local ranks (the netsim backend records them)")
        codes = run_ranks(script, args.script_args, args.nproc, logs=logs, record=record, timeout=args.timeout,
                          symmetric=args.symmetric)
        if any(codes.values()):
            print(failure_report(codes, logs), file=sys.stderr)
            print(f"netsim: error: {script} failed on rank(s) "
                  f"{', '.join(str(r) for r, c in codes.items() if c not in (0, -9)) or 'none (timed out)'}; "
                  "nothing written", file=sys.stderr)
            return 1
        if not args.json:
            lines = (logs / "rank-0.log").read_text(errors="replace").splitlines()
            for line in lines[-20:]:  # the script's own output (rank 0's last lines)
                console.print(f"[rank 0] {line}", highlight=False, markup=False)
        trace = program_from_recording(record)
    return simulate("torchrun", replace(trace, source=str(script)), topo, args, console, out, meta)


def compute_scale(args: argparse.Namespace) -> dict:
    """With --device-tflops: this CPU's rate measured, `args.scale_compute` set to the factor it gives, and
    both returned for the outputs' meta (nothing otherwise)."""
    if args.device_tflops is None:
        return {}
    from netsim.training.flop_rate import cpu_flops, device_scale

    rate = cpu_flops()
    args.scale_compute = device_scale(rate, args.device_tflops)
    if not args.json:
        notice(f"this CPU does {rate / 1e9:.1f} GFLOP/s (float32 matmul): recorded compute x {args.scale_compute:.3g} "
               f"for a {args.device_tflops:g} TFLOP/s device")
    return {"cpu_flops": rate, "device_tflops": args.device_tflops, "scale_compute": args.scale_compute}

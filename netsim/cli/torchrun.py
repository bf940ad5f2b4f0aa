"""`netsim torchrun`: an unmodified torch.distributed script run on local ranks, recorded, and its program
simulated on a fabric.

    netsim torchrun --nproc 4 --topology fattree1024 --rescale 1024 -o out train.py --steps 3

The script runs as under ``torchrun --nproc-per-node 4`` (its own arguments after its path), its CPU process
groups on the ``netsim`` backend (gloo's maths, every call recorded: `netsim.training.backend`); then the
recorded program is replayed on the topology as `netsim replay` does (same flags, same outputs). A script
that fails shows its own output once per failed rank, each line prefixed with the rank, and netsim exits 1
with nothing written.
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

MAX_LOCAL_RANKS = 64  # ranks are processes on this machine (--rescale predicts larger worlds)


def add_parser(sub) -> None:
    p = sub.add_parser("torchrun", help=HELP["torchrun"], **names.epilog(names.routing_policies()))
    p.add_argument("--nproc", type=flags.integer(1, MAX_LOCAL_RANKS), required=True,
                   help=f"local ranks to run the script on (processes on this machine, at most {MAX_LOCAL_RANKS})")
    p.add_argument("--timeout", type=flags.number(1, 1e6), default=600.0,
                   help="seconds the script may run (default 600)")
    add_replay_arguments(p, "simulate the recorded program")
    p.add_argument("script", help="the torch.distributed script (run as __main__, as torchrun does)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="the script's own arguments")


def command(args: argparse.Namespace, console: Console) -> int:
    from netsim.traces.recording import program_from_recording

    script = Path(args.script)
    if not script.is_file():
        raise ConfigError(f"no such script: {args.script}", field="script")
    out, topo = prepare("torchrun", args)
    world = args.rescale or args.nproc
    if world > len(topo.gpus):
        raise ConfigError(f"{world} ranks, but {topo.name} has {len(topo.gpus)} GPUs", field="--nproc")
    from netsim.training.launch import failure_report, run_ranks

    with tempfile.TemporaryDirectory(prefix="netsim-torchrun-") as tmp:
        logs, record = Path(tmp) / "logs", Path(tmp) / "recording"
        logs.mkdir()
        record.mkdir()
        if not args.json:
            notice(f"running {script} on {args.nproc} local ranks (the netsim backend records them)")
        codes = run_ranks(script, args.script_args, args.nproc, logs=logs, record=record, timeout=args.timeout)
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
    return simulate("torchrun", replace(trace, source=str(script)), topo, args, console, out)

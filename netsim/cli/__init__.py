"""The `netsim` command line, one module per command: `run`, `bench`, `compare-routing`,
`utilization`, `sweep-bandwidth`, `train`, `topo show`, `attention`, `trace show`, `replay`, `faults`, `sweep`.

Every user mistake — a bad file, flag or output directory — ends in one line on stderr and exit
status 2, before any work starts where it can be checked first; Ctrl-C ends with one line, exit
status 130, and nothing half-written.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def _interrupted_while_starting(_signum, _frame) -> None:
    """Ctrl-C before the command has started (imports take a moment): nothing to clean up."""
    os.write(2, b"netsim: interrupted; nothing written\n")
    os._exit(130)


_QUIET_START = (signal.getsignal(signal.SIGINT) is signal.default_int_handler
                and threading.current_thread() is threading.main_thread())
if _QUIET_START:
    signal.signal(signal.SIGINT, _interrupted_while_starting)  # until the imports below are done

import argparse  # noqa: E402  (after the handler: these imports are the slow part of starting)
import re  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402

from rich.console import Console  # noqa: E402

from netsim.cli import attention, bench, compare, faults, lowcomm, replay, run, sweep, topo, trace, train  # noqa: E402
from netsim.errors import NetsimError  # noqa: E402

if _QUIET_START:  # started: Ctrl-C raises KeyboardInterrupt again, so outputs get cleaned up
    signal.signal(signal.SIGINT, signal.default_int_handler)

COMMANDS = {
    "run": run.command, "bench": bench.command, "compare-routing": compare.command,
    "utilization": lowcomm.utilization_command, "sweep-bandwidth": lowcomm.sweep_command, "train": train.command,
    "topo": topo.command, "attention": attention.command, "trace": trace.command, "replay": replay.command,
    "faults": faults.command, "sweep": sweep.command,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (`netsim: error: ...`) and exit status 2, and a value
    such as `-1ms` or `-5Gbps` is read as a (negative, then refused) value, not as an unknown flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")  # no netsim flag starts with a digit

    def error(self, message: str):
        print(f"netsim: error: {self.prog.removeprefix('netsim').strip() + ': ' if self.prog != 'netsim' else ''}"
              f"{message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _version() -> str:
    try:
        return version("netsim")
    except PackageNotFoundError:
        return "unknown"


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="netsim", description="Network-level simulator for distributed ML training.")
    p.add_argument("--version", action="version", version=f"netsim {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run.add_parser(sub)
    bench.add_parser(sub)
    compare.add_parser(sub)
    lowcomm.add_parsers(sub)
    train.add_parser(sub)
    topo.add_parser(sub)
    attention.add_parser(sub)
    trace.add_parser(sub)
    replay.add_parser(sub)
    faults.add_parser(sub)
    sweep.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage mistake (2), already printed
        return int(exc.code or 0)
    # markup off: names and labels from the user's files are printed as written, never parsed as styles
    console = Console(markup=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=160, markup=False, highlight=False)
    try:
        return COMMANDS[args.command](args, console)
    except NetsimError as exc:
        print(f"netsim: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the goodbye
        try:
            print("netsim: interrupted; nothing written", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)
        return 130


__all__ = ["COMMANDS", "main", "parser"]

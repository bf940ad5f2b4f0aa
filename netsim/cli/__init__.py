"""The `netsim` command line, one module per command: `run`, `bench`, `compare-routing`,
`utilization`, `sweep-bandwidth`, `train`, `topo show`, `attention`, `trace show`, `replay`, `faults`, `sweep`,
`completion` (the table of them: `netsim.cli.commands`; a command's module is imported only when it runs).

Every user mistake — a bad file, flag or output directory — ends in one line on stderr and exit
status 2, before any work starts where it can be checked first; Ctrl-C ends with one line, exit
status 130, and nothing half-written.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import threading

from netsim.cli.commands import COMMANDS
from netsim.errors import NetsimError


def _interrupted_while_starting(_signum, _frame) -> None:
    """Ctrl-C before the command has started (imports take a moment): nothing to clean up."""
    os.write(2, b"netsim: interrupted; nothing written\n")
    os._exit(130)


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
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("netsim")
    except PackageNotFoundError:
        return "unknown"


def _module(name: str):
    """The module of command `name` (imported now: the slow part of starting)."""
    return importlib.import_module(f"netsim.cli.{COMMANDS[name][0]}")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that command's parser in full and the others by name and
    help (what `netsim --help` lists, with no command module imported when `only` is ``""``)."""
    p = _Parser(prog="netsim", description="Network-level simulator for distributed ML training.")
    p.add_argument("--version", action="version", version=f"netsim {_version()}")
    p.add_argument("--shared-plotly", action="store_true",
                   help="reports reference one plotly.min.js written beside them instead of inlining it (given "
                        "before the command: netsim --shared-plotly run ...)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    built: set[str] = set()
    for name, (module, adder, _entry, text) in COMMANDS.items():
        if only is not None and COMMANDS.get(only, ("",))[0] != module:
            sub.add_parser(name, help=text)
        elif module not in built:
            built.add(module)
            getattr(_module(name), adder)(sub)
    return p


def _chosen(argv: list[str]) -> str:
    """The command named on the line ("" where none is: --help, --version, or a mistake)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else ""
    return ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    starting = (signal.getsignal(signal.SIGINT) is signal.default_int_handler
                and threading.current_thread() is threading.main_thread())
    if starting:  # the command's imports are the slow part of starting: Ctrl-C there has nothing to clean up
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    try:
        args = parser(_chosen(argv)).parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage mistake (2), already printed
        return int(exc.code or 0)
    finally:
        if starting:  # started: Ctrl-C raises KeyboardInterrupt again, so outputs get cleaned up
            signal.signal(signal.SIGINT, signal.default_int_handler)
    from rich.console import Console

    if args.shared_plotly or "netsim.report.html" in sys.modules:
        from netsim.report.html import share_plotly

        share_plotly(args.shared_plotly)

    # markup off: names and labels from the user's files are printed as written, never parsed as styles
    console = Console(markup=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=160, markup=False, highlight=False)
    from netsim.config import output_directory

    output_directory.COMMAND_LINE = argv  # (recorded in every output's meta.json)
    try:
        return getattr(_module(args.command), COMMANDS[args.command][2])(args, console)
    except NetsimError as exc:
        print(f"netsim: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout's reader left (`netsim ... --json | head`): end quietly, as SIGPIPE would
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (the exit's flush must not fail)
        except (OSError, ValueError):
            pass
        return 141
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the goodbye
        try:
            print("netsim: interrupted; nothing written", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)
        return 130


__all__ = ["COMMANDS", "main", "parser"]

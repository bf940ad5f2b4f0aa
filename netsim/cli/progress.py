"""Progress for commands that take more than a moment: a rich progress bar on a terminal, gone when
done, one plain line per stage otherwise (CI logs, pipes) — on stderr always, so stdout carries only
results (a table, or JSON to pipe on), and a user can always tell that work goes on and how far it got.
Commands printing JSON pass `quiet` to say nothing at all."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Stages:
    """`with Stages(total, "bench") as stages: stages.start("ring 1MiB") ...` — one stage at a time."""

    def __init__(self, total: int, what: str, *, quiet: bool = False, prefix: str = ""):
        self.total, self.what, self.quiet, self.prefix = total, what, quiet, prefix
        self.console = Console(stderr=True, markup=False, highlight=False)
        self.done = 0
        self._bar: Progress | None = None
        self._task = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> "Stages":
        if not self.quiet and self.console.is_terminal:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def start(self, stage: str) -> None:
        """Stage number done + 1 begins."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=escape(f"{self.what}: {stage}"))
        else:
            print(f"{self.prefix}[{self.done + 1}/{self.total}] {self.what}: {stage}", file=sys.stderr, flush=True)
        self.done += 1

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            self._bar.stop()
        elif not self.quiet and exc[0] is None:
            print(f"{self.prefix}{self.what}: {self.done} stage{'s' if self.done != 1 else ''} in "
                  f"{time.perf_counter() - self._t0:.1f} s", file=sys.stderr, flush=True)


def notice(text: str) -> None:
    """A line about the run rather than its result ("results written to ...", a warning): on stderr."""
    print(text, file=sys.stderr, flush=True)


def print_json(command: str, rows: list[dict], **meta) -> None:
    """A command's `--json` output, one shape for every command: ``{"meta": {...}, "rows": [...]}`` — the
    rows a table would show (one object each, the same keys in every row), and `meta` saying what ran
    (the command, netsim's version, and the command's own facts: file, topology, totals)."""
    import json
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("netsim")
    except PackageNotFoundError:
        ours = "unknown"
    print(json.dumps({"meta": {"command": command, "netsim": ours, **meta}, "rows": rows}, indent=1, default=str))

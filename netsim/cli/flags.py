"""Typed command-line flags: every number is checked at the edge (finite, in range) with a one-line error
naming the flag, so nothing downstream sees NaN, infinity, a negative count or a size beyond 2^53 bytes."""

from __future__ import annotations

import argparse
import math

from netsim.errors import UnitError
from netsim.units import parse_bandwidth, parse_size, parse_time

MAX_SEED = 2**63 - 1


def integer(lo: int | None = None, hi: int | None = None):
    """An argparse type: an integer in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {text!r}")
        return value

    return parse


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """An argparse type: a finite float in [lo, hi] (or (lo, hi] with `lo_open`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        low_bad = lo is not None and (value <= lo if lo_open else value < lo)
        if low_bad or (hi is not None and value > hi):
            op = ">" if lo_open else ">="
            bounds = f"{op} {lo}" if hi is None else f"{op} {lo} and <= {hi}"
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text!r}")
        return value

    return parse


def quantity(parse, what: str, *, positive: bool):
    """An argparse type reading a unit quantity ('10Gbps', '30ms', '16MiB') that must be > 0 (or >= 0)."""

    def check(text: str):
        try:
            value = parse(text)
        except UnitError as exc:
            raise argparse.ArgumentTypeError(exc.detail) from None
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {text!r}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{what} must be >= 0, got {text!r}")
        return value

    return check


bandwidth = quantity(parse_bandwidth, "bandwidth", positive=True)
duration = quantity(parse_time, "time", positive=False)
positive_duration = quantity(parse_time, "time", positive=True)
size = quantity(parse_size, "size", positive=True)
seed = integer(0, MAX_SEED)


def step_duration(text: str) -> float:
    """A compute step: at least a nanosecond (rates derived from it stay finite)."""
    value = positive_duration(text)
    if value < 1e-9:
        raise argparse.ArgumentTypeError(f"a step takes at least 1ns, got {text!r}")
    return value


def add_max_transfers(p: argparse.ArgumentParser) -> None:
    from netsim.program.budget import MAX_NODES, MAX_TRANSFERS

    p.add_argument("--max-transfers", type=integer(1), default=None, metavar="N",
                   help=f"refuse runs estimated to create more transfers than this (default {MAX_TRANSFERS:,}; "
                        f"replay: also the most program nodes a rescaled trace may hold, default {MAX_NODES:,})")


def compress_steps(text: str) -> int:
    """--compress: 0 (every step simulated) or at least `MIN_COMPRESS` steps."""
    from netsim.sim.simulation import MIN_COMPRESS

    value = integer(0)(text)
    if 0 < value < MIN_COMPRESS:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or at least {MIN_COMPRESS} steps, got {text!r}")
    return value


def add_compress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compress", type=compress_steps, default=0, metavar="M",
                   help="simulate M steps (>= 4) of each long run of identical collective steps and skip the rest by "
                        "the period measured on them: rings and hierarchical all-reduce on thousands of GPUs in "
                        "seconds; approximate where the steps collide (see validation/README.md). Default 0: "
                        "every step")


def renamed(new: str):
    """An argparse action for a flag's old spelling, kept for one release: it stores the value under the new
    flag and says so on stderr (one notice line), so each flag name means one thing across commands."""

    class Renamed(argparse._StoreAction):
        def __call__(self, parser, namespace, values, option_string=None):
            import sys

            print(f"netsim: notice: {option_string} is now {new} (the old name goes in the next release)",
                  file=sys.stderr)
            setattr(namespace, self.dest, values)

    return Renamed

"""Numeric limits of workload inputs, and the checks that enforce them.

Every number a workload takes must be finite and in range; otherwise the caller gets a ConfigError that
names the argument. A NaN or an infinity would otherwise stall the simulated clock (a timeout of inf
never ends, a NaN time never compares) instead of failing. The CLI checks its flags too, but the
library must not depend on that.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from netsim.errors import ConfigError

MAX_PARAMS = 1e15  # model parameters: beyond any model trained today, and whole bytes exact in float64
MAX_SECONDS = 1e6  # a step time or a latency (about 11.6 days): the simulated clock keeps ~1e-10 s resolution
MAX_SPEED = 1e6  # a worker's slowdown factor
MAX_JITTER = 10.0  # lognormal sigma of per-step slowdowns


def number(value: object, field: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> float:
    """`value` as a finite float in [lo, hi] ((lo, hi] with `lo_open`), or a ConfigError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"expected a number, got {value!r}", field=field)
    x = float(value)
    low_bad = lo is not None and (x <= lo if lo_open else x < lo)
    if not math.isfinite(x) or low_bad or (hi is not None and x > hi):
        raise ConfigError(f"expected a finite number {_bounds(lo, hi, lo_open)}, got {value!r}", field=field)
    return x


def integer(value: object, field: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int in [lo, hi], or a ConfigError naming `field` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"expected an integer, got {value!r}", field=field)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"expected an integer {_bounds(lo, hi, False, True)}, got {value!r}", field=field)
    return int(value)


def factors(values: object, count: int, field: str = "speeds") -> np.ndarray:
    """`count` per-worker slowdown factors, each finite, > 0 and <= MAX_SPEED."""
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {count} numbers, got {values!r}", field=field) from None
    if len(array) != count:
        raise ConfigError(f"expected one factor per worker ({count}), got {len(array)}", field=field)
    if not (np.isfinite(array) & (array > 0) & (array <= MAX_SPEED)).all():
        raise ConfigError(f"expected finite factors > 0 and <= {MAX_SPEED:g}, got {array.tolist()!r}", field=field)
    return array


def _bounds(lo, hi, lo_open: bool, integral: bool = False) -> str:
    op = ">" if lo_open else ">="
    show = str if integral else (lambda x: f"{x:g}")
    if lo is None:
        return "" if hi is None else f"<= {show(hi)}"
    return f"{op} {show(lo)}" if hi is None else f"{op} {show(lo)} and <= {show(hi)}"

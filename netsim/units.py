"""Parse and format quantities at the edges: bandwidth, time, size.

Inside netsim everything is seconds, bytes and bytes per second. Strings such as
``"400Gbps"``, ``"50GB/s"``, ``"1.5us"``, ``"64MiB"`` or plain numbers (in a stated
default unit) are turned into those here, and turned back for printing.
"""

from __future__ import annotations

import math
import re

from netsim.errors import UnitError

MAX_SIZE = 2**53  # bytes (8 PiB): every whole byte count up to here is exact as a float64, so time = bytes / rate
MAX_TIME = 1e9  # seconds (about 32 years): any duration, latency or instant netsim is given
BANDWIDTH_RANGE = (0.125, 1e18)  # bytes/s: from 1 bit/s to 8 Ebit/s
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z/µ]*)\s*$")

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}


def _bandwidth_units() -> dict[str, float]:
    """Every accepted bandwidth suffix -> bytes per second."""
    units: dict[str, float] = {}
    for prefix, mult in _DECIMAL.items():
        units[f"{prefix}bps"] = mult / 8.0
        units[f"{prefix}bit/s"] = mult / 8.0
        units[f"{prefix}B/s"] = mult
        units[f"{prefix}Bps"] = mult
    for prefix, mult in _BINARY.items():
        units[f"{prefix}B/s"] = mult
    return units


def _size_units() -> dict[str, float]:
    units: dict[str, float] = {}
    for prefix, mult in _DECIMAL.items():
        units[f"{prefix}B"] = mult
    for prefix, mult in _BINARY.items():
        units[f"{prefix}B"] = mult
    units["b"] = 1.0 / 8.0
    for prefix, mult in _DECIMAL.items():
        if prefix:
            units[f"{prefix}bit"] = mult / 8.0
    return units


_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
_BANDWIDTH_UNITS = _bandwidth_units()
_SIZE_UNITS = _size_units()

_DEFAULT_UNIT = {"bandwidth": "B/s", "time": "s", "size": "B"}
_TABLES = {"bandwidth": _BANDWIDTH_UNITS, "time": _TIME_UNITS, "size": _SIZE_UNITS}


def _parse(value: object, kind: str, default_unit: str | None, field: str | None) -> float:
    table = _TABLES[kind]
    unit = default_unit or _DEFAULT_UNIT[kind]
    if unit not in table:
        raise ValueError(f"default unit {unit!r} is not a {kind} unit")
    if isinstance(value, bool):
        raise UnitError(f"expected a {kind} such as {_example(kind)}, got {value!r}", field=field)
    if isinstance(value, (int, float)):
        number, suffix = float(value), ""
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise UnitError(f"cannot read {value!r} as a {kind} (e.g. {_example(kind)})", field=field)
        number, suffix = float(match.group(1)), match.group(2)
    else:
        raise UnitError(f"expected a {kind} such as {_example(kind)}, got {value!r}", field=field)
    if suffix and suffix not in table:
        raise UnitError(
            f"unknown {kind} unit {suffix!r} in {value!r} (known: {', '.join(_known(kind))})", field=field
        )
    if not math.isfinite(number):
        raise UnitError(f"{kind} {value!r} is not finite", field=field)
    result = number * table[suffix or unit]
    if kind == "time" and abs(result) > MAX_TIME:
        raise UnitError(f"time {value!r} is beyond the longest netsim represents ({MAX_TIME:g} s)", field=field)
    if kind == "bandwidth" and result > 0 and not BANDWIDTH_RANGE[0] <= result <= BANDWIDTH_RANGE[1]:
        raise UnitError(f"bandwidth {value!r} is outside what netsim represents (1 bit/s to 8 Ebit/s)", field=field)
    if kind == "size" and abs(result) > MAX_SIZE:
        raise UnitError(f"size {value!r} is beyond the largest size netsim represents (2^53 bytes = 8 PiB)",
                        field=field)
    return result


def _example(kind: str) -> str:
    return {"bandwidth": "'400Gbps' or '50GB/s'", "time": "'1.5us' or '2ms'", "size": "'64MiB' or '1e9'"}[kind]


def _known(kind: str) -> list[str]:
    short = {
        "bandwidth": ["bps", "Kbps", "Mbps", "Gbps", "Tbps", "B/s", "MB/s", "GB/s", "GiB/s"],
        "time": ["s", "ms", "us", "ns"],
        "size": ["B", "KB", "MB", "GB", "KiB", "MiB", "GiB", "TiB", "PiB"],
    }
    return short[kind]


def parse_bandwidth(value: object, default_unit: str = "B/s", *, field: str | None = None) -> float:
    """A bandwidth in bytes per second: ``"400Gbps"`` -> 5e10; a plain number is in ``default_unit``."""
    return _parse(value, "bandwidth", default_unit, field)


def parse_time(value: object, default_unit: str = "s", *, field: str | None = None) -> float:
    """A duration in seconds: ``"1.5us"`` -> 1.5e-6; a plain number is in ``default_unit``."""
    return _parse(value, "time", default_unit, field)


def parse_size(value: object, default_unit: str = "B", *, field: str | None = None) -> int:
    """A size in whole bytes: ``"64MiB"`` -> 67108864; fractional bytes are an error."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())  # whole numbers read exactly, not through a float
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
        raise UnitError(f"size {value!r} is beyond the largest size netsim represents (2^53 bytes = 8 PiB)",
                        field=field)
    number = _parse(value, "size", default_unit, field)
    rounded = round(number)
    if number != 0 and rounded == 0:
        raise UnitError(f"size {value!r} is less than one byte", field=field)
    if abs(number - rounded) > 1e-6 * max(1.0, abs(number)):
        raise UnitError(f"size {value!r} is not a whole number of bytes", field=field)
    return int(rounded)


def _scaled(value: float | None, steps: list[tuple[float, str]], digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "-"  # undefined (a rate over no time): shown as such, never as inf or nan
    magnitude = abs(value)
    for factor, suffix in steps:
        if magnitude >= factor:
            return f"{value / factor:.{digits}g}{suffix}"
    factor, suffix = steps[-1]
    return f"{value / factor:.{digits}g}{suffix}"


def format_bandwidth(bytes_per_s: float | None, digits: int = 4) -> str:
    """Bytes per second as bits per second with an SI prefix: 5e10 -> '400Gbps'."""
    bits = None if bytes_per_s is None else bytes_per_s * 8.0
    steps = [(1e12, "Tbps"), (1e9, "Gbps"), (1e6, "Mbps"), (1e3, "Kbps"), (1.0, "bps")]
    return _scaled(bits, steps, digits)


def format_time(seconds: float | None, digits: int = 4) -> str:
    """Seconds with the largest unit that keeps the number >= 1: 1.5e-6 -> '1.5us'."""
    if seconds == 0:
        return "0s"
    steps = [(1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")]
    return _scaled(seconds, steps, digits)


def format_size(nbytes: float | None, digits: int = 4) -> str:
    """Bytes with a binary prefix: 67108864 -> '64MiB'."""
    steps = [(2.0**40, "TiB"), (2.0**30, "GiB"), (2.0**20, "MiB"), (2.0**10, "KiB"), (1.0, "B")]
    return _scaled(nbytes, steps, digits)


# Output columns. Every number netsim writes (Parquet, --json rows, sweep tables) is in seconds, bytes or
# bytes per second, and its column name ends with its unit: ``start_s``, ``size_B``, ``busbw_Bps``. A
# rate per second of something else ends ``_per_s`` (``iterations_per_s``). Numbers without a unit carry
# no suffix: counts (``ranks``, ``count``, ``transfers``), identifiers (``id``, ``rank``, ``step``),
# fractions (``utilization``, ``mean_utilization``, ``*_ratio``, ``slowdown``), percentages (``pct_*``) and
# losses. `column_unit` reads the unit back from a name; reports print it beside the heading.
COLUMN_UNITS = {"_Bps": "B/s", "_per_s": "1/s", "_B": "B", "_s": "s"}  # suffix -> unit, longest match first


def column_unit(name: str) -> str:
    """The unit of an output column from its name (see the convention above): "s", "B", "B/s", "1/s",
    "fraction" for utilisations, or "" for a number without a unit (a count, an id, a ratio).

    >>> column_unit("busbw_Bps"), column_unit("time_mean_s"), column_unit("size_B"), column_unit("ranks")
    ('B/s', 's', 'B', '')
    """
    for suffix, unit in COLUMN_UNITS.items():
        if name.endswith(suffix):
            return unit
    return "fraction" if name.endswith("utilization") else ""


def column_heading(name: str) -> str:
    """A column name with its unit for a table heading: ``busbw_Bps (B/s)``, ``utilization (fraction, 1 = all
    the time)``; unchanged without a unit."""
    unit = column_unit(name)
    unit = "fraction, 1 = all the time" if unit == "fraction" else unit
    return f"{name} ({unit})" if unit else name


def format_value(name: str, value: object) -> str:
    """A value of column `name` for a table cell: seconds, sizes and rates scaled to a readable unit,
    fractions and plain numbers to 4 significant digits, booleans as yes/no, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        unit = column_unit(name)
        if unit == "s":
            return format_time(value)
        if unit == "B":
            return format_size(value)
        if unit == "B/s":
            return format_bandwidth(value)
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return str(value)

"""Real nccl-tests output (``all_reduce_perf`` and friends) read as measurements to set beside a simulation.

nccl-tests prints one line per message size after a two-line header::

    #                                                              out-of-place                       in-place
    #       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
    #        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
         1048576        262144     float     sum      -1    41.57   25.22   44.14      0    40.93   25.62   44.83      0

Times are microseconds, bandwidths GB/s (1e9 bytes/s); ``#wrong`` is ``N/A`` when validation is off (older
versions print an ``error`` column such as ``0e+00``). Lines may carry an MPI launcher's prefix
(``[1,0]<stdout>:``). The rank count comes from the ``#  Rank  N ...`` lines, the collective from
``# Collective test starting: all_reduce_perf`` or the binary's name where the output names it.
`read_nccl_tests` returns the rows in netsim's units (bytes, seconds, bytes/s).

>>> text = ("#  Rank  0 Group  0 Pid 1 on a device  0 [0x1b] NVIDIA H100\\n"
...         "#  Rank  1 Group  0 Pid 1 on a device  1 [0x43] NVIDIA H100\\n"
...         "     1048576  262144  float  sum  -1  41.57  25.22  44.14  0  40.93  25.62  44.83  0\\n")
>>> m = parse_nccl_tests(text, "log")
>>> m.ranks, m.rows[0].size_B, m.rows[0].time_s, m.rows[0].busbw_Bps
(2, 1048576, 4.157e-05, 44140000000.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from netsim.errors import ConfigError
from netsim.units import MAX_SIZE

MAX_FILE_BYTES = 16 * 2**20  # a sweep of 1,000 sizes with a page of header is well under 1 MiB
MAX_ROWS = 1000  # as many sizes as `netsim bench` runs in one sweep
_PREFIX = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:")  # mpirun's per-rank prefix
_RANK = re.compile(r"^#\s*Rank\s+(\d+)\s")
_BINARY = re.compile(r"\b(all_reduce|all_gather|reduce_scatter|alltoall|broadcast|reduce|sendrecv|hypercube|"
                     r"gather|scatter)_perf\b")
OPS = {"all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
       "alltoall": "all_to_all", "broadcast": "broadcast", "reduce": "reduce"}  # nccl-tests name -> netsim op


@dataclass(frozen=True)
class MeasuredRow:
    """One size of a real run: out-of-place and (where printed) in-place time and bus bandwidth."""

    size_B: int
    time_s: float  # out-of-place
    busbw_Bps: float
    in_place_time_s: float | None
    in_place_busbw_Bps: float | None


@dataclass(frozen=True)
class Measurement:
    source: str
    op: str | None  # netsim's op name, where the output names its binary
    ranks: int | None  # from the "# Rank" lines, where printed
    rows: tuple[MeasuredRow, ...]


def _number(token: str) -> float | None:
    if token.upper() == "N/A":
        return None
    try:
        value = float(token)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def parse_nccl_tests(text: str, source: str, field: str = "--measured") -> Measurement:
    """The rows of nccl-tests output `text` (see the module docstring); `source` names it in errors, and `field`
    the argument that gave it."""
    def bad(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(message, source=source, field=field if line is None else f"line {line}")

    ranks: set[int] = set()
    binaries: set[str] = set()
    rows: dict[int, MeasuredRow] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _PREFIX.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("#"):
            if m := _RANK.match(line):
                ranks.add(int(m.group(1)))
            binaries.update(_BINARY.findall(line))
            continue
        tokens = line.split()
        if not tokens[0].isdigit():
            continue  # NCCL INFO lines and the like between the rows
        if len(tokens) < 9:
            raise bad(f"expected size, count, type, redop, root, then time, algbw, busbw and #wrong (nccl-tests' "
                      f"columns), got {len(tokens)} fields", number)
        size = int(tokens[0])
        if size > MAX_SIZE:
            raise bad(f"a size of {size} bytes is beyond 2^53", number)
        time_us, busbw = _number(tokens[5]), _number(tokens[7])
        if time_us is None or busbw is None or time_us < 0 or busbw < 0:
            raise bad(f"expected the out-of-place time (us) and busbw (GB/s) as numbers >= 0, got "
                      f"{tokens[5]!r} and {tokens[7]!r}", number)
        in_time = _number(tokens[9]) if len(tokens) > 11 else None
        in_busbw = _number(tokens[11]) if len(tokens) > 11 else None
        if size in rows:
            raise bad(f"size {size} measured twice (one nccl-tests run per file)", number)
        rows[size] = MeasuredRow(size, time_us * 1e-6, busbw * 1e9,
                                 None if in_time is None else in_time * 1e-6,
                                 None if in_busbw is None else in_busbw * 1e9)
        if len(rows) > MAX_ROWS:
            raise bad(f"more than {MAX_ROWS:,} sizes", number)
    if not rows:
        raise bad("no nccl-tests result rows (lines of size, count, type, redop, root, time, algbw, busbw)")
    if len(binaries) > 1:
        raise bad(f"the output of several tests ({', '.join(sorted(binaries))}); give one file per collective")
    binary = next(iter(binaries), None)
    if binary is not None and binary not in OPS:
        raise bad(f"{binary}_perf has no netsim collective (known: {', '.join(f'{b}_perf' for b in OPS)})")
    return Measurement(source, OPS.get(binary) if binary else None, len(ranks) or None,
                       tuple(sorted(rows.values(), key=lambda r: r.size_B)))


def read_nccl_tests(path: str | Path, field: str = "--measured") -> Measurement:
    """`parse_nccl_tests` on a file (at most 16 MiB; UTF-8 or plain ASCII)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path.stat().st_size:,} bytes, more than nccl-tests output of "
                              f"{MAX_FILE_BYTES // 2**20} MiB", source=str(path), field=field)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror or exc})", source=str(path), field=field) from None
    return parse_nccl_tests(text, str(path), field)


__all__ = ["MeasuredRow", "Measurement", "parse_nccl_tests", "read_nccl_tests"]

"""The `Recorder`: collects result rows during a run, and the `LinkMeter` for link loads.

Rows are appended column-wise into plain lists (cheap on the hot path) and become
polars DataFrames once, at the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl


@dataclass
class Table:
    """Column-wise row buffer with a fixed schema: single rows (`append`) or numpy chunks (`extend`).
    A table that does not `keep` its rows takes them and forgets them (writers may check `keep` and skip
    gathering rows nobody keeps). A table with a `sink` hands it its rows as frames of at most `rows` rows
    (the last one at `flush`) and forgets them: memory for one such frame, however many rows pass."""

    schema: dict[str, pl.DataType]
    keep: bool = True
    sink: Callable[[pl.DataFrame], None] | None = None
    rows: int = 1 << 18
    columns: dict[str, list] = field(init=False)
    chunks: list[dict[str, object]] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = {name: [] for name in self.schema}
        self.chunks = []
        self._pending = 0  # rows taken and not yet handed to the sink

    def append(self, **row: object) -> None:
        if self.keep:
            for name, values in self.columns.items():
                values.append(row[name])
            if self.sink is not None:
                self._pending += 1
                if self._pending >= self.rows:
                    self.flush()

    def extend(self, **chunk: object) -> None:
        """Many rows at once: numpy arrays of one length, or scalars repeated over them."""
        if not self.keep:
            return
        if self.sink is None:
            self.chunks.append(chunk)
            return
        n, lo = next(len(v) for v in chunk.values() if isinstance(v, np.ndarray)), 0
        while lo < n:  # in slices that fill the frame in hand to `rows`
            hi = lo + min(self.rows - self._pending, n - lo)
            self.chunks.append({k: v[lo:hi] if isinstance(v, np.ndarray) else v for k, v in chunk.items()})
            self._pending += hi - lo
            lo = hi
            if self._pending >= self.rows:
                self.flush()

    def flush(self) -> None:
        """Hand the rows taken so far to the sink (if any, and if there are rows) and forget them."""
        if self.sink is None or not self._pending:
            return
        frame = self.frame()
        self.columns = {name: [] for name in self.schema}
        self.chunks, self._pending = [], 0
        self.sink(frame)

    def frame(self) -> pl.DataFrame:
        parts = [pl.DataFrame(self.columns, schema=self.schema)]
        if self.chunks:
            parts.append(self._chunk_frame())
        return pl.concat(parts, how="vertical")

    def _chunk_frame(self) -> pl.DataFrame:
        lengths = [next(len(v) for v in c.values() if isinstance(v, np.ndarray)) for c in self.chunks]
        data = {}
        for name, dtype in self.schema.items():
            values = [c[name] for c in self.chunks]
            if all(isinstance(v, np.ndarray) for v in values):
                data[name] = pl.Series(name, np.concatenate(values), dtype=dtype)
            else:  # scalars per chunk, repeated over the chunk's rows
                owner = np.repeat(np.arange(len(values)), lengths)
                data[name] = pl.Series(name, values, dtype=dtype).gather(owner)
        return pl.DataFrame(data, schema=self.schema)


def _double(bins, doublings):
    """Merge neighbouring bins `doublings` times (bin b the sum of bins 2b and 2b + 1, the upper half
    emptied). A block of TILE links at a time, so the block stays in cache through every step: a pass costs
    one read and write of the bins however many steps (numpy made a pass per step). Each sum is the one
    numpy made, so the bins are the same to the last bit."""
    nbins, nlinks = bins.shape
    for lo in range(0, nlinks, TILE):
        hi = min(lo + TILE, nlinks)
        n = nbins  # bins that may hold something (above them: zeros, whose sums are zeros)
        for _ in range(doublings):
            if n == 1:
                break
            half = n // 2
            for b in range(half):
                for link in range(lo, hi):
                    bins[b, link] = bins[2 * b, link] + bins[2 * b + 1, link]
            for b in range(half, n):
                for link in range(lo, hi):
                    bins[b, link] = 0.0
            n = half


TILE = 256  # links per block of `_double` (a block of 128 bins: 256 KiB)


def _bin_log(log_f, log_link, n, bins, width, column):
    """Bin the logged intervals (`log_link[k]` carried `log_f[2, k]` bytes/s from `log_f[0, k]` to
    `log_f[1, k]`) into `bins` of `width` (which reach the last of them), link l's into column `column[l]`
    (-1: not binned). A link's intervals do not overlap, so the whole bins they cover cost, over a fold, at
    most the link's bins once more."""
    nbins = bins.shape[0]
    per = 1.0 / width
    for k in range(n):
        link = column[log_link[k]]
        if link < 0:
            continue
        t0 = log_f[0, k]
        t1 = log_f[1, k]
        rate = log_f[2, k]
        # the bins t1 and t0 fall in: b with b x width <= t < (b + 1) x width, as computed, from a product
        # and a correction (a floor division compiles to a call of fmod, which cost more than the rest)
        last = int(t1 * per)
        if last * width > t1:
            last -= 1
        elif (last + 1) * width <= t1:
            last += 1
        last = min(last, nbins - 1)
        if t0 >= last * width:
            first = last
        else:
            first = int(t0 * per)
            if first * width > t0:
                first -= 1
            elif (first + 1) * width <= t0:
                first += 1
        if first == last:
            bins[first, link] += rate * (min(t1, (first + 1) * width) - t0)
        else:
            bins[first, link] += rate * ((first + 1) * width - t0)
            whole = rate * width
            for b in range(first + 1, last):
                bins[b, link] += whole
            hi = min(t1, (last + 1) * width)
            if hi > last * width:
                bins[last, link] += rate * (hi - last * width)


_compiled: dict = {}


def _jit(function: Callable) -> Callable:
    """`function` compiled on first use (numba is imported only then: commands that never meter a run do not
    pay for importing it)."""
    if function not in _compiled:
        from numba import njit

        _compiled[function] = njit(cache=True, error_model="numpy")(function)
    return _compiled[function]


class LinkMeter:
    """Bytes carried per link, in total and in time bins that coarsen as the run grows.

    `add(t0, t1, links, rates)` records that each link in `links` carried `rates[i]`
    bytes/s during [t0, t1). Totals are exact; the timeline keeps `nbins` bins whose
    width doubles (neighbouring bins merged) whenever the run outgrows them, so memory
    stays nbins x links whatever the length of the run. The fluid engine adds totals and
    peaks itself and logs its intervals (`log_*`), binned by `fold` when the log fills or a
    whole timeline is asked for (so `bins` holds only what was folded: read them through
    `timeline`; `end` moves at a fold or when the run closes the meter): on
    the 1,024-GPU halving-doubling the meter cost ~21 ms of a 0.12 s run when the engine
    binned each interval and the bins doubled 14 times while it ran, 10-14 ms when it binned
    every link's log at the end, and ~8 ms of a 0.08 s run now that a run's timeline bins its
    hottest links' intervals only (`timeline(links)`).
    """

    LOG = 1 << 20  # intervals the fluid engine logs before they are binned (`fold`: 32 MiB when full)

    def __init__(self, nlinks: int, nbins: int = 128, first_width: float = 1e-6):
        if nbins % 2:
            raise ValueError("nbins must be even")
        # The fluid engine's intervals, binned in one pass when the log fills or a timeline asks (`fold`): the
        # bins cost nothing while the run goes, and coarsen once per fold, not at every doubling of the run.
        # It stops to have them binned once more than `log_room` are logged; one instant logs at most one
        # per link, hence the room beyond it.
        self.log_room = self.LOG
        # (not zeroed: an entry is written before it is read, and a page untouched costs nothing)
        self.log_f = np.empty((3, self.LOG + nlinks + 1))  # t0, t1, rate
        self.log_link = np.empty(self.LOG + nlinks + 1, dtype=np.int64)
        self.log_n = np.zeros(1, dtype=np.int64)
        self.total = np.zeros(nlinks)
        self.bins = np.zeros((nbins, nlinks))
        self.width = first_width
        self.peak = np.zeros(nlinks)
        self.end = 0.0
        self.binned = False  # anything added to `bins` yet

    def add(self, t0: float, t1: float, links: np.ndarray | None, rates: np.ndarray) -> None:
        """Links `links` (distinct ids; None: all links, in order) carried `rates` bytes/s in [t0, t1)."""
        if t1 <= t0 or len(rates) == 0:
            return
        self.binned = True
        if links is None:  # every link (the fluid model's per-event call): in place, no index arrays
            dt = t1 - t0
            np.maximum(self.peak, rates, out=self.peak)
            nbins = self.bins.shape[0]
            if t1 <= nbins * self.width and int(t0 // self.width) == min(int(t1 // self.width), nbins - 1):
                carried = rates * dt
                self.total += carried
                self.bins[int(t0 // self.width)] += carried
                self.end = max(self.end, t1)
                return
        where = slice(None) if links is None else links
        self.total[where] += rates * (t1 - t0)
        self.peak[where] = np.maximum(self.peak[where], rates)
        nbins = self.bins.shape[0]
        self.reach(t1)
        first, last = int(t0 // self.width), min(int(t1 // self.width), nbins - 1)
        for b in range(first, last + 1):
            lo, hi = max(t0, b * self.width), min(t1, (b + 1) * self.width)
            if hi > lo:
                self.bins[b, where] += rates * (hi - lo)
        self.end = max(self.end, t1)

    def reach(self, t: float) -> None:
        """Make the bins span [0, t): merge neighbours and double the width as often as needed."""
        nbins = self.bins.shape[0]
        doublings = 0
        while t > nbins * self.width * 2.0 ** doublings:
            doublings += 1
        if doublings:
            if self.binned:  # (empty bins stay empty: nothing to merge)
                _jit(_double)(self.bins, doublings)
            self.width *= 2.0 ** doublings
        self.end = max(self.end, t)


    def fold(self) -> None:
        """Bin the intervals logged so far (the bins first coarsened to reach the last of them)."""
        n = self._reach_log()
        if n:
            _jit(_bin_log)(self.log_f, self.log_link, n, self.bins, self.width, np.arange(self.bins.shape[1]))
            self.binned = True
            self.log_n[0] = 0

    def _reach_log(self) -> int:
        """Coarsen the bins to reach the last interval logged; returns how many are logged."""
        n = int(self.log_n[0])
        if n:
            self.reach(float(self.log_f[1, :n].max()))
        return n

    def timeline(self, links: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(bin start times, bytes per bin x link, bin width) up to the last recorded time: of every link, or
        of `links` (distinct ids; their columns in that order). Asked for some links, the intervals logged and
        not yet binned are binned into a copy of theirs and stay logged: the 40 links of a run's timeline cost
        their own intervals, not a fold of every link's (on the 1,024-GPU halving-doubling, closing the meter and
        the timeline took 2.2 ms instead of 3.6)."""
        if links is None:
            self.fold()
            bins = self.bins
        else:
            links = np.asarray(links, dtype=np.int64)
            if len(np.unique(links)) < len(links):
                raise ValueError("timeline(links): each link at most once")
            n = self._reach_log()
            bins = np.ascontiguousarray(self.bins[:, links])  # (one layout: one compiled `_bin_log`)
            if n:
                column = np.full(self.bins.shape[1], -1, dtype=np.int64)
                column[links] = np.arange(len(links))
                _jit(_bin_log)(self.log_f, self.log_link, n, bins, self.width, column)
        used = max(1, int(np.ceil(self.end / self.width))) if self.end > 0 else 0
        starts = np.arange(used) * self.width
        return starts, bins[:used], self.width


class Recorder:
    """Collects the rows of every result table during a run, except those of the tables named in `drop`
    (they take rows and keep none) and those given a sink in `sinks` (their rows go to it in frames of at most
    `rows` rows): neither kind has a frame."""

    def __init__(self, drop: tuple[str, ...] = (), sinks: dict[str, Callable[[pl.DataFrame], None]] | None = None,
                 rows: int = 1 << 18) -> None:
        self.tables: dict[str, Table] = {}
        self.drop = frozenset(drop)
        self.sinks = dict(sinks or {})
        self.rows = rows

    def table(self, name: str, schema: dict[str, pl.DataType]) -> Table:
        """The table `name`, created with `schema` on first use."""
        existing = self.tables.get(name)
        if existing is None:
            existing = self.tables[name] = Table(schema, keep=name not in self.drop, sink=self.sinks.get(name),
                                                 rows=self.rows)
        elif existing.schema != schema:
            raise ValueError(f"table {name!r} requested with two different schemas")
        return existing

    def frames(self) -> dict[str, pl.DataFrame]:
        """The kept tables' frames; the streamed tables hand their last rows to their sinks."""
        for table in self.tables.values():
            table.flush()
        return {name: table.frame() for name, table in self.tables.items() if table.keep and table.sink is None}

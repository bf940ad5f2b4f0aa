"""The `Recorder`: collects result rows during a run, and the `LinkMeter` for link loads.

Rows are appended column-wise into plain lists (cheap on the hot path) and become
polars DataFrames once, at the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl


@dataclass
class Table:
    """Column-wise row buffer with a fixed schema."""

    schema: dict[str, pl.DataType]
    columns: dict[str, list] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = {name: [] for name in self.schema}

    def append(self, **row: object) -> None:
        for name, values in self.columns.items():
            values.append(row[name])

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.columns, schema=self.schema)


class LinkMeter:
    """Bytes carried per link, in total and in time bins that coarsen as the run grows.

    `add(t0, t1, links, rates)` records that each link in `links` carried `rates[i]`
    bytes/s during [t0, t1). Totals are exact; the timeline keeps `nbins` bins whose
    width doubles (neighbouring bins merged) whenever the run outgrows them, so memory
    stays nbins x links whatever the length of the run.
    """

    def __init__(self, nlinks: int, nbins: int = 128, first_width: float = 1e-6):
        if nbins % 2:
            raise ValueError("nbins must be even")
        self.total = np.zeros(nlinks)
        self.bins = np.zeros((nbins, nlinks))
        self.width = first_width
        self.peak = np.zeros(nlinks)
        self.end = 0.0

    def add(self, t0: float, t1: float, links: np.ndarray, rates: np.ndarray) -> None:
        if t1 <= t0 or len(links) == 0:
            return
        self.total[links] += rates * (t1 - t0)
        np.maximum.at(self.peak, links, rates)
        nbins = self.bins.shape[0]
        while t1 > nbins * self.width:
            merged = self.bins.reshape(nbins // 2, 2, -1).sum(axis=1)
            self.bins[: nbins // 2] = merged
            self.bins[nbins // 2 :] = 0.0
            self.width *= 2.0
        first, last = int(t0 // self.width), min(int(t1 // self.width), nbins - 1)
        for b in range(first, last + 1):
            lo, hi = max(t0, b * self.width), min(t1, (b + 1) * self.width)
            if hi > lo:
                self.bins[b, links] += rates * (hi - lo)
        self.end = max(self.end, t1)

    def timeline(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(bin start times, bytes per bin x link, bin width) up to the last recorded time."""
        used = max(1, int(np.ceil(self.end / self.width))) if self.end > 0 else 0
        starts = np.arange(used) * self.width
        return starts, self.bins[:used], self.width


class Recorder:
    """Collects the rows of every result table during a run."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str, schema: dict[str, pl.DataType]) -> Table:
        """The table `name`, created with `schema` on first use."""
        existing = self.tables.get(name)
        if existing is None:
            existing = self.tables[name] = Table(schema)
        elif existing.schema != schema:
            raise ValueError(f"table {name!r} requested with two different schemas")
        return existing

    def frames(self) -> dict[str, pl.DataFrame]:
        return {name: table.frame() for name, table in self.tables.items()}

"""Running a sweep: every point once, each result kept on disk the moment it exists.

Results live in a cache folder, one Parquet file per run named by the point's key (a hash of the
resolved scenario, its kind and netsim's version): an interrupted sweep resumes where it stopped, and
a repeated or overlapping sweep reuses what is there (`fresh=True` runs everything again). Each file is
written under a temporary name and moved into place (`os.replace`), so a crash leaves the old file or
the new one; a file that cannot be read all the same (a damaged disk, a copy cut short) is treated as
missing: its point runs again, and the `notice` callback says so. A run that failed is a file too,
holding its error, so the sweep goes on and the table says which points failed — except a failure on
the run's input (a `NetsimError`), which is not kept: the input may be fixed (a topology file the
point names), and such a failure costs little to find again. The table is the points in spec order,
the parameters as the first columns, then the kind's metrics — the same whichever executor ran them,
with however many workers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
from polars.exceptions import PanicException

from netsim.errors import ConfigError
from netsim.sweep.executors import Executor, one_line
from netsim.sweep.spec import Point, SweepSpec, describe


@dataclass(frozen=True)
class SweepResult:
    table: pl.DataFrame
    failed: list[tuple[Point, str]]  # the points that failed and their errors, in spec order
    failed_on_input: int  # of them, those whose run raised a NetsimError (a mistake in the point)


def _cell(value):
    """Parameter values as table cells: scalars stay, lists and mappings become their JSON text."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else json.dumps(value, sort_keys=True)


def _write(path: Path, frame: pl.DataFrame) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        os.close(fd)
        frame.write_parquet(tmp, statistics=False)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a folder gone read-only: the runs so far are kept
        raise ConfigError(f"cannot write {str(path)!r}: {exc.strerror or exc}", field="--cache") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _read(path: Path) -> pl.DataFrame:
    """A cache entry; an exception if it is not one netsim could have written whole."""
    frame = pl.read_parquet(path)
    if frame.schema.get("error") not in (pl.Utf8, pl.Null) or not len(frame):
        raise ValueError("not a sweep result (no error column)")
    return frame


def _frame(rows: list[dict] | None, error: str | None) -> pl.DataFrame:
    if error is not None:
        return pl.DataFrame({"error": [error]})
    clean = [{k: _cell(v) for k, v in r.items()} for r in rows or [{}]]
    return pl.DataFrame(clean, infer_schema_length=None).with_columns(pl.lit(None, dtype=pl.Utf8).alias("error"))


def sweep(spec: SweepSpec, pts: list[Point], folder: Path, cache: Path, executor: Executor, *,
          fresh: bool = False, progress: Callable[[int, int, int], None] | None = None,
          notice: Callable[[str], None] | None = None) -> SweepResult:
    """Run the points not already in `cache` (all of them with `fresh`); the merged table and the failures.
    The cache folder is made when the first result is written."""
    unique = list({p.key: p for p in pts}.values())  # equal points (a value listed twice) run once
    frames: dict[str, pl.DataFrame] = {}
    todo = []
    for p in unique:
        path = cache / f"{p.key}.parquet"
        if fresh or not path.is_file():
            todo.append(p)
            continue
        try:
            frames[p.key] = _read(path)
        except (Exception, PanicException) as exc:  # noqa: BLE001  (polars panics are BaseExceptions)
            if notice:
                notice(f"cache entry {str(path)!r} ({describe(p)}) is unreadable ({one_line(exc)}); running it again")
            todo.append(p)
    done, failed, on_input = len(unique) - len(todo), 0, set()
    if progress:
        progress(done, failed, len(unique))
    if todo:
        tasks = [(p.key, spec.kind, p.document, str(folder)) for p in todo]
        for key, rows, error, input_error in executor.run(tasks):
            frame = _frame(rows, error)
            if input_error:
                frames[key] = frame
                on_input.add(key)
            else:
                path = cache / f"{key}.parquet"
                _write(path, frame)
                frames[key] = pl.read_parquet(path)  # as a later sweep will read it: the same table
            done += 1
            failed += error is not None
            if progress:
                progress(done, failed, len(unique))
    table = merge(spec, pts, frames)
    errors = [(p, frames[p.key]["error"].drop_nulls()) for p in pts]
    failures = [(p, e[0]) for p, e in errors if len(e)]
    return SweepResult(table, failures, sum(p.key in on_input for p, _ in failures))


def run_sweep(spec: SweepSpec, pts: list[Point], folder: Path, cache: Path, executor: Executor, *,
              fresh: bool = False, progress: Callable[[int, int, int], None] | None = None,
              notice: Callable[[str], None] | None = None) -> pl.DataFrame:
    """Run the points not already in `cache` (all of them with `fresh`); return the merged table."""
    return sweep(spec, pts, folder, cache, executor, fresh=fresh, progress=progress, notice=notice).table


QUANTITIES = (("Bps", "parse_bandwidth"), ("s", "parse_time"), ("B", "parse_size"))  # unit suffix, parser


def with_numbers(table: pl.DataFrame, params) -> pl.DataFrame:
    """Beside each parameter written as quantities with units ("10Gbps", "2us", "64MiB"), the same values
    as numbers in netsim's units, in a column named after the unit: `bandwidth_Bps`, `latency_s`,
    `size_B` (the first family every value reads as, bandwidth before time before size)."""
    import netsim.units as units

    for name in params:
        if name not in table.columns or table[name].dtype != pl.Utf8:
            continue
        values = table[name].to_list()
        if not values or not all(isinstance(v, str) and any(ch.isalpha() for ch in v) for v in values):
            continue
        for unit, parser in QUANTITIES:
            try:
                numbers = [float(getattr(units, parser)(v)) for v in values]
            except (units.UnitError, ValueError, TypeError):
                continue
            column = f"{name}_{unit}"
            if column not in table.columns:
                table = table.insert_column(table.columns.index(name) + 1, pl.Series(column, numbers))
            break
    return table


def merge(spec: SweepSpec, pts: list[Point], frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    parts = []
    for p in pts:
        frame = frames[p.key]
        if spec.metrics is not None:
            keep = [c for c in spec.metrics if c in frame.columns and c != "error"]
            frame = frame.select(keep + ["error"])
        frame = frame.drop([c for c in frame.columns if c in p.params])  # a parameter's own column wins
        params = pl.DataFrame({k: [_cell(v)] * len(frame) for k, v in p.params.items()}) if len(frame) else None
        head = pl.DataFrame({"point": [p.index] * len(frame), "run": [p.key] * len(frame)})
        parts.append(pl.concat([head] + ([params] if params is not None else []) + [frame], how="horizontal"))
    return with_numbers(pl.concat(parts, how="diagonal_relaxed"), [*spec.grid, *spec.zip]) if parts else pl.DataFrame()

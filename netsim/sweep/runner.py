"""Running a sweep: every point once, each result kept on disk the moment it exists.

Results live in a cache folder, one Parquet file per run named by the point's key (a hash of the
resolved scenario, its kind and netsim's version): an interrupted sweep resumes where it stopped, and
a repeated or overlapping sweep reuses what is there (`fresh=True` runs everything again). A failed run
is a file too, holding its error, so the sweep goes on and the table says which points failed. The
table is the points in spec order, the parameters as the first columns, then the kind's metrics —
the same whichever executor ran them, with however many workers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import polars as pl

from netsim.sweep.executors import Executor
from netsim.sweep.spec import Point, SweepSpec


def _cell(value):
    """Parameter values as table cells: scalars stay, lists and mappings become their JSON text."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else json.dumps(value, sort_keys=True)


def _write(path: Path, frame: pl.DataFrame) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        frame.write_parquet(tmp, statistics=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _frame(rows: list[dict] | None, error: str | None) -> pl.DataFrame:
    if error is not None:
        return pl.DataFrame({"error": [error]})
    clean = [{k: _cell(v) for k, v in r.items()} for r in rows or [{}]]
    return pl.DataFrame(clean, infer_schema_length=None).with_columns(pl.lit(None, dtype=pl.Utf8).alias("error"))


def run_sweep(spec: SweepSpec, pts: list[Point], folder: Path, cache: Path, executor: Executor, *,
              fresh: bool = False, progress: Callable[[int, int, int], None] | None = None) -> pl.DataFrame:
    """Run the points not already in `cache` (all of them with `fresh`); return the merged table."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [p for p in pts if fresh or not (cache / f"{p.key}.parquet").is_file()]
    done = len(pts) - len(todo)
    failed = 0
    if progress:
        progress(done, failed, len(pts))
    if todo:
        tasks = [(p.key, spec.kind, p.document, str(folder)) for p in todo]
        for key, rows, error in executor.run(tasks):
            _write(cache / f"{key}.parquet", _frame(rows, error))
            done += 1
            failed += error is not None
            if progress:
                progress(done, failed, len(pts))
    return merge(spec, pts, cache)


def merge(spec: SweepSpec, pts: list[Point], cache: Path) -> pl.DataFrame:
    parts = []
    for p in pts:
        frame = pl.read_parquet(cache / f"{p.key}.parquet")
        if spec.metrics:
            keep = [c for c in spec.metrics if c in frame.columns]
            frame = frame.select(keep + ["error"])
        frame = frame.drop([c for c in frame.columns if c in p.params])  # a parameter's own column wins
        params = pl.DataFrame({k: [_cell(v)] * len(frame) for k, v in p.params.items()}) if len(frame) else None
        head = pl.DataFrame({"point": [p.index] * len(frame), "run": [p.key] * len(frame)})
        parts.append(pl.concat([head] + ([params] if params is not None else []) + [frame], how="horizontal"))
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()

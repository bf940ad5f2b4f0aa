"""netsim's own trace format: the trace model as one table, Parquet or JSON Lines.

One row per node — rank, id, kind, name, duration_s, op, size_B, group, peer, tag, deps (list of ids),
algo, start_s, stream, flops (the last two optional when read). Version 1 files (columns ``duration``,
``bytes`` and ``start``, before every output named its units) are still read. The process groups (name -> ranks), the source and the format ride along: in the
Parquet file's key-value metadata under ``netsim.trace``, or as the first line of a JSON Lines file
(``{"netsim_trace": 1, "groups": {...}, ...}``). netsim writes this for any simulated run (`netsim
replay -o`), so a run can be replayed elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from netsim.traces.model import Trace, TraceError, TraceNode, parse_json, shown, whole

VERSION = 2
SCHEMA = {"rank": pl.Int64, "id": pl.Int64, "kind": pl.Utf8, "name": pl.Utf8, "duration_s": pl.Float64,
          "op": pl.Utf8, "size_B": pl.Int64, "group": pl.Utf8, "peer": pl.Int64, "tag": pl.Int64,
          "deps": pl.List(pl.Int64), "algo": pl.Utf8, "start_s": pl.Float64, "stream": pl.Utf8, "flops": pl.Float64}
OPTIONAL = {"stream", "flops"}  # columns files written before them lack
FIELDS = {"size_B": "nbytes", "duration_s": "duration", "start_s": "start"}  # column -> TraceNode field
VERSION_1 = {"duration": "duration_s", "bytes": "size_B", "start": "start_s"}  # version 1's column names


def to_frame(trace: Trace) -> pl.DataFrame:
    rows = [{"rank": n.rank, "id": n.id, "kind": n.kind, "name": n.name, "duration_s": n.duration, "op": n.op,
             "size_B": n.nbytes, "group": n.group, "peer": n.peer, "tag": n.tag, "deps": list(n.deps),
             "algo": n.algo, "start_s": n.start, "stream": n.stream, "flops": n.flops} for n in trace.all_nodes()]
    return pl.DataFrame(rows, schema=SCHEMA)


def _header(trace: Trace) -> dict:
    return {"netsim_trace": VERSION, "groups": {k: list(v) for k, v in trace.groups.items()},
            "source": trace.source, "format": trace.format, "skipped": trace.skipped}


def write(trace: Trace, path: str | Path) -> Path:
    """Write `trace` as Parquet (``.parquet``) or JSON Lines (``.jsonl``)."""
    path = Path(path)
    frame = to_frame(trace)
    if path.suffix == ".parquet":
        frame.write_parquet(path, statistics=False, metadata={"netsim.trace": json.dumps(_header(trace))})
    elif path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as f:
            f.write(json.dumps(_header(trace)) + "\n")
            for row in frame.iter_rows(named=True):
                f.write(json.dumps(row) + "\n")
    else:
        raise TraceError(f"expected a .parquet or .jsonl name, got {path.name!r}", source=str(path))
    return path


@contextmanager
def _panics_unprinted():
    """polars panics on some corrupt Parquet files: it raises `PanicException` (caught by `read`), but its
    panic handler first prints the panic and a backtrace hint on stderr (file descriptor 2). While polars
    reads, that descriptor points at /dev/null, so that bad input stays a one-line error."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _int64(value) -> bool:
    return whole(value) and -(2**63) <= value < 2**63


_TYPES = {pl.Int64: ("a whole number", _int64), pl.Utf8: ("text", lambda v: isinstance(v, str)),
          pl.Float64: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
          pl.List(pl.Int64): ("a list of node ids", lambda v: isinstance(v, list) and all(map(_int64, v)))}


def _check_row(row: dict, source: str, where: str) -> None:
    """A JSON Lines row's values against the schema (null: absent), before polars would coerce them."""
    for key, dtype in SCHEMA.items():
        value = row.get(key)
        if value is not None:
            what, ok = _TYPES[dtype]
            if not ok(value):
                raise TraceError(f"expected {what}, got {shown(value)}", source=source, field=f"{where}.{key}")


def read(path: str | Path) -> Trace:
    """Read a trace written by `write`. Each JSON document (the header, each line) nests at most 64 levels;
    columns must hold their schema's type (rank, id and kind in every row); the header's groups map names to
    lists of ranks. Values are then held to `netsim.traces.model`'s limits by `load_trace`."""
    path = Path(path)
    source = str(path)
    try:
        if path.suffix == ".parquet":
            with _panics_unprinted():
                meta = pl.read_parquet_metadata(path).get("netsim.trace")
            if meta is None:
                raise TraceError("a Parquet file without netsim's trace metadata (not written by netsim)",
                                 source=source)
            header = parse_json(meta, source, bad="not a netsim trace header", field="metadata netsim.trace")
            with _panics_unprinted():
                frame = pl.read_parquet(path)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            if not lines:
                raise TraceError("empty file", source=source)
            header = parse_json(lines[0], source, bad="not a netsim trace header", field="line 1")
            rows = []
            for i, line in enumerate(lines[1:], start=2):
                if line.strip():
                    row = parse_json(line, source, bad="not a JSON row", field=f"line {i}")
                    if not isinstance(row, dict):
                        raise TraceError(f"expected an object (one node), got {shown(row)}", source=source,
                                         field=f"line {i}")
                    if isinstance(header, dict) and header.get("netsim_trace") == 1:
                        row = {VERSION_1.get(k, k): v for k, v in row.items()}
                    _check_row(row, source, f"line {i}")
                    rows.append(row)
            frame = pl.DataFrame(rows, schema=SCHEMA)
    except pl.exceptions.PanicException:
        raise TraceError("not a netsim trace (corrupt Parquet data)", source=source) from None
    except (OSError, ValueError, TypeError, OverflowError, pl.exceptions.PolarsError) as exc:
        raise TraceError(f"not a netsim trace ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})",
                         source=source) from None
    if not isinstance(header, dict) or header.get("netsim_trace") not in (1, VERSION):
        raise TraceError(f"expected a netsim trace of version 1 or {VERSION}", source=source, field="netsim_trace")
    if header["netsim_trace"] == 1:
        frame = frame.rename({old: new for old, new in VERSION_1.items() if old in frame.columns})
    missing = set(SCHEMA) - set(frame.columns) - OPTIONAL
    if missing:
        raise TraceError(f"missing columns {sorted(missing)}", source=source)
    try:
        frame = frame.select([pl.col(c).cast(SCHEMA[c], strict=True) for c in SCHEMA if c in frame.columns])
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise TraceError(f"a column of the wrong type ({str(exc).splitlines()[0][:120]})", source=source) from None
    for column in ("rank", "id", "kind"):
        nulls = frame[column].null_count()
        if nulls:
            raise TraceError(f"{nulls:,} row{'s' if nulls > 1 else ''} without a value", source=source, field=column)
    nodes: dict[int, list[TraceNode]] = {}
    for row in frame.iter_rows(named=True):
        kw = {FIELDS.get(k, k): v for k, v in row.items() if k in SCHEMA}
        kw["deps"] = tuple(kw["deps"] or ())
        kw["tag"] = kw["tag"] or 0
        kw["nbytes"] = kw["nbytes"] or 0
        kw["name"] = kw["name"] or ""
        nodes.setdefault(row["rank"], []).append(TraceNode(**kw))
    groups = header.get("groups", {})
    if not isinstance(groups, dict) or not all(isinstance(v, list) and all(whole(r) for r in v)
                                               for v in groups.values()):
        raise TraceError(f"expected process group names mapped to lists of ranks, got {shown(groups)}", source=source,
                         field="groups")
    skipped = header.get("skipped") or {}
    if not isinstance(skipped, dict) or not all(whole(v) and v >= 0 for v in skipped.values()):
        raise TraceError(f"expected reasons mapped to counts, got {shown(skipped)}", source=source, field="skipped")
    fmt = header.get("format")
    return Trace({r: tuple(v) for r, v in nodes.items()}, {str(k): tuple(v) for k, v in groups.items()}, source,
                 fmt if isinstance(fmt, str) and fmt else "netsim", {str(k): v for k, v in skipped.items()})

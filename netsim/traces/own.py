"""netsim's own trace format: the trace model as one table, Parquet or JSON Lines.

One row per node — rank, id, kind, name, duration (s), op, bytes, group, peer, tag, deps (list of ids),
algo, start (s), stream, flops (the last two optional when read). The process groups (name -> ranks), the source and the format ride along: in the
Parquet file's key-value metadata under ``netsim.trace``, or as the first line of a JSON Lines file
(``{"netsim_trace": 1, "groups": {...}, ...}``). netsim writes this for any simulated run (`netsim
replay -o`), so a run can be replayed elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from netsim.traces.model import Trace, TraceError, TraceNode

VERSION = 1
SCHEMA = {"rank": pl.Int64, "id": pl.Int64, "kind": pl.Utf8, "name": pl.Utf8, "duration": pl.Float64, "op": pl.Utf8,
          "bytes": pl.Int64, "group": pl.Utf8, "peer": pl.Int64, "tag": pl.Int64, "deps": pl.List(pl.Int64),
          "algo": pl.Utf8, "start": pl.Float64, "stream": pl.Utf8, "flops": pl.Float64}
OPTIONAL = {"stream", "flops"}  # columns files written before them lack
FIELDS = {"bytes": "nbytes"}  # column -> TraceNode field, where they differ


def to_frame(trace: Trace) -> pl.DataFrame:
    rows = [{"rank": n.rank, "id": n.id, "kind": n.kind, "name": n.name, "duration": n.duration, "op": n.op,
             "bytes": n.nbytes, "group": n.group, "peer": n.peer, "tag": n.tag, "deps": list(n.deps), "algo": n.algo,
             "start": n.start, "stream": n.stream, "flops": n.flops} for n in trace.all_nodes()]
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


def read(path: str | Path) -> Trace:
    """Read a trace written by `write`."""
    path = Path(path)
    source = str(path)
    try:
        if path.suffix == ".parquet":
            meta = pl.read_parquet_metadata(path).get("netsim.trace")
            if meta is None:
                raise TraceError("a Parquet file without netsim's trace metadata (not written by netsim)",
                                 source=source)
            header = json.loads(meta)
            frame = pl.read_parquet(path)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            if not lines:
                raise TraceError("empty file", source=source)
            header = json.loads(lines[0])
            frame = pl.DataFrame([json.loads(line) for line in lines[1:] if line.strip()], schema=SCHEMA)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise TraceError(f"not a netsim trace ({str(exc).splitlines()[0][:120]})", source=source) from None
    if not isinstance(header, dict) or header.get("netsim_trace") != VERSION:
        raise TraceError(f"expected a netsim trace of version {VERSION}", source=source)
    missing = set(SCHEMA) - set(frame.columns) - OPTIONAL
    if missing:
        raise TraceError(f"missing columns {sorted(missing)}", source=source)
    nodes: dict[int, list[TraceNode]] = {}
    for row in frame.iter_rows(named=True):
        kw = {FIELDS.get(k, k): v for k, v in row.items() if k in SCHEMA}
        kw["deps"] = tuple(kw["deps"] or ())
        kw["tag"] = kw["tag"] or 0
        kw["nbytes"] = kw["nbytes"] or 0
        kw["name"] = kw["name"] or ""
        nodes.setdefault(row["rank"], []).append(TraceNode(**kw))
    groups = {k: tuple(v) for k, v in header.get("groups", {}).items()}
    return Trace({r: tuple(v) for r, v in nodes.items()}, groups, source, header.get("format") or "netsim",
                 dict(header.get("skipped") or {}))

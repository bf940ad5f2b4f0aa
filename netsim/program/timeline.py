"""A run's timeline as Chrome trace events (`timeline.json`): opens in Perfetto or chrome://tracing.

One process per rank (named after its GPU), one thread per stream of that rank; every node is a complete
event (``ph: "X"``, microseconds) named after its op or name, with its kind as the category and its bytes,
node id and recorded duration as arguments. Optional counters (``ph: "C"``) draw a series over time, e.g.
a link's load.

>>> import polars as pl
>>> rows = pl.DataFrame({"rank": [0], "node": [3], "kind": ["compute"], "name": ["fwd"], "op": [None],
...                      "size_B": [0], "stream": ["compute"], "start_s": [0.0], "end_s": [1e-3], "recorded_s": [1e-3]})
>>> events = chrome_trace(rows)["traceEvents"]
>>> [(e["ph"], e.get("name")) for e in events]
[('M', 'process_name'), ('M', 'thread_name'), ('X', 'fwd')]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import polars as pl


def chrome_trace(nodes: pl.DataFrame, *, gpus: Sequence[str] | None = None, names: dict[int, str] | None = None,
                 counters: Sequence[tuple[str, Sequence[float], Sequence[float]]] = ()) -> dict:
    """The trace-event object for node rows (rank, node, kind, name, op, size_B, stream, start_s, end_s,
    recorded_s; seconds). Processes are ranks, named ``rank r (gpus[i])`` for the i-th rank in rank order,
    or `names[r]`. `counters`: (series name, times in s, values) drawn as counter tracks of a process
    named "links"."""
    events: list[dict] = []
    ranks = sorted(set(nodes["rank"].to_list()))
    threads: dict[tuple[int, str], int] = {}
    for i, r in enumerate(ranks):
        label = names[r] if names is not None and r in names else \
            f"rank {r}" + (f" ({gpus[i]})" if gpus is not None and i < len(gpus) else "")
        events.append({"ph": "M", "name": "process_name", "pid": r, "tid": 0, "args": {"name": label}})
    if counters:
        events.append({"ph": "M", "name": "process_name", "pid": -1, "tid": 0, "args": {"name": "links"}})
    for row in nodes.sort("rank", "stream", "start_s").iter_rows(named=True):
        where = (row["rank"], row["stream"])
        if where not in threads:
            threads[where] = sum(1 for k in threads if k[0] == row["rank"])
            events.append({"ph": "M", "name": "thread_name", "pid": row["rank"], "tid": threads[where],
                           "args": {"name": row["stream"]}})
        args = {"node": row["node"], "bytes": row["size_B"]}
        if row["name"] and row["op"]:
            args["name"] = row["name"]
        if row["recorded_s"] is not None and math.isfinite(row["recorded_s"]):
            args["recorded_us"] = row["recorded_s"] * 1e6
        events.append({"ph": "X", "name": row["op"] or row["name"] or row["kind"], "cat": row["kind"],
                       "ts": row["start_s"] * 1e6, "dur": (row["end_s"] - row["start_s"]) * 1e6, "pid": row["rank"],
                       "tid": threads[where], "args": args})
    for name, times, values in counters:
        for t, v in zip(times, values):
            events.append({"ph": "C", "name": name, "ts": float(t) * 1e6, "pid": -1, "args": {name: float(v)}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_timeline(path: str | Path, nodes: pl.DataFrame, **kw) -> Path:
    """Write `chrome_trace(nodes, **kw)` as JSON to `path`."""
    path = Path(path)
    path.write_text(json.dumps(chrome_trace(nodes, **kw)), encoding="utf-8")
    return path


__all__ = ["chrome_trace", "write_timeline"]

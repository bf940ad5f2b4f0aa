"""The trace model is the program model (`netsim.program.model`): a trace is a `Program` read from a file.
The names traces and their readers use, the limits every trace is held to, and the JSON parsing they share.

Limits (checked by `check`, which `load_trace` applies to what any reader returns, and by the readers at
their own edge, where they can name the field as the file spells it):

- sizes are whole bytes, 0 to 2^53 (`MAX_BYTES`, 8 PiB: exact as a float64);
- durations are finite seconds, 0 to `MAX_DURATION` (1e6 s, 11.6 days: no recorded kernel, transfer or
  recording is longer; a longer one is a corrupt field, not a slow job); recorded starts are finite
  seconds, 0 to `MAX_START` (1e10 s: absolute clocks, such as microseconds since 1970, fit);
- ranks 0 to `MAX_RANKS` - 1 (the largest topology netsim builds), node ids 0 to 2^63 - 1, tags what an
  int32 holds (what a replayed trace is written back as: netsim's table, Chakra ET);
- a compute node has a recorded duration (replay has no device speed to time FLOPs with);
- a trace has something to replay: a node that communicates, or compute of non-zero length;
- JSON documents nest at most `MAX_DEPTH` (64) levels, as YAML documents do.
"""

from __future__ import annotations

import json
import math

from netsim.config.yaml_file import MAX_DEPTH, nesting_depth
from netsim.program.model import (KINDS, Node as TraceNode, Program as Trace, ProgramError as TraceError, chained,
                                  summary)
from netsim.units import MAX_SIZE

MAX_BYTES = MAX_SIZE  # 2^53
MAX_DURATION = 1e6  # seconds
MAX_START = 1e10  # seconds
MAX_RANKS = 131_072  # the largest topology netsim builds has this many GPUs
MAX_ID = 2**63 - 1
TAG_RANGE = (-(2**31), 2**31 - 1)

__all__ = ["KINDS", "MAX_BYTES", "MAX_DEPTH", "MAX_DURATION", "MAX_RANKS", "MAX_START", "Trace", "TraceError",
           "TraceNode", "chained", "check", "parse_json", "summary"]


def shown(value: object, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters (a field's value quoted in a one-line message)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def whole(value: object) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_depth(data: object) -> int:
    """Nesting depth of lists and mappings, as YAML's is measured (without recursion; no cap on the values:
    a long recording holds millions)."""
    return nesting_depth(data, max_values=None)


def parse_json(text: str | bytes, source: str, *, bad: str = "not valid JSON", field: str | None = None) -> object:
    """Parse one JSON document; malformed (`bad`: what the message starts with) or nested deeper than
    `MAX_DEPTH` levels is a one-line `TraceError` naming `source`."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise TraceError(f"nested deeper than {MAX_DEPTH} levels", source=source, field=field) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise TraceError(f"{bad}: {detail}", source=source, field=field) from None
    if json_depth(data) > MAX_DEPTH:
        raise TraceError(f"nested deeper than {MAX_DEPTH} levels", source=source, field=field)
    return data


def _time_ok(value: object, ceiling: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        0 <= value <= ceiling


def check(trace: Trace) -> Trace:
    """Hold a reader's trace to the limits above, then `Trace.validate` it; returns it. One-line
    `TraceError`s name the file, the rank and node, the field and the expectation."""
    where = trace.source or "trace"
    for rank, nodes in trace.nodes.items():
        if not whole(rank) or not 0 <= rank < MAX_RANKS:
            raise TraceError(f"expected a rank 0 to {MAX_RANKS - 1:,}, got {shown(rank)}", source=where, field="rank")
        for n in nodes:
            field = f"rank {rank} node {shown(n.id)}"
            if not whole(n.id) or not 0 <= n.id <= MAX_ID:
                raise TraceError(f"id: expected a whole number 0 to 2^63 - 1, got {shown(n.id)}", source=where,
                                 field=field)
            if n.kind not in KINDS:
                raise TraceError(f"kind: expected one of {', '.join(KINDS)}, got {shown(n.kind)}", source=where,
                                 field=field)
            if not whole(n.nbytes) or not 0 <= n.nbytes <= MAX_BYTES:
                raise TraceError(f"size: expected whole bytes, 0 to 2^53 (8 PiB), got {shown(n.nbytes)}",
                                 source=where, field=field)
            if n.duration is not None and not _time_ok(n.duration, MAX_DURATION):
                raise TraceError(f"duration: expected finite seconds, 0 to {MAX_DURATION:g}, got {shown(n.duration)}",
                                 source=where, field=field)
            if n.start is not None and not _time_ok(n.start, MAX_START):
                raise TraceError(f"start: expected finite seconds, 0 to {MAX_START:g}, got {shown(n.start)}",
                                 source=where, field=field)
            if n.flops is not None and not _time_ok(n.flops, 1e30):
                raise TraceError(f"flops: expected a finite number, 0 to 1e30, got {shown(n.flops)}", source=where,
                                 field=field)
            if n.kind == "compute" and n.duration is None:
                raise TraceError("compute without a recorded duration (replay has no device speed to time FLOPs "
                                 "with)", source=where, field=field)
            if not whole(n.tag) or not TAG_RANGE[0] <= n.tag <= TAG_RANGE[1]:
                raise TraceError(f"tag: expected a whole number that fits 32 bits, got {shown(n.tag)}", source=where,
                                 field=field)
            if not isinstance(n.deps, tuple) or not all(whole(d) for d in n.deps):
                raise TraceError(f"deps: expected node ids, got {shown(n.deps)}", source=where, field=field)
            if n.kind in ("send", "recv") and not whole(n.peer):
                raise TraceError(f"peer: expected a rank, got {shown(n.peer)}", source=where, field=field)
            if n.kind == "collective" and n.op == "send_recv" and len(trace.groups.get(n.group, ())) != 2:
                raise TraceError(f"a send_recv collective needs a group of 2 ranks; {shown(n.group)} has "
                                 f"{len(trace.groups.get(n.group, ()))}", source=where, field=field)
    for name, members in trace.groups.items():
        if not isinstance(name, str) or not isinstance(members, tuple) or not all(whole(r) for r in members):
            raise TraceError(f"process group {shown(name)}: expected a name and a list of ranks, got "
                             f"{shown(members)}", source=where, field="groups")
    trace.validate()
    if not any(n.kind != "compute" or n.duration for n in trace.all_nodes()):
        count = sum(len(v) for v in trace.nodes.values())
        what = "no nodes" if not count else f"only {count:,} compute nodes of zero length, no communication"
        counts = [(v, str(k)) for k, v in trace.skipped.items() if whole(v) and v > 0]
        most = max(counts, default=None)
        raise TraceError(f"nothing to replay: {what}" + (f"; skipped {sum(v for v, _ in counts):,} records, "
                         f"most of them ({most[0]:,}): {most[1][:100]}" if most else ""), source=where)
    return trace

"""Recordings of a running PyTorch program (`netsim.training.backend`), one JSON file per rank, read as a
`Program`.

A rank's file ``rank-<r>.recording.json`` holds its global rank, the world size, the run's id (the same
on every rank of one run), the process groups it belongs to (torch's group name -> global ranks;
``default``: the default group's name), the instant the recording began and ended (``origin``, ``end``:
seconds on the machine's monotonic clock, which all local ranks share) and its ``events`` in the order
the rank made them:

- a call: ``{"call": id, "op": torch's name, "kind": collective | send | recv | gather | scatter,
  "collective": netsim's op, "bytes", "dtype", "group", "peer" (global rank), "tag", "root" (gather,
  scatter: global rank), "t0", "t1" (entered and left the backend), "done" (when the work finished, where
  known), "where" (the script line)}``. Gather and scatter, which netsim has no collective for, become
  messages between the root and each other member, one block each;
- a wait: ``{"wait": [call ids], "t0", "t1", "how"}`` — the rank blocked from t0 to t1 until those calls
  finished (``work``: `Work.wait`; ``future``: `Future.wait`; ``backward``: the end of a backward pass,
  where DDP waits for its buckets);
- a setup: ``{"setup": group, "t0", "t1"}`` — creating a process group (its members connecting): neither
  compute nor communication netsim simulates.

A symmetric recording (``"symmetric": true``: one rank ran in a world of N, `netsim.training.symmetric`) is
one file, read as the same recording on each of the N ranks.

`program_from_recording` turns them into one `Program` (see `_rank_nodes` for the graph): the time a rank
spent between leaving the backend and entering it again is a compute node, in the rank's order; a call is
issued after the compute before it, and the rank's later compute depends on it only from the wait that
waited for it, so a call that was not waited for at once (``async_op=True``, DDP's buckets) overlaps the
compute that followed its issue. Sizes are bytes in netsim's convention (see `netsim.program.model`).
Messages keep their tags on the default group; on the k-th other group (by name) tag t becomes
k * `TAG_STRIDE` + t, so the same pair of ranks talking on two groups is two streams of messages, as in
torch.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

from netsim.traces.model import Trace, TraceError, TraceNode, check, parse_json, shown, whole

FORMAT = "netsim-torch-recording"
VERSION = 1
FILE = re.compile(r"rank-(\d+)\.recording\.json$")
TAG_STRIDE = 2**20  # a point-to-point tag on the k-th process group becomes k * TAG_STRIDE + tag; the last
# tag of each group's range carries its gather and scatter messages
UNEVEN = "uneven all_to_all call: every rank's send buffer taken as the largest rank's"


def rank_file(directory: str | Path, rank: int) -> Path:
    return Path(directory) / f"rank-{rank}.recording.json"


def write_rank(directory: str | Path, data: dict) -> Path:
    """Write one rank's recording atomically (a reader never sees half a file)."""
    path = rank_file(directory, data["rank"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "version": VERSION, **data}, separators=(",", ":")),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def looks_like(path: Path) -> bool:
    """A directory holding rank recordings."""
    return path.is_dir() and any(FILE.match(p.name) for p in path.iterdir())


def read_ranks(path: str | Path) -> dict[int, dict]:
    """Every rank's recording in directory `path`, by rank; a missing rank or a file that is not a
    recording is a one-line `TraceError`."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if FILE.match(p.name)) if path.is_dir() else []
    if not files:
        raise TraceError("no rank recordings (rank-<r>.recording.json) found", source=str(path))
    ranks: dict[int, dict] = {}
    for f in files:
        data = parse_json(f.read_bytes(), str(f), bad="not a netsim recording")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else data
            raise TraceError(f"not a netsim recording (format {shown(found)})", source=str(f), field="format")
        if data.get("version") != VERSION:
            raise TraceError(f"recording version {shown(data.get('version'))}; this netsim reads version {VERSION}",
                             source=str(f), field="version")
        rank, size = data.get("rank"), data.get("world_size")
        if not whole(rank) or not whole(size) or not 0 <= rank < size:
            raise TraceError(f"expected a rank of the world (0..world_size - 1), got rank {shown(rank)} of "
                             f"{shown(size)}", source=str(f), field="rank")
        if str(rank) != FILE.match(f.name).group(1):
            raise TraceError(f"holds rank {rank}", source=str(f), field="rank")
        ranks[rank] = data
    if len(ranks) == 1 and next(iter(ranks.values())).get("symmetric"):
        ranks = _replicated(ranks.popitem()[1])
    runs = {d.get("run") for d in ranks.values()}
    if len(runs) != 1:
        raise TraceError(f"holds the recordings of {len(runs)} different runs (a directory holds one run's)",
                         source=str(path))
    sizes = {d["world_size"] for d in ranks.values()}
    if len(sizes) != 1:
        raise TraceError(f"the ranks disagree on the world size ({sorted(sizes)})", source=str(path))
    missing = sorted(set(range(sizes.pop())) - set(ranks))
    if missing:
        raise TraceError(f"no recording of ranks {missing[:8]}{' ...' if len(missing) > 8 else ''} (did they fail "
                         "or not finish?)", source=str(path))
    return ranks


STEP = "optimizer step"  # the name of the zero-length node marking where a recorded optimizer step ended


def _replicated(data: dict) -> dict[int, dict]:
    """A symmetric recording (one rank recorded for all, `netsim.training.symmetric`) as every rank's: the same
    calls, groups and times on each (its only group is the world's, and it has no messages)."""
    return {r: {**data, "rank": r} for r in range(data["world_size"])}


def read(path: str | Path, marks: dict[int, list[tuple[float, str]]] | None = None) -> Trace:
    """The recorded program (not yet checked: `program_from_recording` checks it). `marks`: per rank,
    instants on the recording's clock (time, name) that the script noted itself (the end of a step...);
    each becomes a zero-length compute node of that name on the rank's own thread, where the script was
    then, so the simulated end of that node is when the rank got there. Without them, the ends of the
    optimizer steps the backend recorded are the marks (named `STEP` and the step's index)."""
    ranks = read_ranks(path)
    source = str(path)
    groups: dict[str, tuple[int, ...]] = {}
    default = None
    for r, data in ranks.items():
        for name, members in data["groups"].items():
            members = tuple(members)
            if groups.setdefault(name, members) != members:
                raise TraceError(f"process group {name!r} has ranks {list(members)} on rank {r}, "
                                 f"{list(groups[name])} elsewhere", source=source, field="groups")
        default = default or data["default"]
    order = [default] + sorted((g for g in groups if g != default), key=lambda g: (len(g), g))
    index = {g: k for k, g in enumerate(order)}
    origin = min(float(d["origin"]) for d in ranks.values())
    if marks is None:  # the optimizer steps the backend saw (a caller's own marks stand instead)
        marks = {r: [(t, f"{STEP} {k}") for k, t in enumerate(data.get("steps", ()))] for r, data in ranks.items()}
    nodes = {r: _rank_nodes(r, data, origin, groups, index, source, marks.get(r, ()))
             for r, data in sorted(ranks.items())}
    skipped: dict[str, int] = {}
    nodes = _even_all_to_all(nodes, groups, skipped)
    return Trace(nodes, groups, source, "torch", skipped)


def program_from_recording(path: str | Path, marks: dict[int, list[tuple[float, str]]] | None = None) -> Trace:
    """Directory of rank recordings (and the scripts' `marks`, see `read`) -> one checked and validated
    `Program`."""
    return check(read(path, marks))


def _rank_nodes(rank: int, data: dict, origin: float, groups: dict, index: dict[str, int],
                source: str, marks=()) -> tuple[TraceNode, ...]:
    """One rank's nodes. The rank's own thread is a chain: compute (the time outside the backend) and waits.
    A call depends on the chain where it was issued; the chain depends on a call from the wait that
    waited for it on (a wait's blocked time is not compute). Calls never waited for are joined by a
    final zero-length node, so the rank ends after everything it issued."""
    nodes: list[TraceNode] = []
    chain: int | None = None  # the last node of the rank's own thread
    after: set[int] = set()  # calls waited for, which the rank's next node follows
    pending: dict[int, list[int]] = {}  # call id -> its nodes, issued and not waited for yet
    cursor = float(data["origin"])

    def deps() -> tuple[int, ...]:
        return tuple(sorted(after | ({chain} if chain is not None else set())))

    def compute(until: float) -> None:
        nonlocal chain, cursor
        if until > cursor:
            nodes.append(TraceNode(rank, len(nodes), "compute", "compute", duration=until - cursor,
                                   start=cursor - origin, deps=deps()))
            chain = len(nodes) - 1
            after.clear()
        cursor = max(cursor, until)

    def mark(at: float, name: str) -> None:
        nonlocal chain
        compute(at)
        nodes.append(TraceNode(rank, len(nodes), "compute", name, duration=0.0, start=cursor - origin, deps=deps()))
        chain = len(nodes) - 1
        after.clear()

    noted = sorted(marks, key=lambda x: x[0])  # (stable: marks at one instant keep their order)
    m = 0
    for k, ev in enumerate(data["events"]):
        t0, t1 = float(ev["t0"]), float(ev["t1"])
        while m < len(noted) and noted[m][0] <= t0:
            mark(*noted[m])
            m += 1
        compute(t0)
        if "call" in ev:
            done = ev.get("done")
            common = {"name": f"{ev['op']} {ev.get('dtype', '')}".strip() + (f" @ {ev['where']}" if ev.get("where")
                                                                                 else ""),
                      "start": t0 - origin, "deps": deps(), "nbytes": int(ev["bytes"]),
                      "duration": float(done) - t0 if done is not None and done >= t0 else None}
            first = len(nodes)
            for fields in _call_nodes(rank, ev, groups, index, source, f"events[{k}]"):
                nodes.append(TraceNode(rank, len(nodes), **{**common, **fields}))
            pending[ev["call"]] = list(range(first, len(nodes)))
        elif "wait" in ev:
            for i in ev["wait"]:
                after.update(pending.pop(i, ()))
        elif "setup" not in ev:
            raise TraceError(f"rank {rank}: an event that is neither a call, a wait nor a setup", source=source,
                             field=f"events[{k}]")
        cursor = max(cursor, t1)
    for at, name in noted[m:]:
        mark(at, name)
    compute(float(data["end"]))
    left = {i for ids in pending.values() for i in ids}
    if left or after:
        nodes.append(TraceNode(rank, len(nodes), "compute", "end", duration=0.0, start=cursor - origin,
                               deps=tuple(sorted(set(deps()) | left))))
    return tuple(nodes)


def _call_nodes(rank: int, ev: dict, groups: dict, index: dict[str, int], source: str, field: str) -> list[dict]:
    """The node fields of one call: a collective, a message, or a gather / scatter as messages between the
    root and every other member of the group (one block each, on the group's reserved tag)."""
    kind, group = ev["kind"], ev["group"]
    if group not in index:
        raise TraceError(f"rank {rank}: process group {shown(group)} is not among the recorded groups", source=source,
                         field=f"{field}.group")
    base = index[group] * TAG_STRIDE
    if kind == "collective":
        return [{"kind": "collective", "op": ev["collective"], "group": group}]
    if kind in ("send", "recv"):
        tag = int(ev.get("tag") or 0)
        if not 0 <= tag < TAG_STRIDE - 1:
            raise TraceError(f"rank {rank}: {kind} with tag {tag}; netsim replays tags 0 to {TAG_STRIDE - 2}",
                             source=source, field=f"{field}.tag")
        return [{"kind": kind, "peer": int(ev["peer"]), "tag": base + tag}]
    if kind in ("gather", "scatter"):
        root, tag = int(ev["root"]), base + TAG_STRIDE - 1
        out = "send" if kind == "scatter" else "recv"  # what the root does with each other member
        if rank != root:
            return [{"kind": "recv" if out == "send" else "send", "peer": root, "tag": tag}]
        return [{"kind": out, "peer": r, "tag": tag} for r in groups[group] if r != root]
    raise TraceError(f"rank {rank}: unknown kind {shown(kind)}", source=source, field=f"{field}.kind")


def _even_all_to_all(nodes: dict, groups: dict, skipped: dict) -> dict:
    """An all-to-all whose ranks send different amounts (uneven splits) sized as the largest send buffer:
    netsim's all-to-all moves the same amount from every rank."""
    calls: dict[str, dict[int, list[int]]] = {}
    for r, rank_nodes in nodes.items():
        for i, n in enumerate(rank_nodes):
            if n.kind == "collective":
                calls.setdefault(n.group, {}).setdefault(r, []).append(i)
    out = {r: list(v) for r, v in nodes.items()}
    for name, per_rank in calls.items():
        members = groups.get(name, ())
        if any(r not in per_rank for r in members) or len({len(per_rank[r]) for r in members}) != 1:
            continue  # validate() reports it
        for k in range(len(per_rank[members[0]])):
            call = [out[r][per_rank[r][k]] for r in members]
            sizes = {n.nbytes for n in call}
            if all(n.op == "all_to_all" for n in call) and len(sizes) > 1:
                for n in call:
                    out[n.rank][per_rank[n.rank][k]] = replace(n, nbytes=max(sizes))
                skipped[UNEVEN] = skipped.get(UNEVEN, 0) + 1
    return {r: tuple(v) for r, v in out.items()}

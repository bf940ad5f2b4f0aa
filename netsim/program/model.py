"""The program model: what a job does, per rank, as a graph of compute and communication nodes.

A `Program` holds, per rank, its `Node`s in recorded order, and the process groups (name -> global
ranks). It is what every workload builds and every trace reader returns (`netsim.traces` calls it a
trace), and what `netsim.program.executor` runs. A node is

- ``compute``: a duration (recorded, or `flops` on a device of a given speed);
- ``collective``: an op of `netsim.collectives.OPS` (or ``send_recv``: the group's rank 0 sends the buffer
  to its rank 1) over a process group, with its buffer size in
  netsim's convention (all_reduce / broadcast / reduce: the buffer; all_gather: the gathered output;
  reduce_scatter: the input, n blocks; all_to_all: the rank's whole send buffer), the algorithm if known;
- ``send`` / ``recv``: bytes to / from a peer rank with a tag.

`deps` lists the node ids (same rank) a node waits for. Readers without dependency information chain
each rank's nodes in recorded order. Compute and send nodes run on a FIFO *stream* of their rank
(`stream`; by default compute on ``compute`` and sends on the connection to their peer), a group's
collectives on that group's stream (their `stream` is ignored); a stream runs one node at a time (see
the executor for the order), and a receive occupies none. `validate()` checks
what the executor relies on and raises a `ProgramError`
naming the rank and node: dependencies that exist and form no cycle, peers and group members that
exist, each group's collectives matching call by call across its ranks (same op, same size), sends
matching receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from netsim.collectives.algorithms import OPS

COLLECTIVE_OPS = OPS + ("send_recv",)  # what a collective node may do
from netsim.errors import ConfigError

KINDS = ("compute", "collective", "send", "recv")


class ProgramError(ConfigError):
    """A program (or trace) that cannot be read or run as it is: one line naming the file, rank and node."""


@dataclass(frozen=True)
class Node:
    rank: int
    id: int  # unique within its rank
    kind: str
    name: str = ""
    duration: float | None = None  # recorded seconds (compute: what replay charges; comm: what it took)
    op: str | None = None
    nbytes: int = 0
    group: str | None = None
    peer: int | None = None  # send: the destination rank; recv: the source rank
    tag: int = 0
    deps: tuple[int, ...] = ()
    algo: str | None = None
    start: float | None = None  # recorded start, seconds from the trace's origin
    stream: str | None = None  # the rank's FIFO stream it runs on (None: its kind's default)
    flops: float | None = None  # compute: floating-point operations (timed on a device when no duration)


@dataclass(frozen=True, eq=False)
class Program:
    """Nodes per rank (in recorded order), process groups, where it came from, and what a reader skipped
    (reason -> count)."""

    nodes: dict[int, tuple[Node, ...]]
    groups: dict[str, tuple[int, ...]]
    source: str = ""
    format: str = ""
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def ranks(self) -> list[int]:
        return sorted(self.nodes)

    def all_nodes(self):
        for r in self.ranks:
            yield from self.nodes[r]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for n in self.all_nodes():
            out[n.kind] += 1
        return out

    def validate(self) -> "Program":
        """Check the graph (see the module docstring); returns self."""
        where = self.source or "trace"
        if not self.nodes:
            raise ProgramError("holds no ranks", source=where)
        ranks = set(self.nodes)
        for name, members in self.groups.items():
            missing = sorted(set(members) - ranks)
            if missing or len(set(members)) != len(members):
                raise ProgramError(f"process group {name!r} names ranks {missing or list(members)} that are not "
                                 f"in the trace (ranks {min(ranks)}..{max(ranks)})", source=where)
        for r in self.ranks:
            ids = {}
            for n in self.nodes[r]:
                if n.kind not in KINDS:
                    raise ProgramError(f"rank {r} node {n.id}: unknown kind {n.kind!r}", source=where)
                if n.id in ids:
                    raise ProgramError(f"rank {r}: node id {n.id} appears twice", source=where)
                ids[n.id] = n
                if n.kind == "compute" and not (n.duration is not None and n.duration >= 0 or
                                                n.duration is None and n.flops is not None and n.flops >= 0):
                    raise ProgramError(f"rank {r} node {n.id} ({n.name}): compute needs a duration >= 0 s "
                                       "(or flops >= 0)", source=where)
                if n.kind == "collective":
                    if n.op not in COLLECTIVE_OPS:
                        raise ProgramError(f"rank {r} node {n.id}: unknown collective {n.op!r}", source=where)
                    if n.group not in self.groups:
                        raise ProgramError(f"rank {r} node {n.id}: unknown process group {n.group!r}", source=where)
                    if r not in self.groups[n.group]:
                        raise ProgramError(f"rank {r} node {n.id}: rank {r} is not in its group {n.group!r}",
                                         source=where)
                if n.kind in ("send", "recv") and (n.peer not in ranks or n.peer == r):
                    raise ProgramError(f"rank {r} node {n.id}: {n.kind} names peer {n.peer}, not another rank of "
                                     "the trace", source=where)
                if n.nbytes < 0:
                    raise ProgramError(f"rank {r} node {n.id}: negative size", source=where)
            for n in self.nodes[r]:
                for d in n.deps:
                    if d not in ids:
                        raise ProgramError(f"rank {r} node {n.id}: depends on node {d}, which rank {r} does not have",
                                         source=where)
            _check_acyclic(r, self.nodes[r], where)
        self._check_matching(where)
        return self

    def _check_matching(self, where: str) -> None:
        calls: dict[str, dict[int, list[Node]]] = {}
        for n in self.all_nodes():
            if n.kind == "collective":
                calls.setdefault(n.group, {}).setdefault(n.rank, []).append(n)
        for name, per_rank in calls.items():
            members = self.groups[name]
            counts = {r: len(per_rank.get(r, [])) for r in members}
            if len(set(counts.values())) != 1:
                raise ProgramError(f"process group {name!r}: its ranks make different numbers of collective calls "
                                 f"({', '.join(f'rank {r}: {c}' for r, c in counts.items())})", source=where)
            for k, call in enumerate(zip(*(per_rank[r] for r in members))):
                first = call[0]
                for other in call[1:]:
                    if (other.op, other.nbytes) != (first.op, first.nbytes):
                        raise ProgramError(f"process group {name!r}, call {k}: rank {first.rank} does {first.op} of "
                                         f"{first.nbytes} B, rank {other.rank} {other.op} of {other.nbytes} B",
                                         source=where)
        pairs: dict[tuple[int, int, int], list[int]] = {}
        for n in self.all_nodes():
            if n.kind == "send":
                pairs.setdefault((n.rank, n.peer, n.tag), []).append(n.nbytes)
        received: dict[tuple[int, int, int], list[int]] = {}
        for n in self.all_nodes():
            if n.kind == "recv":
                received.setdefault((n.peer, n.rank, n.tag), []).append(n.nbytes)
        for key in set(pairs) | set(received):
            sent, got = pairs.get(key, []), received.get(key, [])
            if len(sent) != len(got):
                raise ProgramError(f"rank {key[0]} sends {len(sent)} messages (tag {key[2]}) to rank {key[1]}, which "
                                 f"receives {len(got)}", source=where)
            for a, b in zip(sent, got):
                if a != b:
                    raise ProgramError(f"rank {key[0]} -> {key[1]} (tag {key[2]}): a send of {a} B is received as "
                                     f"{b} B", source=where)


def _check_acyclic(rank: int, nodes, where: str) -> None:
    deps = {n.id: n.deps for n in nodes}
    state: dict[int, int] = {}  # 1: on the path, 2: done
    for start in deps:
        if state.get(start):
            continue
        stack = [(start, iter(deps[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise ProgramError(f"rank {rank}: dependency cycle through nodes {nxt} and {node}", source=where)
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))


def chained(nodes: list[Node]) -> list[Node]:
    """Each node made to depend on the one before it (readers without dependency information)."""
    return [replace(n, deps=(nodes[i - 1].id,)) if i else replace(n, deps=()) for i, n in enumerate(nodes)]


def summary(trace: Program) -> dict:
    """What `netsim trace show` prints: ranks, nodes per kind, collectives and transfers, bytes, skipped."""
    collectives: dict[tuple, dict] = {}
    p2p: dict[tuple, dict] = {}
    compute = 0.0
    for n in trace.all_nodes():
        if n.kind == "compute":
            compute += n.duration or 0.0
        elif n.kind == "collective":
            key = (n.op, n.group, n.nbytes)
            c = collectives.setdefault(key, {"op": n.op, "group": n.group, "ranks": len(trace.groups[n.group]),
                                             "size_B": n.nbytes, "calls_per_rank": 0, "nodes": 0})
            c["nodes"] += 1
        elif n.kind == "send":
            key = (n.rank, n.peer)
            t = p2p.setdefault(key, {"src": n.rank, "dst": n.peer, "messages": 0, "sent_B": 0})
            t["messages"] += 1
            t["sent_B"] += n.nbytes
    for c in collectives.values():
        c["calls_per_rank"] = c.pop("nodes") // max(c["ranks"], 1)
    coll_bytes = sum(c["size_B"] * c["calls_per_rank"] for c in collectives.values())
    return {"source": trace.source, "format": trace.format, "ranks": len(trace.nodes), "nodes": trace.counts(),
            "groups": {k: list(v) for k, v in trace.groups.items()},
            "collectives": sorted(collectives.values(), key=lambda c: (c["group"], c["op"], c["size_B"])),
            "transfers": sorted(p2p.values(), key=lambda t: (t["src"], t["dst"])),
            "collective_B_per_rank": coll_bytes, "p2p_B": sum(t["sent_B"] for t in p2p.values()),
            "compute_s_per_rank": compute / len(trace.nodes), "skipped": dict(trace.skipped)}

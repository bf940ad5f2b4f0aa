"""Replay a `Trace` on a simulated fabric.

Every rank runs its graph on the SimPy clock: a node starts once the nodes it depends on are done.
Compute nodes take their recorded time (x `scale_compute`) on the rank's one compute stream, one at a
time, in recorded order. A collective starts when every rank of its group has reached the same call (the
k-th collective of the group on each rank) and runs through the simulated network with netsim's
collective algorithms (`algo`, default auto; collectives that have no such algorithm use auto) on the
group's GPUs. A send and its receive (matched in
order per sender, receiver and tag) move their bytes once both are posted. Ranks map to GPUs by
`placement`: ``contiguous`` (rank i on the topology's i-th GPU) or ``random`` (a seeded sample).

`rescale(trace, m)` turns an N-rank data-parallel trace into an M-rank one: rank i does what rank
i mod N did, every collective runs over all M ranks with the same buffer size per rank (all_reduce,
broadcast, reduce, all_to_all, barrier) — except all_gather and reduce_scatter, whose buffer is M blocks
of the recorded per-rank block. Traces with point-to-point messages or collectives over a subgroup are
refused: the rule does not say where their peers go.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from netsim.collectives import BUSBW_FACTOR, Communicator
from netsim.errors import ConfigError
from netsim.sim import Simulation
from netsim.topology import Topology
from netsim.traces.model import Trace, TraceError

PLACEMENTS = ("contiguous", "random")
TIMELINE_SCHEMA = {"rank": pl.Int64, "node": pl.Int64, "kind": pl.Utf8, "name": pl.Utf8, "op": pl.Utf8,
                   "bytes": pl.Int64, "start": pl.Float64, "end": pl.Float64, "recorded": pl.Float64}


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """Iteration time, per-node intervals (`timeline`), per-collective-call records (`collectives`)."""

    time_s: float
    ranks: int
    compute_s: tuple[float, ...]
    timeline: pl.DataFrame
    collectives: pl.DataFrame
    gpus: tuple[str, ...]

    @property
    def exposed_comm_s(self) -> float:
        """Mean over ranks of the iteration time not spent computing."""
        return float(np.mean(self.time_s - np.asarray(self.compute_s)))

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (metric, value) lines, values formatted with their units (tables, reports)."""
        from netsim.units import format_time

        s = self.summary()
        rows = [("iteration time", format_time(s["time_s"])), ("compute (busiest rank)", format_time(s["compute_s"])),
                ("exposed communication (mean over ranks)", format_time(s["exposed_comm_s"])),
                ("collective calls", str(s["collective_calls"])), ("point-to-point transfers", str(s["transfers"]))]
        if s["recorded_comm_s"] is not None:
            rows += [("collectives, recorded (sum of calls)", format_time(s["recorded_comm_s"])),
                     ("collectives, simulated (same calls)", format_time(s["simulated_comm_s"]))]
        return rows

    def summary(self) -> dict:
        recorded = self.collectives.filter(pl.col("recorded").is_not_null())
        return {"time_s": self.time_s, "ranks": self.ranks, "compute_s": max(self.compute_s),
                "exposed_comm_s": self.exposed_comm_s, "collective_calls": len(self.collectives),
                "transfers": int((self.timeline["kind"] == "send").sum()),
                "recorded_comm_s": float(recorded["recorded"].sum()) if len(recorded) else None,
                "simulated_comm_s": float(recorded["time_s"].sum()) if len(recorded) else None}


def rescale(trace: Trace, m: int) -> Trace:
    """The data-parallel trace on `m` ranks (see the module docstring)."""
    if m < 1:
        raise ConfigError(f"expected a rank count >= 1, got {m}", field="--ranks")
    n = len(trace.nodes)
    world = tuple(trace.ranks)
    for node in trace.all_nodes():
        if node.kind in ("send", "recv"):
            raise TraceError(f"rank {node.rank} node {node.id}: point-to-point messages (pipeline or tensor "
                             "parallel) cannot be rescaled: only data-parallel traces can", source=trace.source)
        if node.kind == "collective" and trace.groups[node.group] != world:
            raise TraceError(f"rank {node.rank} node {node.id}: a collective over the subgroup {node.group!r} cannot "
                             "be rescaled: only data-parallel traces (every collective over all ranks) can",
                             source=trace.source)
    groups = {"world": tuple(range(m))}
    nodes = {}
    for r in range(m):
        template = trace.nodes[world[r % n]]
        out = []
        for node in template:
            if node.kind == "collective":
                nbytes = node.nbytes
                if node.op in ("all_gather", "reduce_scatter"):
                    nbytes = node.nbytes // n * m
                node = replace(node, nbytes=nbytes, group="world")
            out.append(replace(node, rank=r))
        nodes[r] = tuple(out)
    return Trace(nodes, groups, trace.source, trace.format, dict(trace.skipped))


def place(topo: Topology, ranks: int, placement: str, seed: int) -> np.ndarray:
    if placement not in PLACEMENTS:
        raise ConfigError(f"unknown placement {placement!r} (known: {', '.join(PLACEMENTS)})", field="--placement")
    if ranks > len(topo.gpus):
        raise ConfigError(f"the trace has {ranks} ranks, the topology {topo.name!r} {len(topo.gpus)} GPUs",
                          field="--topology")
    if placement == "contiguous":
        return topo.gpus[:ranks].copy()
    rng = np.random.default_rng([seed, 0x7265706C6179])
    return rng.choice(topo.gpus, size=ranks, replace=False)


def replay(trace: Trace, topo: Topology, *, routing: str = "ecmp", placement: str = "contiguous",
           scale_compute: float = 1.0, algo: str = "auto", seed: int = 0) -> ReplayResult:
    """Replay `trace` (validated) on `topo`; see the module docstring."""
    if not scale_compute >= 0 or scale_compute > 1e9:
        raise ConfigError(f"expected a factor >= 0, got {scale_compute!r}", field="--scale-compute")
    from netsim.collectives.algorithms import ALGORITHMS

    if algo != "auto" and not any(algo in names for names in ALGORITHMS.values()):
        known = sorted({a for names in ALGORITHMS.values() for a in names})
        raise ConfigError(f"unknown algorithm {algo!r} (known: auto, {', '.join(known)})", field="--algo")
    ranks = trace.ranks
    gpus = place(topo, len(ranks), placement, seed)
    gpu_of = dict(zip(ranks, gpus.tolist()))
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    env = sim.env
    comms: dict[str, Communicator] = {}
    index = {(n.rank, n.id): n for n in trace.all_nodes()}
    waiting = {key: len(n.deps) for key, n in index.items()}
    followers: dict[tuple, list[tuple]] = {key: [] for key in index}
    for key, n in index.items():
        for d in n.deps:
            followers[(n.rank, d)].append(key)
    call_of: dict[tuple, tuple[str, int]] = {}
    counters: dict[tuple[int, str], int] = {}
    for n in trace.all_nodes():
        if n.kind == "collective":
            k = counters.get((n.rank, n.group), 0)
            counters[(n.rank, n.group)] = k + 1
            call_of[(n.rank, n.id)] = (n.group, k)
    pair_of: dict[tuple, tuple] = {}
    queues: dict[tuple, list] = {}
    for n in trace.all_nodes():
        if n.kind == "send":
            queues.setdefault(("s", n.rank, n.peer, n.tag), []).append((n.rank, n.id))
        elif n.kind == "recv":
            queues.setdefault(("r", n.peer, n.rank, n.tag), []).append((n.rank, n.id))
    for (side, src, dst, tag), keys in queues.items():
        if side == "s":
            for s, r in zip(keys, queues.get(("r", src, dst, tag), [])):
                pair_of[s], pair_of[r] = r, s
    stream = {r: [key for key in ((r, n.id) for n in trace.nodes[r]) if index[key].kind == "compute"] for r in ranks}
    head = dict.fromkeys(ranks, 0)
    busy = dict.fromkeys(ranks, False)
    ready_compute: set = set()
    arrived: dict[tuple[str, int], list] = {}
    posted: set = set()
    start_of: dict[tuple, float] = {}
    end_of: dict[tuple, float] = {}
    compute = dict.fromkeys(ranks, 0.0)
    calls: list[dict] = []

    def finish(key) -> None:
        end_of[key] = env.now
        for f in followers[key]:
            waiting[f] -= 1
            if waiting[f] == 0:
                ready(f)

    def ready(key) -> None:
        n = index[key]
        start_of.setdefault(key, env.now)
        if n.kind == "compute":
            ready_compute.add(key)
            advance(n.rank)
        elif n.kind == "collective":
            call = call_of[key]
            members = arrived.setdefault(call, [])
            members.append(key)
            if len(members) == len(trace.groups[n.group]):
                launch(call, members)
        else:
            posted.add(key)
            other = pair_of[key]
            if other in posted:
                send, recv = (key, other) if n.kind == "send" else (other, key)
                s = index[send]
                event = sim.network.transfer(gpu_of[s.rank], gpu_of[s.peer], s.nbytes, key=("trace", s.tag),
                                             tag=f"p2p {s.rank}->{s.peer}")
                event.callbacks.append(lambda _e, a=send, b=recv: (finish(a), finish(b)))

    def launch(call, members) -> None:
        group, k = call
        n = index[members[0]]
        if group not in comms:
            comms[group] = Communicator(sim, [gpu_of[r] for r in trace.groups[group]], name=str(group))
        start = env.now
        chosen = algo if algo in ALGORITHMS[n.op] else "auto"  # ops without that algorithm use auto
        done = comms[group].run(n.op, n.nbytes, algo=chosen, label=f"{group}#{k}") if n.nbytes or n.op == "barrier" \
            else env.timeout(0)
        recorded = [index[m].duration for m in members if index[m].duration is not None]

        def ended(_e) -> None:
            size = len(trace.groups[group])
            seconds = env.now - start
            calls.append({"group": group, "call": k, "op": n.op, "ranks": size, "bytes": n.nbytes, "start": start,
                          "end": env.now, "time_s": seconds,
                          "busbw": n.nbytes / seconds * BUSBW_FACTOR[n.op](size) if seconds > 0 and n.nbytes else None,
                          "recorded": max(recorded) if recorded else None})
            for m in members:
                finish(m)

        done.callbacks.append(ended)

    def advance(rank: int) -> None:
        if busy[rank]:
            return
        queue = stream[rank]
        while head[rank] < len(queue) and queue[head[rank]] in end_of:
            head[rank] += 1
        if head[rank] >= len(queue) or queue[head[rank]] not in ready_compute:
            return  # in recorded order: the next compute waits for its dependencies
        key = queue[head[rank]]
        head[rank] += 1
        busy[rank] = True
        seconds = (index[key].duration or 0.0) * scale_compute
        start_of[key] = env.now

        def done(_e, key=key, rank=rank, seconds=seconds) -> None:
            busy[rank] = False
            compute[rank] += seconds
            finish(key)
            advance(rank)

        env.timeout(seconds).callbacks.append(done)

    def begin():
        for key, count in list(waiting.items()):
            if count == 0:
                ready(key)
        yield env.timeout(0)

    sim.process(begin())
    sim.run()
    unfinished = [key for key in index if key not in end_of]
    if unfinished:
        r, i = unfinished[0]
        raise TraceError(f"replay stopped with {len(unfinished)} nodes never run (first: rank {r} node {i}, "
                         f"{index[(r, i)].kind}): its collective or message partner never came", source=trace.source)
    rows = [{"rank": r, "node": i, "kind": n.kind, "name": n.name, "op": n.op, "bytes": n.nbytes,
             "start": start_of[(r, i)], "end": end_of[(r, i)], "recorded": n.duration} for (r, i), n in index.items()]
    timeline = pl.DataFrame(rows, schema=TIMELINE_SCHEMA).sort("rank", "start", "node")
    collectives = pl.DataFrame(calls, schema={"group": pl.Utf8, "call": pl.Int64, "op": pl.Utf8, "ranks": pl.Int64,
                                              "bytes": pl.Int64, "start": pl.Float64, "end": pl.Float64,
                                              "time_s": pl.Float64, "busbw": pl.Float64, "recorded": pl.Float64})
    names = tuple(topo.node_names[g] for g in gpus)
    return ReplayResult(float(env.now), len(ranks), tuple(compute[r] for r in ranks), timeline,
                        collectives.sort("start", "group", "call"), names)


def replayed_trace(trace: Trace, result: ReplayResult) -> Trace:
    """The trace with each node's simulated interval as its recorded start and duration (what netsim
    writes after a replay, so the run can be replayed or compared elsewhere)."""
    times = {(r["rank"], r["node"]): (r["start"], r["end"]) for r in result.timeline.iter_rows(named=True)}
    nodes = {r: tuple(replace(n, start=times[(r, n.id)][0], duration=times[(r, n.id)][1] - times[(r, n.id)][0])
                      for n in trace.nodes[r]) for r in trace.ranks}
    return Trace(nodes, dict(trace.groups), trace.source, "netsim", dict(trace.skipped))


__all__ = ["PLACEMENTS", "ReplayResult", "place", "replay", "replayed_trace", "rescale"]

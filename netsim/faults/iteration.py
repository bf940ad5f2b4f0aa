"""One training iteration of a `JobSpec` on the simulated network, in a given fabric state, with the
telemetry a collective library would expose.

The job's ranks sit on the topology's first GPUs in order; replica r is ranks r*tp .. r*tp + tp - 1.
Every rank computes (stretched on a slow GPU), enters its replica's tensor-parallel all-reduce, then its
shard of the data-parallel all-reduce (shard j: GPU j of every active replica). A collective starts
when its last rank has entered and ends for all of them together (the whole collective has arrived).

Why whole runs of iterations can be skipped: an iteration starts with every rank at the same instant
(the end of the previous one's collectives), so in an unchanged fabric state every iteration is the same
simulation and takes the same time; `IterationCache` simulates each state once and the job advances n
iterations as n times that duration (tests compare this with simulating the iterations back to back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import TopologyError
from netsim.faults.spec import JobSpec
from netsim.sim import Simulation
from netsim.topology import Topology
from netsim.workloads.syncs import SyncPoint


@dataclass(frozen=True)
class State:
    """What makes iterations differ: the active replicas, links down (or routed around), degraded links
    (link id, factor), slow ranks (rank, speed factor)."""

    replicas: tuple[int, ...]
    down: frozenset[int] = frozenset()
    degraded: tuple[tuple[int, float], ...] = ()
    slow: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Call:
    name: str
    ranks: tuple[int, ...]
    enter: tuple[float, ...]  # per rank of `ranks`, seconds from the iteration's start
    exit: float


@dataclass(frozen=True, eq=False)
class IterationRecord:
    """One iteration: its duration, every collective call (who entered when, when it ended), and per
    connection (src rank, dst rank) the bytes moved and the seconds it was moving some (the union of its
    transfers' intervals)."""

    time: float
    calls: tuple[Call, ...]
    connections: dict[tuple[int, int], tuple[int, float]]
    hung: bool = False  # the state cannot run an iteration (a rank lost its only path)


def job_gpus(topo: Topology, job: JobSpec) -> np.ndarray:
    if job.ranks > len(topo.gpus):
        raise TopologyError(f"the job needs {job.ranks} GPUs, the topology {topo.name!r} has {len(topo.gpus)}")
    return topo.gpus[:job.ranks]


def simulate_iteration(topo: Topology, job: JobSpec, state: State, *, routing: str = "ecmp", seed: int = 0,
                       iterations: int = 1) -> IterationRecord:
    """Simulate `iterations` iterations back to back in `state` (1 for the cache; more to check the cache).
    The record holds the last iteration's calls and the connections summed over all of them."""
    gpus = job_gpus(topo, job)
    rank_of = {int(g): r for r, g in enumerate(gpus)}
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    try:
        if state.down:
            sim.network.fail_links(sorted(state.down))
        for link, factor in state.degraded:
            sim.network.degrade_links([link], factor)
        for a in state.replicas:  # every path a collective may take must exist
            for b in state.replicas:
                if a != b:
                    for j in range(job.tp):
                        sim.router.route(int(gpus[a * job.tp + j]), int(gpus[b * job.tp + j]))
    except TopologyError:
        return IterationRecord(float("inf"), (), {}, hung=True)
    env = sim.env
    speed = dict(state.slow)
    ranks = [r * job.tp + j for r in state.replicas for j in range(job.tp)]
    tp_comms = {r: Communicator(sim, gpus[r * job.tp:(r + 1) * job.tp], name=f"tp{r}") for r in state.replicas}
    dp_comms = [Communicator(sim, [gpus[r * job.tp + j] for r in state.replicas], name=f"dp{j}")
                for j in range(job.tp)]
    points: dict[tuple[str, float], tuple[SyncPoint, tuple[int, ...]]] = {}  # (call, iteration start) ->

    def collective(name: str, comm: Communicator, members: tuple[int, ...], nbytes: int, rank: int, start: float):
        """Enter the call: it starts when its last rank has entered and ends for all of them together."""
        if (name, start) not in points:
            points[(name, start)] = (SyncPoint(comm, nbytes, len(members), label=name, algo="auto"), members)
        sync = points[(name, start)][0]
        sync.arrive(rank)
        return sync.done

    def rank_process(rank: int, start: float):
        replica, j = divmod(rank, job.tp)
        yield env.timeout(job.compute_s / speed.get(rank, 1.0))
        if job.tp > 1 and job.tp_bytes:
            members = tuple(range(replica * job.tp, (replica + 1) * job.tp))
            yield collective(f"tp{replica}", tp_comms[replica], members, job.tp_bytes, rank, start)
        members = tuple(r * job.tp + j for r in state.replicas)
        yield collective(f"dp{j}", dp_comms[j], members, -(-job.dp_bytes // job.tp), rank, start)

    def job_process():
        for _ in range(iterations):
            start = env.now
            yield env.all_of([env.process(rank_process(r, start)) for r in ranks])
        ends.append((start, env.now - start))

    ends: list[float] = []
    env.process(job_process())
    try:
        results = sim.run()
    except TopologyError:  # a collective lost its only path (inside a server too): the state hangs
        return IterationRecord(float("inf"), (), {}, hung=True)
    moved: dict[tuple[int, int], int] = {}
    spans: dict[tuple[int, int], list[tuple[float, float]]] = {}
    t = results.transfers
    if len(t):
        names = {name: i for i, name in enumerate(topo.node_names)}
        for src, dst, nbytes, s, e in zip(t["src"].to_list(), t["dst"].to_list(), t["bytes"].to_list(),
                                          t["start"].to_list(), t["end"].to_list()):
            key = (rank_of[names[src]], rank_of[names[dst]])
            moved[key] = moved.get(key, 0) + nbytes
            spans.setdefault(key, []).append((s, e))
    # busy time: the union of the connection's transfer intervals (overlapping transfers count once)
    connections = {k: (moved[k], _union(spans[k])) for k in moved}
    last, duration = ends[-1]
    calls = []
    for (name, start), (sync, members) in sorted(points.items()):
        if start == last:  # the last iteration's calls
            entered = dict(sync.arrivals)
            calls.append(Call(name, members, tuple(entered[m] - start for m in members), sync.done.value - start))
    return IterationRecord(duration, tuple(calls), connections)


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -math.inf
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


@dataclass
class IterationCache:
    """Each fabric state simulated once (see the module docstring)."""

    topo: Topology
    job: JobSpec
    routing: str = "ecmp"
    seed: int = 0
    records: dict[State, IterationRecord] = field(default_factory=dict)

    def __call__(self, state: State) -> IterationRecord:
        if state not in self.records:
            self.records[state] = simulate_iteration(self.topo, self.job, state, routing=self.routing, seed=self.seed)
        return self.records[state]


def connection_links(topo: Topology, job: JobSpec, routing: str = "ecmp", seed: int = 0
                     ) -> dict[tuple[int, int], frozenset[int]]:
    """The links each connection (src rank, dst rank) of the job's collectives uses on the healthy fabric
    (the detector's map from a latency-matrix cell to links)."""
    gpus = job_gpus(topo, job)
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    out = {}
    for a in range(job.ranks):
        for b in range(job.ranks):
            if a == b:
                continue
            same = a // job.tp == b // job.tp
            if not same and a % job.tp != b % job.tp:
                continue  # no collective of the job connects them
            key = ("", f"tp{a // job.tp}") if same else ("", f"dp{a % job.tp}")
            out[(a, b)] = frozenset(l for path, _w in sim.router.paths(int(gpus[a]), int(gpus[b]), key) for l in path)
    return out


__all__ = ["Call", "IterationCache", "IterationRecord", "State", "connection_links", "job_gpus",
           "simulate_iteration"]

"""One training iteration of a `JobSpec` on the simulated network, in a given fabric state, with the
telemetry a collective library would expose.

The job's ranks sit on the topology's first GPUs in order; replica r is ranks r*tp .. r*tp + tp - 1.
Every rank computes (stretched on a slow GPU), enters its replica's tensor-parallel all-reduce, then its
shard of the data-parallel all-reduce (shard j: GPU j of every active replica). A collective starts
when its last rank has entered and ends for all of them together (the whole collective has arrived).
`iteration_program` writes this as a `netsim.program.Program`, which the program executor runs.

Why whole runs of iterations can be skipped: an iteration starts with every rank at the same instant
(the end of the previous one's collectives), so in an unchanged fabric state every iteration is the same
simulation and takes the same time; `IterationCache` simulates each state once and the job advances n
iterations as n times that duration (tests compare this with simulating the iterations back to back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from netsim.errors import TopologyError
from netsim.faults.spec import JobSpec
from netsim.collectives import Communicator
from netsim.sim import Simulation
from netsim.topology import Topology
from netsim.program import Node, Program, run_program


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
    program = iteration_program(job, state, iterations)
    try:
        run = run_program(sim, program, {r: int(gpus[r]) for r in program.ranks})
        results = sim.run(run.done)
    except TopologyError:  # a collective lost its only path (inside a server too): the state hangs
        return IterationRecord(float("inf"), (), {}, hung=True)
    moved: dict[tuple[int, int], int] = {}
    spans: dict[tuple[int, int], list[tuple[float, float]]] = {}
    t = results.transfers
    if len(t):
        names = {name: i for i, name in enumerate(topo.node_names)}
        for src, dst, nbytes, s, e in zip(t["src"].to_list(), t["dst"].to_list(), t["size_B"].to_list(),
                                          t["start_s"].to_list(), t["end_s"].to_list()):
            key = (rank_of[names[src]], rank_of[names[dst]])
            moved[key] = moved.get(key, 0) + nbytes
            spans.setdefault(key, []).append((s, e))
    # busy time: the union of the connection's transfer intervals (overlapping transfers count once)
    connections = {k: (moved[k], _union(spans[k])) for k in moved}
    result = run.result()
    ends = result.calls.filter(pl.col("group") == ITERATION).sort("call")["end_s"].to_list()
    start = ends[-2] if len(ends) > 1 else 0.0
    entered = {(r["stream"].removeprefix("group:"), r["rank"]): r["start_s"] for r in result.nodes.filter(
        (pl.col("kind") == "collective") & (pl.col("node") >= NODES_PER_ITERATION * (iterations - 1))
    ).iter_rows(named=True)}
    calls = []
    for row in result.calls.filter((pl.col("group") != ITERATION) & (pl.col("call") == iterations - 1)).sort(
            "group").iter_rows(named=True):
        members = program.groups[row["group"]]
        calls.append(Call(row["group"], members, tuple(entered[(row["group"], m)] - start for m in members),
                          row["end_s"] - start))
    return IterationRecord(ends[-1] - start, tuple(calls), connections)


ITERATION = "iteration"  # the group whose empty call ends an iteration (every rank starts the next one together)
NODES_PER_ITERATION = 4


def iteration_program(job: JobSpec, state: State, iterations: int = 1) -> Program:
    """The job's `iterations` iterations in `state` as a `Program` of its active ranks (see the module
    docstring): per rank and iteration, compute (stretched on a slow GPU), the replica's tensor-parallel
    all-reduce, its shard of the data-parallel all-reduce, then an empty collective of every rank that
    ends the iteration (the next one starts when the last rank is done)."""
    speed = dict(state.slow)
    tp = job.tp
    ranks = [r * tp + j for r in state.replicas for j in range(tp)]
    use_tp = tp > 1 and job.tp_bytes
    groups = {f"dp{j}": tuple(r * tp + j for r in state.replicas) for j in range(tp)}
    if use_tp:
        groups.update({f"tp{r}": tuple(range(r * tp, (r + 1) * tp)) for r in state.replicas})
    groups[ITERATION] = tuple(ranks)
    nodes = {}
    for rank in ranks:
        replica, j = divmod(rank, tp)
        out: list[Node] = []
        for _ in range(iterations):
            base = len(out)
            out.append(Node(rank, base, "compute", "compute", duration=job.compute_s / speed.get(rank, 1.0),
                            deps=(base - 1,) if base else ()))
            if use_tp:
                out.append(Node(rank, base + 1, "collective", op="all_reduce", nbytes=job.tp_bytes,
                                group=f"tp{replica}", deps=(base,)))
            else:  # keeps four nodes per iteration
                out.append(Node(rank, base + 1, "compute", "no tensor parallelism", duration=0.0, deps=(base,)))
            out.append(Node(rank, base + 2, "collective", op="all_reduce", nbytes=-(-job.dp_bytes // tp),
                            group=f"dp{j}", deps=(base + 1,)))
            out.append(Node(rank, base + 3, "collective", op="all_reduce", nbytes=0, group=ITERATION, deps=(base + 2,)))
        nodes[rank] = tuple(out)
    return Program(nodes, groups, source="fault-study iteration")


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
    routes: dict[frozenset[int], dict[tuple[int, int], frozenset[int]]] = field(default_factory=dict)

    def __call__(self, state: State) -> IterationRecord:
        if state not in self.records:
            self.records[state] = simulate_iteration(self.topo, self.job, state, routing=self.routing, seed=self.seed)
        return self.records[state]

    def paths(self, down: frozenset[int] = frozenset()) -> dict[tuple[int, int], frozenset[int]]:
        """`connection_links` as this cache's iterations are routed (its policy and seed), links in `down`
        left out."""
        if down not in self.routes:
            self.routes[down] = connection_links(self.topo, self.job, self.routing, self.seed, down)
        return self.routes[down]


def connection_links(topo: Topology, job: JobSpec, routing: str = "ecmp", seed: int = 0,
                     down: frozenset[int] = frozenset()) -> dict[tuple[int, int], frozenset[int]]:
    """The links each connection (src rank, dst rank) of the job's collectives uses, routed as the
    iteration's simulation routes them (same policy and seed, links in `down` left out): the detector's map
    from a latency-matrix cell to links. Each collective of the healthy iteration is planned as the program
    executor plans it (one communicator per group, named after it), and each of its transfers routed with the
    transfer's own key (the communicator's key, plus the channel where the schedule has several): so a cell
    holds exactly the connections a collective opens (a ring's neighbours, not every pair of its group), and
    all the paths its transfers take (one per flow under ECMP or a plan, every equal-cost path under spray)."""
    gpus = job_gpus(topo, job)
    rank_of = {int(g): r for r, g in enumerate(gpus)}
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    if down:
        sim.network.fail_links(sorted(down))
    program = iteration_program(job, State(tuple(range(job.replicas))))
    calls = {(x.group, x.op, x.nbytes) for nodes in program.nodes.values() for x in nodes
             if x.kind == "collective" and x.nbytes > 0}
    out: dict[tuple[int, int], set[int]] = {}
    for group, op, nbytes in sorted(calls):
        members = program.groups[group]
        if len(members) < 2:
            continue
        plan = Communicator(sim, [int(gpus[m]) for m in members], name=str(group)).plan(op, nbytes)
        schedule = plan.schedule
        node_of = np.asarray(schedule.node_of, dtype=np.int64)
        flows = set()
        for step in schedule.steps:
            for v, w in zip(np.asarray(step.src).tolist(), np.asarray(step.dst).tolist()):
                channel = () if schedule.channel_of is None else (int(schedule.channel_of[v]),)
                flows.add((int(node_of[v]), int(node_of[w]), channel))
        for a, b, channel in sorted(flows):
            if a == b:
                continue
            links = out.setdefault((rank_of[a], rank_of[b]), set())
            links.update(l for path, w in sim.router.paths(a, b, plan.key + channel) if w > 0 for l in path)
    return {k: frozenset(v) for k, v in out.items()}


__all__ = ["Call", "IterationCache", "IterationRecord", "State", "connection_links", "iteration_program", "job_gpus",
           "simulate_iteration"]

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
    except TopologyError:
        return IterationRecord(float("inf"), (), {}, hung=True)
    program = iteration_program(job, state, iterations)
    try:
        run = run_program(sim, program, {r: int(gpus[r]) for r in program.ranks})
        results = sim.run(run.done)
    except TopologyError:  # a collective lost its only path (inside a server too): the state hangs
        return IterationRecord(float("inf"), (), {}, hung=True)
    connections = _connections(results.transfers, topo, rank_of)
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


def _connections(transfers: pl.DataFrame, topo: Topology, rank_of: dict[int, int]
                 ) -> dict[tuple[int, int], tuple[int, float]]:
    """Per connection (src rank, dst rank): the bytes its transfers moved and its busy time, the union of
    their [start, end] intervals (overlapping transfers count once), computed column-wise: sorted by start,
    an interval adds what reaches past the latest end before it."""
    if not len(transfers):
        return {}
    names = {name: i for i, name in enumerate(topo.node_names)}
    node_rank = {name: rank_of[i] for name, i in names.items() if i in rank_of}
    t = (transfers.select(pl.col("src").replace_strict(node_rank, return_dtype=pl.Int64).alias("a"),
                          pl.col("dst").replace_strict(node_rank, return_dtype=pl.Int64).alias("b"),
                          "size_B", "start_s", "end_s")
         .sort("a", "b", "start_s", "end_s")
         .with_columns(pl.col("end_s").cum_max().shift(1).over("a", "b").alias("before")))
    busy = pl.max_horizontal(pl.col("end_s") - pl.max_horizontal("start_s", pl.col("before").fill_null(-math.inf)),
                             pl.lit(0.0))
    out = t.group_by("a", "b").agg(pl.col("size_B").sum(), busy.sum().alias("busy"))
    return {(a, b): (n, s) for a, b, n, s in zip(out["a"].to_list(), out["b"].to_list(), out["size_B"].to_list(),
                                                 out["busy"].to_list())}


@dataclass
class IterationCache:
    """Each fabric state simulated once (see the module docstring)."""

    topo: Topology
    job: JobSpec
    routing: str = "ecmp"
    seed: int = 0
    records: dict[State, IterationRecord] = field(default_factory=dict)
    _links: dict | None = field(default=None, repr=False)

    def __call__(self, state: State) -> IterationRecord:
        if state not in self.records:
            self.records[state] = simulate_iteration(self.topo, self.job, state, routing=self.routing, seed=self.seed)
        return self.records[state]

    @property
    def healthy(self) -> IterationRecord:
        """The iteration with every replica and no fault."""
        return self(State(tuple(range(self.job.replicas))))

    def connections(self) -> list[tuple[int, int]]:
        """The connections (src rank, dst rank) a healthy iteration opens, in order."""
        return sorted(self.healthy.connections)

    def links(self) -> dict[tuple[int, int], frozenset[int]]:
        """`connection_links` of the connections a healthy iteration opens (computed once)."""
        if self._links is None:
            self._links = connection_links(self.topo, self.job, self.routing, self.seed, self.connections())
        return self._links


def connection_links(topo: Topology, job: JobSpec, routing: str = "ecmp", seed: int = 0,
                     pairs=None) -> dict[tuple[int, int], frozenset[int]]:
    """The links each connection (src rank, dst rank) of the job's collectives uses on the healthy fabric
    (the detector's map from a latency-matrix cell to links): of `pairs` (the connections an iteration
    really opens: `IterationCache.connections()`), or of every pair of ranks that share a collective."""
    gpus = job_gpus(topo, job)
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    if pairs is None:
        pairs = [(a, b) for a in range(job.ranks) for b in range(job.ranks)
                 if a != b and (a // job.tp == b // job.tp or a % job.tp == b % job.tp)]
    out = {}
    for a, b in pairs:
        key = ("", f"tp{a // job.tp}") if a // job.tp == b // job.tp else ("", f"dp{a % job.tp}")
        out[(a, b)] = frozenset(l for path, _w in sim.router.paths(int(gpus[a]), int(gpus[b]), key) for l in path)
    return out


__all__ = ["Call", "IterationCache", "IterationRecord", "State", "connection_links", "iteration_program", "job_gpus",
           "simulate_iteration"]

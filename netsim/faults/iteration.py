"""One training iteration of a `JobSpec` on the simulated network, in a given fabric state, with the
telemetry a collective library would expose.

The job's ranks sit on the topology's first GPUs in order (rank of GPU j of stage s of replica r:
``(r * pp + s) * tp + j``). Every rank computes (stretched on a slow GPU; with a pipeline, GPipe's
microbatches with activations and gradients sent between neighbouring stages), enters its stage's
tensor-parallel all-reduce, then its shard of the data-parallel all-reduce (shard j: GPU j of the same
stage of every active replica). A collective starts
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
from netsim.faults.spec import PIPE_FORWARD, PIPE_BACKWARD, JobSpec
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
        (pl.col("kind") == "collective") & (pl.col("node") >= nodes_per_iteration(job) * (iterations - 1))
    ).iter_rows(named=True)}
    calls = []
    for row in result.calls.filter((pl.col("group") != ITERATION) & (pl.col("call") == iterations - 1)).sort(
            "group").iter_rows(named=True):
        members = program.groups[row["group"]]
        calls.append(Call(row["group"], members, tuple(entered[(row["group"], m)] - start for m in members),
                          row["end_s"] - start))
    return IterationRecord(ends[-1] - start, tuple(calls), connections)


ITERATION = "iteration"  # the group whose empty call ends an iteration (every rank starts the next one together)


def nodes_per_iteration(job: JobSpec) -> int:
    """Program nodes per rank and iteration (the same for every rank: a stage without a neighbour on one
    side has an empty compute node where the transfer would be)."""
    return (6 * job.microbatches if job.pp > 1 else 1) + 3


def iteration_program(job: JobSpec, state: State, iterations: int = 1) -> Program:
    """The job's `iterations` iterations in `state` as a `Program` of its active ranks (see the module
    docstring). Per rank and iteration: compute (stretched on a slow GPU) — with a pipeline, GPipe's
    schedule of it, below —, the stage's tensor-parallel all-reduce, its shard of the data-parallel
    all-reduce, then an empty collective of every rank that ends the iteration (the next one starts when
    the last rank is done). A pipeline of 3 stages, 2 microbatches (f: forward, b: backward; each arrow
    one transfer of `pp_bytes` on the rank's connection to its neighbour)::

        stage 0   f0 f1 ─────────────────────► b0 b1 ─► AR
                    └─►   └─►                ▲    ▲
        stage 1       f0 f1 ──────────► b0 b1 ─► AR
                        └─►  └─►       ▲    ▲
        stage 2           f0 f1 b0 b1 ─┘────┘ ─► AR

    A stage's forward of microbatch i waits for its activations, its backward for the gradients from the
    next stage; the transfers overlap the next microbatch's compute."""
    speed = dict(state.slow)
    tp, pp = job.tp, job.pp
    ranks = [job.rank(r, s, j) for r in state.replicas for s in range(pp) for j in range(tp)]
    use_tp = tp > 1 and job.tp_bytes
    groups = {job.dp_group(s, j): tuple(job.rank(r, s, j) for r in state.replicas) for s in range(pp) for j in range(tp)}
    if use_tp:
        groups.update({job.tp_group(r, s): tuple(job.rank(r, s, j) for j in range(tp))
                       for r in state.replicas for s in range(pp)})
    groups[ITERATION] = tuple(ranks)
    shard = -(-job.dp_bytes // (tp * pp))
    nodes = {}
    for rank in ranks:
        replica, stage, j = job.replica_of(rank), job.stage_of(rank), rank % tp
        stretch = 1.0 / speed.get(rank, 1.0)
        out: list[Node] = []

        def add(kind: str, deps: tuple[int, ...], **kw) -> int:
            out.append(Node(rank, len(out), kind, deps=deps, **kw))
            return len(out) - 1

        def idle(deps: tuple[int, ...]) -> int:
            return add("compute", deps, name="no transfer", duration=0.0)

        last = None
        for _ in range(iterations):
            start = (last,) if last is not None else ()
            if pp == 1:
                prev = add("compute", start, name="compute", duration=job.compute_s * stretch)
                sends = ()
            else:
                prev, sends = _pipeline(job, rank, stage, stretch, start, add, idle)
            if use_tp:
                prev = add("collective", (prev,), op="all_reduce", nbytes=job.tp_bytes, group=job.tp_group(replica, stage))
            else:  # keeps the node count per iteration
                prev = add("compute", (prev,), name="no tensor parallelism", duration=0.0)
            prev = add("collective", (prev,), op="all_reduce", nbytes=shard, group=job.dp_group(stage, j))
            last = add("collective", (prev, *sends), op="all_reduce", nbytes=0, group=ITERATION)
        nodes[rank] = tuple(out)
    return Program(nodes, groups, source="fault-study iteration")


def _pipeline(job: JobSpec, rank: int, stage: int, stretch: float, start: tuple, add, idle):
    """GPipe for one rank and iteration (see `iteration_program`): per microbatch a forward (receive,
    compute, send on) and a backward (the same, the other way), 6 nodes each; returns the last compute
    node and the last send of each direction (the iteration ends when they are done)."""
    m = job.microbatches
    forward, backward = job.compute_s * stretch / (3 * m), 2 * job.compute_s * stretch / (3 * m)
    prev_rank, next_rank = (rank - job.tp if stage > 0 else None), (rank + job.tp if stage < job.pp - 1 else None)
    comp = start
    sends = []
    for phase, seconds, source, dest, tag in (("forward", forward, prev_rank, next_rank, PIPE_FORWARD),
                                             ("backward", backward, next_rank, prev_rank, PIPE_BACKWARD)):
        send = None
        for _ in range(m):
            got = (add("recv", comp, nbytes=job.pp_bytes, peer=source, tag=tag) if source is not None
                   else idle(comp))
            comp = (add("compute", (got,), name=phase, duration=seconds),)
            send = (add("send", comp, nbytes=job.pp_bytes, peer=dest, tag=tag) if dest is not None else idle(comp))
        sends.append(send)
    return comp[0], tuple(sends)


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
    routes: dict[frozenset[int], dict[tuple[int, int], frozenset[int]]] = field(default_factory=dict)
    _flows: list | None = field(default=None, repr=False)

    def __call__(self, state: State) -> IterationRecord:
        if state not in self.records:
            self.records[state] = simulate_iteration(self.topo, self.job, state, routing=self.routing, seed=self.seed)
        return self.records[state]

    def paths(self, down: frozenset[int] = frozenset()) -> dict[tuple[int, int], frozenset[int]]:
        """`connection_links` as this cache's iterations are routed (its policy and seed), links in `down`
        left out (the connections planned once, routed again for each set of links down)."""
        if down not in self.routes:
            if self._flows is None:
                self._flows = connection_flows(self.topo, self.job, self.routing, self.seed)
            self.routes[down] = connection_links(self.topo, self.job, self.routing, self.seed, down, self._flows)
        return self.routes[down]


def connection_flows(topo: Topology, job: JobSpec, routing: str = "ecmp", seed: int = 0
                     ) -> list[tuple[int, int, tuple]]:
    """The flows of a healthy iteration: (src GPU, dst GPU, route key) of each transfer the job's collectives
    and pipeline make, once each, in order. Each collective is planned as the program executor plans it (one
    communicator per group, named after it; a plan does not depend on which links are down), each transfer
    keyed as it is routed (the communicator's key, plus the channel where the schedule has several)."""
    gpus = job_gpus(topo, job)
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    program = iteration_program(job, State(tuple(range(job.replicas))))
    calls = {(x.group, x.op, x.nbytes) for nodes in program.nodes.values() for x in nodes
             if x.kind == "collective" and x.nbytes > 0}
    out: list[tuple[int, int, tuple]] = []
    for group, op, nbytes in sorted(calls):
        members = program.groups[group]
        if len(members) < 2:
            continue
        plan = Communicator(sim, [int(gpus[m]) for m in members], name=str(group)).plan(op, nbytes)
        schedule = plan.schedule
        node_of = np.asarray(schedule.node_of, dtype=np.int64)
        channels = None if schedule.channel_of is None else np.asarray(schedule.channel_of, dtype=np.int64)
        flows = set()
        for step in schedule.steps:
            src, dst = np.asarray(step.src), np.asarray(step.dst)
            a, b = node_of[src], node_of[dst]
            c = channels[src] if channels is not None else np.full(len(src), -1)
            flows.update(zip(a.tolist(), b.tolist(), c.tolist()))
        out += [(a, b, plan.key + (() if c < 0 else (c,))) for a, b, c in sorted(flows) if a != b]
    for a in range(job.ranks):  # a pipeline's transfers between neighbouring stages
        for b in (a - job.tp, a + job.tp):
            key = job.route_key(a, b) if 0 <= b < job.ranks else None
            if key is not None and key[0] == "trace":
                out.append((int(gpus[a]), int(gpus[b]), key))
    return out


def connection_links(topo: Topology, job: JobSpec, routing: str = "ecmp", seed: int = 0,
                     down: frozenset[int] = frozenset(), flows: list[tuple[int, int, tuple]] | None = None
                     ) -> dict[tuple[int, int], frozenset[int]]:
    """The links each connection (src rank, dst rank) of the job's collectives uses, routed as the
    iteration's simulation routes them (same policy and seed, links in `down` left out): the detector's map
    from a latency-matrix cell to links. Its flows are `connection_flows` (computed here unless given): so a
    cell holds exactly the connections a collective opens (a ring's neighbours, not every pair of its
    group), and all the paths its transfers take (one per flow under ECMP or a plan, every equal-cost path
    under spray)."""
    gpus = job_gpus(topo, job)
    rank_of = {int(g): r for r, g in enumerate(gpus)}
    sim = Simulation(topo, routing=routing, seed=seed, record_links=False)
    if down:
        sim.network.fail_links(sorted(down))
    out: dict[tuple[int, int], set[int]] = {}
    for a, b, key in connection_flows(topo, job, routing, seed) if flows is None else flows:
        links = out.setdefault((rank_of[a], rank_of[b]), set())
        links.update(l for path, w in sim.router.paths(a, b, key) if w > 0 for l in path)
    return {k: frozenset(v) for k, v in out.items()}


__all__ = ["Call", "IterationCache", "IterationRecord", "State", "connection_flows", "connection_links",
           "iteration_program", "job_gpus", "nodes_per_iteration", "simulate_iteration"]

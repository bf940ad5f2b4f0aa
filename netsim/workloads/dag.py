"""One per-layer training DAG behind every schedule: DDP, DiLoCo, Streaming DiLoCo, CO2, NoLoCo, gossip.

Per worker and step s, per layer l, three compute nodes run on the worker's one compute stream:
F(l), B_act(l) (the gradient w.r.t. the layer's input; none for layer 0) and B_w(l) (w.r.t. its
weights), with the durations of the `ComputeModel`. Communication nodes ("units": a layer, a DDP bucket
or a whole model, values that travel together) are released by the B_w node of their lowest layer (the
last of theirs the backward reaches) and gate the forward of that layer ``delay + 1`` steps later — with
``delay`` (tau) >= 1, the first forward of that step (Streaming DiLoCo's block-receive, see `TrainingDag`)::

    step s     F0 F1 F2 F3 | Ba3 Bw3 Ba2 Bw2 Ba1 Bw1 Bw0
                                  |       |       |    |   release: unit {3} .. {0} (if due at step s)
                                  v       v       v    v
    network              [ AR{3} ][ AR{2} ][ AR{1} ][ AR{0} ]     one stream: FIFO in release order
                                                       |      ...
    step s+1      F0 <-- waits for AR{0} ; F1 <-- AR{1} ; ...    (tau = 0: each layer for its own unit)
    step s+1+tau  F0 <-- waits for AR{0} .. AR{3}                   (tau >= 1: the whole step)

- ``all_reduce`` units: when every worker has released a unit, the group's collective stream (one per
  communicator, as a collective library's single stream) all-reduces it after the units released before
  it: reductions leave in release order (FIFO), one at a time.
- ``send`` units (gossip, NoLoCo): each worker sends the unit to its partners of that round; the sends
  of one connection (sender, receiver) leave in release order; the receiver's forward of the unit's
  lowest layer waits for the unit from every worker that sends to it that round.

The DAG is a `netsim.program.Program` (`dag_program`), run by the program executor. Compute between
communication is one node, in closed form: a worker's program has a node only at a release or a gate,
so a step without either costs nothing (a DiLoCo run costs nodes per sync, not per step). The run ends
when every worker has finished its last step and every unit (and an optional final merge) has arrived:
the final drain is part of the wall time.

Each method's module turns its rules into a `TrainingDag` (`netsim.workloads.ddp.ddp`,
`netsim.workloads.diloco.streaming_diloco` — DiLoCo is F = 1, tau = 0; CO2 is F = 1, tau = H - 1 —
and `netsim.workloads.gossip.gossip` for D-SGD and NoLoCo); `run_dag` runs one on a communicator (or on
`netsim.network.ring_mesh`, the exact ring shortcut, which then runs the all-reduces) and returns a
`TrainingRun`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.errors import ConfigError
from netsim.program import Node, Program, run_program
from netsim.workloads.compute import ComputeModel, check_jitter, jitter_factors
from netsim.workloads.limits import factors, integer

EXCHANGES = ("all_reduce", "send")


@dataclass(frozen=True, eq=False)
class TrainingDag:
    """A schedule as the executor reads it.

    units: layer groups whose values travel together; unit_bytes: the bytes of each (what one worker puts
    into the collective, or sends to each partner). releases: step (1-based) -> units released by that
    step's backward. delay: tau; a unit released at step s gates step s + 1 + tau: with tau = 0 the forward
    of the unit's own layer (the layers below it may run first), with tau >= 1 the step's first forward —
    Streaming DiLoCo's Algorithm 2 sends a fragment after inner step s and block-receives it after step
    s + tau, so its communication overlaps the rest of step s's backward and the tau steps after it.
    exchange: ``all_reduce`` (every worker, one collective per unit) or ``send`` (point to point).
    partners: for ``send``, step -> per worker the workers it sends to. final_merge: bytes of one
    all-reduce after the last step (0: none).
    """

    method: str
    steps: int
    units: tuple[tuple[int, ...], ...]
    unit_bytes: tuple[int, ...]
    releases: dict[int, tuple[int, ...]]
    delay: int = 0
    exchange: str = "all_reduce"
    partners: dict[int, list[list[int]]] = field(default_factory=dict)
    final_merge: int = 0

    def __post_init__(self) -> None:
        integer(self.steps, "steps", lo=1)
        integer(self.delay, "overlap", lo=0)
        if self.exchange not in EXCHANGES:
            raise ConfigError(f"expected one of {', '.join(EXCHANGES)}, got {self.exchange!r}", field="exchange")
        if len(self.units) != len(self.unit_bytes) or any(not u for u in self.units):
            raise ConfigError("needs one byte count per non-empty unit", field="units")
        for step, units in self.releases.items():
            if not 1 <= step <= self.steps or any(not 0 <= u < len(self.units) for u in units):
                raise ConfigError(f"step {step} releases units outside the schedule", field="releases")
            if self.exchange == "send" and step not in self.partners:
                raise ConfigError(f"step {step} releases sends but names no partners", field="partners")

    def release_order(self, step: int) -> list[int]:
        """Units released at `step`, in the order the backward releases them (highest lowest-layer first)."""
        return sorted(self.releases.get(step, ()), key=lambda u: -min(self.units[u]))

    def step_bytes(self) -> int:
        """The most bytes one worker releases in one step (per partner, for sends)."""
        return max((sum(self.unit_bytes[u] for u in units) for units in self.releases.values()), default=0)


@dataclass(frozen=True)
class SyncRecord:
    """One communication node as it ran: a unit's all-reduce (src = dst = -1) or one send."""

    step: int  # the step whose backward released it (0: the final merge)
    unit: int  # -1: the final merge
    nbytes: int
    src: int
    dst: int
    released: float  # the instant the last participant released it
    start: float  # the instant it left (after the units released before it on its stream or connection)
    end: float


@dataclass(frozen=True)
class TrainingRun:
    """What one run of a `TrainingDag` did. Per worker: compute seconds and straggler wait — per sync, how
    much later than this worker the slowest participant released it (for sends: the slowest of the workers
    sending to it), summed: the wait the sync costs at the gate that needs it (nothing if no gate does);
    per communication node a `SyncRecord`."""

    method: str
    workers: int
    steps: int
    wall_s: float  # until the last worker finished and every unit arrived
    compute_s: tuple[float, ...]
    wait_s: tuple[float, ...]
    syncs: tuple[SyncRecord, ...]
    events: int  # program nodes of one worker (compute stretches, releases, gates' receives): the run's cost

    @property
    def utilization(self) -> float:
        """Mean over workers of compute / wall."""
        return float(np.mean(np.asarray(self.compute_s) / self.wall_s)) if self.wall_s > 0 else 1.0


# ---- the program ------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Marks:
    """Where a worker's syncs sit in its program (node ids on the worker's first rank)."""

    anchor: dict = field(default_factory=dict)  # (step, unit) -> the compute node whose end is the release
    calls: dict = field(default_factory=dict)  # (step, unit) -> the unit's collective call number on the group
    sends: dict = field(default_factory=dict)  # (step, unit, peer) -> the send node (per shard: same id)
    last: dict = field(default_factory=dict)  # step -> the anchor of the step's last release
    merge: int = -1  # the final merge's call number


def dag_program(model: ComputeModel, dag: TrainingDag, workers: int, factor: list[np.ndarray], *, shards: int = 1,
                group: str = "workers", shard_groups: tuple[str, ...] = ()) -> tuple[Program, list[_Marks]]:
    """`_dag_program`, remembered for the last few distinct arguments (a sweep runs the same DAG on many
    fabrics, and the program does not depend on the fabric)."""
    key = (model.layers, model.step_time, model.params, tuple(model.layer_weights), model.forward_share, dag.method,
           dag.steps, tuple(map(tuple, dag.units)), tuple(dag.unit_bytes),
           tuple(sorted((t, tuple(u)) for t, u in dag.releases.items())), dag.delay, dag.exchange,
           tuple(sorted((t, tuple(map(tuple, p))) for t, p in dag.partners.items())), dag.final_merge,
           workers, tuple(np.asarray(f, dtype=np.float64).tobytes() for f in factor), shards, group,
           tuple(shard_groups))
    if key not in _PROGRAMS:
        if len(_PROGRAMS) >= 8:
            del _PROGRAMS[next(iter(_PROGRAMS))]
        _PROGRAMS[key] = _dag_program(model, dag, workers, factor, shards=shards, group=group,
                                      shard_groups=shard_groups)
    return _PROGRAMS[key]


_PROGRAMS: dict = {}  # dag_program's key -> (program, marks), the last few (a dict keeps insertion order)


def _dag_program(model: ComputeModel, dag: TrainingDag, workers: int, factor: list[np.ndarray], *, shards: int = 1,
                 group: str = "workers", shard_groups: tuple[str, ...] = ()) -> tuple[Program, list[_Marks]]:
    """`dag` on `workers` workers as a `Program` (see the module docstring): rank w * shards + j is shard j of
    worker w (one GPU per worker: shards = 1); `factor[w]` the per-step slowdowns of worker w.

    Per rank, compute between communication is one node (closed form: a stretch of forward and backward
    layers); each released unit is an all-reduce on the group (shard j: on `shard_groups[j]`, its share of
    the bytes) or a send to each partner (tag: unit x shards + shard; received at the forward that needs
    it); a gate is a dependency of the next compute on the unit's end. With shards, a unit ends for a
    worker when all its shards have (an empty call of the worker's GPUs: ``worker{w}``), and a worker's
    next unit starts after that. The final merge, if any, follows each rank's last node and sends."""
    fwd = model.forward()
    b_act, b_w = model.backward_nodes()
    f_cum = np.concatenate([[0.0], np.cumsum(fwd)])  # forward time before layer l
    f_total = float(f_cum[-1])
    bw_end = np.cumsum((b_act + b_w)[::-1])[::-1]  # from the backward's start to the end of B_w(l)
    b_total = float(bw_end[0])
    order = {t: dag.release_order(t) for t in dag.releases}
    gates: dict[int, list[tuple[int, int, int]]] = {}  # step -> [(layer, release step, unit)], by layer
    for t, us in order.items():
        for u in us:
            need = t + 1 + dag.delay
            if need <= dag.steps:  # tau = 0: the unit's own layer waits; tau >= 1: the whole step (block-receive)
                gates.setdefault(need, []).append((0 if dag.delay > 0 else min(dag.units[u]), t, u))
    for g in gates.values():
        g.sort()
    senders: dict[int, list[list[int]]] = {}  # step -> per worker, the workers that send to it
    if dag.exchange == "send":
        for t in order:
            senders[t] = [[] for _ in range(workers)]
            for w, peers in enumerate(dag.partners[t]):
                for peer in peers:
                    senders[t][peer].append(w)
    k = shards
    groups = {group: tuple(range(0, workers * k, k))} if k == 1 else \
        {name: tuple(w * k + j for w in range(workers)) for j, name in enumerate(shard_groups)}
    if k > 1:
        groups.update({f"worker{w}": tuple(range(w * k, (w + 1) * k)) for w in range(workers)})
    marks = [_Marks() for _ in range(workers)]
    nodes: dict[int, tuple[Node, ...]] = {}
    for w in range(workers):
        for j in range(k):
            nodes[w * k + j] = _worker_nodes(w, j, k, dag, factor[w], f_cum, f_total, bw_end, b_total, order, gates,
                                             senders, group if k == 1 else shard_groups[j], marks[w] if j == 0 else None)
    return Program(nodes, groups, source=dag.method, format="training dag"), marks


def _worker_nodes(w, j, k, dag, factor, f_cum, f_total, bw_end, b_total, order, gates, senders, group,
                  marks) -> tuple[Node, ...]:
    """Rank w * k + j's nodes (see `dag_program`); `marks` (shard 0 only) records where its syncs are."""
    rank = w * k + j
    out: list[Node] = []
    pending: list[int] = []  # what the next compute waits for (gates)
    state = {"compute": None, "unit": None, "calls": 0, "joins": 0}
    last_send: dict[int, int] = {}

    def add(**kw) -> int:
        out.append(Node(rank, len(out), **kw))
        return len(out) - 1

    def compute(seconds: float, force: bool = False) -> None:
        if seconds > 0 or pending or force or state["compute"] is None:
            deps = tuple(pending) + ((state["compute"],) if state["compute"] is not None else ())
            state["compute"] = add(kind="compute", name="compute", duration=seconds, deps=deps)
            pending.clear()

    def share(nbytes: int) -> int:
        return nbytes // k + (1 if j < nbytes % k else 0)

    def join(deps: tuple[int, ...]) -> int:
        state["joins"] += 1
        return add(kind="collective", name="unit done", op="all_reduce", nbytes=0, group=f"worker{w}", deps=deps)

    def receive(t: int, u: int) -> int:
        """The node whose end is unit (t, u) having arrived from every sender (posted now: recvs wait for
        nothing but the data)."""
        recvs = tuple(add(kind="recv", name=f"unit{u}@{t}", nbytes=share(dag.unit_bytes[u]), peer=src * k + j,
                          tag=u * k + j) for src in senders[t][w])
        if k > 1 and recvs:
            return join(recvs)
        return recvs[-1] if len(recvs) == 1 else (add(kind="compute", name="received", duration=0.0, deps=recvs)
                                                  if recvs else -1)

    unit_end: dict[tuple[int, int], int] = {}
    debt = 0.0
    for s in range(1, dag.steps + 1):
        f = float(factor[s - 1])
        pos = 0
        for layer, t, u in gates.get(s, ()):
            debt += float(f_cum[layer] - f_cum[pos]) * f
            pos = layer
            compute(debt)
            debt = 0.0
            end = unit_end.pop((t, u)) if dag.exchange == "all_reduce" else receive(t, u)
            if end >= 0:
                pending.append(end)
        debt += (f_total - float(f_cum[pos])) * f
        done = 0.0
        for u in order.get(s, ()):
            at = float(bw_end[min(dag.units[u])]) * f
            debt += at - done
            done = at
            compute(debt, force=bool(pending))
            debt = 0.0
            anchor = state["compute"]
            if marks is not None:
                marks.anchor[(s, u)] = anchor
                marks.last[s] = anchor
            if dag.exchange == "all_reduce":
                deps = (anchor,) + ((state["unit"],) if state["unit"] is not None else ())
                node = add(kind="collective", name=f"{dag.method}@{s}/unit{u}", op="all_reduce",
                           nbytes=share(dag.unit_bytes[u]), group=group, deps=deps, algo="ring")
                if marks is not None:
                    marks.calls[(s, u)] = state["calls"]
                state["calls"] += 1
                end = join((node,)) if k > 1 else node
                if k > 1:
                    state["unit"] = end
                unit_end[(s, u)] = end
            else:
                for peer in dag.partners[s][w]:
                    node = add(kind="send", name=f"{dag.method}@{s}", nbytes=share(dag.unit_bytes[u]),
                               peer=peer * k + j, tag=u * k + j, deps=(anchor,))
                    last_send[peer] = node
                    if marks is not None:
                        marks.sends[(s, u, peer)] = node
        debt += b_total * f - done
    compute(debt)
    if dag.exchange == "send":  # units whose forward lies beyond the last step: received all the same
        for t in sorted(order):
            for u in order[t]:
                if t + 1 + dag.delay > dag.steps:
                    end = receive(t, u)
                    if end >= 0:
                        pending.append(end)
    end_deps = tuple(pending) + (state["compute"],) + tuple(last_send.values())
    pending.clear()
    if dag.final_merge:
        if marks is not None:
            marks.merge = state["calls"]
        add(kind="collective", name=f"{dag.method}: final merge", op="all_reduce", nbytes=share(dag.final_merge),
            group=group, deps=end_deps, algo="ring")
    elif len(end_deps) > 1:
        add(kind="compute", name="finished", duration=0.0, deps=end_deps)
    return tuple(out)


class _NonEmpty:
    """An engine's `run`, with empty calls ending at once (as the program executor ends them)."""

    def __init__(self, engine):
        self.engine = engine

    def run(self, op: str, nbytes: int, *, algo: str, label: str):
        if nbytes:
            return self.engine.run(op, nbytes, algo=algo, label=label)
        event = self.engine.sim.env.event()
        event.succeed(self.engine.sim.now)
        return event


def run_dag(comm, model: ComputeModel, dag: TrainingDag, *, speeds: np.ndarray | None = None,
            jitter: float = 0.0):
    """Start `dag` on every worker of `comm` — a Communicator (a GPU per worker), a ShardedGroup (a group of
    GPUs per worker), or an engine with the Communicator's `run` for ring all-reduces only (RingMesh) —
    as its `dag_program`, run by the program executor; returns a function that, after the simulation has
    run, gives the `TrainingRun`.

    >>> from netsim.sim import Simulation
    >>> from netsim.topology import full_mesh
    >>> from netsim.collectives import Communicator
    >>> from netsim.workloads.ddp import ddp
    >>> topo = full_mesh(2, 1.25e9, 0.0)
    >>> sim = Simulation(topo)
    >>> model = ComputeModel(layers=2, step_time=0.1, params=1e6)
    >>> result = run_dag(Communicator(sim, topo.gpus), model, ddp(model, steps=3))
    >>> _ = sim.run()
    >>> run = result()
    >>> round(run.wall_s, 6), len(run.syncs)
    (0.3024, 6)
    """
    from netsim.collectives import Communicator
    from netsim.workloads.sharded import ShardedGroup

    sim = comm.sim
    n = comm.size
    check_jitter(jitter)
    speeds = np.ones(n) if speeds is None else factors(speeds, n)
    factor = [jitter_factors(sim.rng, dag.steps, jitter) * speeds[w] for w in range(n)]
    external = None
    if isinstance(comm, ShardedGroup):
        k, shards = len(comm.shards), comm.shards
        names = tuple(s.name for s in shards)
        program, marks = dag_program(model, dag, n, factor, shards=k, shard_groups=names)
        gpu_of = {w * k + j: int(s.nodes[w]) for w in range(n) for j, s in enumerate(shards)}
        comms = dict(zip(names, shards))
        keys = {u * k + j: (s.job, s.name, "p2p") for u in range(len(dag.units)) for j, s in enumerate(shards)}
    else:
        k, shards = 1, ()
        program, marks = dag_program(model, dag, n, factor, group=comm.name)
        gpu_of = {w: int(comm.nodes[w]) for w in range(n)}
        if isinstance(comm, Communicator):
            comms, external = {comm.name: comm}, None
        else:  # another engine runs the group's all-reduces (an empty unit ends at once, as on a Communicator)
            comms, external = {}, {comm.name: _NonEmpty(comm)}
        keys = {u: (getattr(comm, "job", ""), comm.name, "p2p") for u in range(len(dag.units))}
    run = run_program(sim, program, gpu_of, algo="ring", comms=comms, external=external, tag_keys=keys,
                      order="recorded")
    index = {(r, x.id): i for i, (r, x) in enumerate((x.rank, x) for x in program.all_nodes())}

    def result() -> TrainingRun:
        if not run.done.triggered:
            raise RuntimeError("the training DAG has not finished yet")
        begin, finish = run.times()
        end = lambda w, node: float(finish[index[(w * k, node)]])  # noqa: E731 (worker w's first rank)
        names = [s.name for s in shards] if k > 1 else [comm.name]
        calls = run.call_times()
        first_calls = {c: t0 for group, c, t0, _ in calls if group == names[0]}
        call_end: dict[int, float] = {}  # a call ends when its last shard does
        for group, c, _, t1 in calls:
            if group in names:
                call_end[c] = max(call_end.get(c, -np.inf), t1)
        records = []
        if dag.exchange == "all_reduce":
            for (t, u), c in marks[0].calls.items():
                released = max(end(w, marks[w].anchor[(t, u)]) for w in range(n))
                records.append(SyncRecord(t, u, dag.unit_bytes[u], -1, -1, released, first_calls[c], call_end[c]))
        else:
            for w in range(n):
                for (t, u, peer), node in marks[w].sends.items():
                    arrived = max(float(finish[index[(w * k + j, node)]]) for j in range(k))  # its last shard
                    records.append(SyncRecord(t, u, dag.unit_bytes[u], w, peer, end(w, marks[w].anchor[(t, u)]),
                                              float(begin[index[(w * k, node)]]), arrived))
        if dag.final_merge:
            c = marks[0].merge
            records.append(SyncRecord(0, -1, dag.final_merge, -1, -1, first_calls[c], first_calls[c], call_end[c]))
        waits = np.zeros(n)
        for t in sorted(dag.releases):
            times = np.array([end(w, marks[w].last[t]) for w in range(n)])
            if dag.exchange == "all_reduce":
                waits += times.max() - times
            else:
                for w in range(n):
                    who = [x for x in range(n) if w in dag.partners[t][x]]
                    if who:
                        waits[w] += max(0.0, float(times[who].max()) - times[w])
        syncs = tuple(sorted(records, key=lambda r: (r.start, r.step, r.unit, r.src, r.dst)))
        compute = tuple(float(sum(x.duration for x in program.nodes[w * k] if x.kind == "compute")) for w in range(n))
        return TrainingRun(dag.method, n, dag.steps, float(np.max(finish, initial=0.0)), compute,
                           tuple(waits.tolist()), syncs, len(program.nodes[0]))

    return result


def layer_bytes(model: ComputeModel, bits: int) -> np.ndarray:
    """Whole bytes per layer for values of `bits` bits, summing to round(parameters x bits / 8) (each
    layer its share by weight, rounded down; the remainder one byte each to the first layers)."""
    check_bits(bits)
    return deal(int(round(model.params * bits / 8)), model.weights)


def deal(total: int, weights: np.ndarray) -> np.ndarray:
    """`total` whole bytes dealt by `weights` (summing to 1): each its share rounded down, the remainder
    one byte each to the first ones.

    >>> deal(10, np.full(3, 1 / 3)).tolist()
    [4, 3, 3]
    """
    share = np.floor(total * np.asarray(weights)).astype(np.int64)
    share[: total - int(share.sum())] += 1
    return share


def check_bits(bits: int) -> int:
    """Bits per exchanged value: 4, 8, 16 or 32."""
    if bits not in (4, 8, 16, 32):
        raise ConfigError(f"must be 4, 8, 16 or 32, got {bits!r}", field="bits")
    return bits

"""One per-layer training DAG behind every schedule: DDP, DiLoCo, Streaming DiLoCo, CO2, NoLoCo, gossip.

Per worker and step s, per layer l, three compute nodes run on the worker's one compute stream:
F(l), B_act(l) (the gradient w.r.t. the layer's input; none for layer 0) and B_w(l) (w.r.t. its
weights), with the durations of the `ComputeModel`. Communication nodes ("units": a layer, a DDP bucket
or a whole model, values that travel together) are released by the B_w node of their lowest layer (the
last of theirs the backward reaches) and gate the forward of that layer ``delay + 1`` steps later::

    step s     F0 F1 F2 F3 | Ba3 Bw3 Ba2 Bw2 Ba1 Bw1 Bw0
                                  |       |       |    |   release: unit {3} .. {0} (if due at step s)
                                  v       v       v    v
    network              [ AR{3} ][ AR{2} ][ AR{1} ][ AR{0} ]     one stream: FIFO in release order
                                                       |      ...
    step s+1+tau  F0 <-- waits for AR{0} ; F1 <-- AR{1} ; ...

- ``all_reduce`` units: when every worker has released a unit, the group's collective stream (one per
  communicator, as a collective library's single stream) all-reduces it after the units released before
  it: reductions leave in release order (FIFO), one at a time.
- ``send`` units (gossip, NoLoCo): each worker sends the unit to its partners of that round; the sends
  of one connection (sender, receiver) leave in release order; the receiver's forward of the unit's
  lowest layer waits for the unit from every worker that sends to it that round.

Compute between communication advances in closed form: a worker yields to the simulation only at a
release or at a gate whose result is not in yet, so a step without either costs no event at all (a
DiLoCo run costs events per sync, not per step). The run ends when every worker has finished its last
step and every unit (and an optional final merge) has arrived: the final drain is part of the wall time.

Each method's module turns its rules into a `TrainingDag` (`netsim.workloads.ddp.ddp`,
`netsim.workloads.diloco.streaming_diloco` — DiLoCo is F = 1, tau = 0; CO2 is F = 1, tau = H - 1 —
and `netsim.workloads.gossip.gossip` for D-SGD and NoLoCo); `run_dag` runs one on a communicator and
returns a `TrainingRun`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel, check_jitter, jitter_factors
from netsim.workloads.limits import factors, integer

EXCHANGES = ("all_reduce", "send")


@dataclass(frozen=True, eq=False)
class TrainingDag:
    """A schedule as the executor reads it.

    units: layer groups whose values travel together; unit_bytes: the bytes of each (what one worker puts
    into the collective, or sends to each partner). releases: step (1-based) -> units released by that
    step's backward. delay: tau; a unit released at step s gates the forward of step s + 1 + tau.
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
    events: int  # simulation yields of the workers and streams (compute stretches, waits, collectives)

    @property
    def utilization(self) -> float:
        """Mean over workers of compute / wall."""
        return float(np.mean(np.asarray(self.compute_s) / self.wall_s)) if self.wall_s > 0 else 1.0


# ---- the executor -----------------------------------------------------------------------------------


class _Unit:
    """One released unit of one step on the network: arrivals, then its collective or its sends."""

    __slots__ = ("released", "ready", "done", "start", "end", "arrived")

    def __init__(self, env, workers: int):
        self.released = np.full(workers, np.nan)
        self.arrived = 0
        self.ready = env.event()
        self.done = env.event()
        self.start = self.end = np.nan


def run_dag(comm, model: ComputeModel, dag: TrainingDag, *, speeds: np.ndarray | None = None,
            jitter: float = 0.0):
    """Start `dag` on every worker of `comm` (a Communicator, a ShardedGroup or a RingMesh: anything with
    `sim`, `size`, `run` and, for sends, workers' nodes); returns a function that, after the simulation
    has run, gives the `TrainingRun`.

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
    from netsim.workloads.syncs import send

    sim = comm.sim
    env = sim.env
    n = comm.size
    check_jitter(jitter)
    speeds = np.ones(n) if speeds is None else factors(speeds, n)
    fwd = model.forward()
    b_act, b_w = model.backward_nodes()
    f_cum = np.concatenate([[0.0], np.cumsum(fwd)])  # forward time before layer l
    f_total = float(f_cum[-1])
    # time from the start of the backward to the end of B_w(l): the layers above, then B_act(l), B_w(l)
    bw_end = np.cumsum((b_act + b_w)[::-1])[::-1]
    b_total = float(bw_end[0])
    order = {t: dag.release_order(t) for t in dag.releases}
    units: dict[tuple[int, int], _Unit] = {}
    gates: dict[int, list[tuple[int, int, int]]] = {}  # step -> [(layer, release step, unit)], by layer
    for t, us in order.items():
        for u in us:
            units[(t, u)] = _Unit(env, n)
            need = t + 1 + dag.delay
            if need <= dag.steps:
                gates.setdefault(need, []).append((min(dag.units[u]), t, u))
    for g in gates.values():
        g.sort()
    compute = np.zeros(n)
    last_release = {t: np.full(n, np.nan) for t in order}  # per release step: when each worker released its last unit
    records: list[SyncRecord] = []
    events = [0]
    inbox: dict[tuple[int, int, int], object] = {}  # (receiver, step, unit) -> event when all its senders' arrived
    expected: dict[tuple[int, int, int], int] = {}
    connection: dict[tuple[int, int], object] = {}  # (src, dst) -> arrival event of its last send
    finished = env.event()
    workers_done = [0]

    senders: dict[int, list[list[int]]] = {}  # step -> per worker, the workers that send to it
    if dag.exchange == "send":
        for t in order:
            senders[t] = [[] for _ in range(n)]
            for w, peers in enumerate(dag.partners[t]):
                for peer in peers:
                    senders[t][peer].append(w)
            for u in order[t]:
                for w in range(n):
                    ev = env.event()
                    inbox[(w, t, u)] = ev
                    expected[(w, t, u)] = len(senders[t][w])
                    if not senders[t][w]:
                        ev.succeed()

    def gate_event(w: int, t: int, u: int):
        return units[(t, u)].done if dag.exchange == "all_reduce" else inbox[(w, t, u)]

    def release(w: int, t: int, u: int) -> None:
        unit = units[(t, u)]
        unit.released[w] = sim.now
        unit.arrived += 1
        if dag.exchange == "all_reduce":
            if unit.arrived == n:
                unit.ready.succeed()
            return
        for peer in dag.partners[t][w]:
            _send(w, peer, t, u)

    def _send(src: int, dst: int, t: int, u: int) -> None:
        nbytes = dag.unit_bytes[u]
        released = sim.now
        previous = connection.get((src, dst))
        arrival = env.event()
        connection[(src, dst)] = arrival

        def go(_e=None) -> None:
            start = sim.now
            events[0] += 1
            sent = send(comm, src, dst, nbytes, tag=f"{dag.method}@{t}")

            def arrived(_e) -> None:
                records.append(SyncRecord(t, u, nbytes, src, dst, released, start, sim.now))
                key = (dst, t, u)
                expected[key] -= 1
                if expected[key] == 0:
                    inbox[key].succeed()
                arrival.succeed()

            sent.callbacks.append(arrived)

        if previous is None or previous.processed:
            go()
        else:
            previous.callbacks.append(go)

    def worker(w: int):
        factor = jitter_factors(sim.rng, dag.steps, jitter) * speeds[w]
        debt = 0.0
        for s in range(1, dag.steps + 1):
            j = float(factor[s - 1])
            pos = 0
            for layer, t, u in gates.get(s, ()):
                debt += float(f_cum[layer] - f_cum[pos]) * j
                pos = layer
                ev = gate_event(w, t, u)
                if not ev.processed:
                    if debt:
                        events[0] += 1
                        yield env.timeout(debt)
                        compute[w] += debt
                        debt = 0.0
                    events[0] += 1
                    yield ev
            debt += (f_total - float(f_cum[pos])) * j
            done = 0.0
            for u in order.get(s, ()):
                at = float(bw_end[min(dag.units[u])]) * j
                debt += at - done
                done = at
                if debt:
                    events[0] += 1
                    yield env.timeout(debt)
                    compute[w] += debt
                    debt = 0.0
                release(w, s, u)
            if s in order:
                last_release[s][w] = sim.now
            debt += b_total * j - done
        if debt:
            events[0] += 1
            yield env.timeout(debt)
            compute[w] += debt
        workers_done[0] += 1
        if workers_done[0] == n:
            finished.succeed()

    def stream():
        """The group's collective stream: units all-reduced one at a time, in release order."""
        for t in sorted(order):
            for u in order[t]:
                unit = units[(t, u)]
                events[0] += 1
                yield unit.ready
                unit.start = sim.now
                if dag.unit_bytes[u]:
                    events[0] += 1
                    yield comm.run("all_reduce", dag.unit_bytes[u], algo="ring", label=f"{dag.method}@{t}/unit{u}")
                unit.end = sim.now
                records.append(SyncRecord(t, u, dag.unit_bytes[u], -1, -1, float(np.nanmax(unit.released)),
                                          unit.start, unit.end))
                unit.done.succeed()

    def merge():
        yield finished
        if dag.exchange == "send":  # every send arrived
            pending = [ev for ev in connection.values() if not ev.processed]
            if pending:
                yield env.all_of(pending)
        if dag.final_merge:
            start = sim.now
            events[0] += 1
            yield comm.run("all_reduce", dag.final_merge, algo="ring", label=f"{dag.method}: final merge")
            records.append(SyncRecord(0, -1, dag.final_merge, -1, -1, start, start, sim.now))

    for w in range(n):
        sim.process(worker(w))
    if dag.exchange == "all_reduce" and units:
        sim.process(stream())
    sim.process(merge())

    def result() -> TrainingRun:
        wall = float(sim.now)
        waits = np.zeros(n)
        for t, times in last_release.items():
            if np.isnan(times).any():
                continue
            if dag.exchange == "all_reduce":
                waits += times.max() - times
            else:
                for w in range(n):
                    if senders[t][w]:
                        waits[w] += max(0.0, float(times[senders[t][w]].max()) - times[w])
        syncs = tuple(sorted(records, key=lambda r: (r.start, r.step, r.unit, r.src, r.dst)))
        return TrainingRun(dag.method, n, dag.steps, wall, tuple(compute.tolist()), tuple(waits.tolist()), syncs,
                           events[0])

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

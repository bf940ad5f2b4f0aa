"""Dataflow: the one execution form every workload is lowered to, and its reference executor.

A `Dataflow` is a graph of *gates* and *transfers*:

- a gate holds a count; it **fires** the instant its count reaches zero (gates whose count starts at
  zero fire when the dataflow starts). On firing it sends its transfers (in order), and `delay[g]`
  seconds later it counts down each of its successors by one (delay 0: at once, in the same instant);
- a transfer moves `nbytes` from node `src` to node `dst` through the network model; when its last
  byte has arrived it counts down each of its target gates by one;
- the dataflow is done when its `done` gate fires;
- a *hook* gate also calls Python when it fires (the run's `on_fire`), and a gate may wait for count-downs
  from outside (`DataflowRun.count_down`): work the dataflow does not describe (a collective on another
  engine, a real computation) joins it that way.

What the workloads mean by it (how the layers above lower onto this form)::

    step schedule (collective):   cell(k, r) ──sends step-k transfers of rank r──► arrival
                                      │                                             │
                                      └──────────► cell(k+1, r) ◄────────────────────┘ (at the receiver)
    compute of d seconds:          start ──(delay d)──► end
    eager send / recv:             send ──transfer──► send end and recv end  (recv end also waits for the
                                                                              recv's own dependencies)
    collective rendezvous:         every member's node ──► join ──► cell(0, r) of each rank

Any number of such graphs can run at once on one network: a network model either runs them itself (the
fluid model runs gates, transfers, drains and rates together in one compiled loop) or leaves them to
`run_python`, this module's executor, which sends each instant's transfers through `send_batch` and
counts gates down in Python. Both follow the rules above: all arrivals of one instant are counted
before the gates they open fire; gates fire in the order their counts reach zero; a firing gate's
transfers leave together (one `send_batch` per route key and batch label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import simpy

from netsim.topology.csr import gather


@dataclass(frozen=True, eq=False)
class Dataflow:
    """Gates and transfers (see the module docstring), flattened into arrays.

    Gates: `count` (initial count, external count-downs included), `delay` (seconds from firing to counting
    down successors), `hooks` (gates whose firing calls the run's `on_fire`), successors
    `succ[succ_off[g]:succ_off[g + 1]]`, transfers sent on firing `send[send_off[g]:send_off[g + 1]]`.
    Transfers: `src`/`dst` (topology node ids), `nbytes`, route key `keys[t_key[t]]` (each key hashes as its
    own connection), transfers-table tag `tags[t_tag[t]]`, `batch` (a label: transfers of one label sent
    at one instant form one batch, e.g. one collective step on one channel), and target gates
    `tgt[tgt_off[t]:tgt_off[t + 1]]`. `done`: the gate whose firing ends the dataflow.
    """

    count: np.ndarray
    delay: np.ndarray
    succ_off: np.ndarray
    succ: np.ndarray
    send_off: np.ndarray
    send: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    t_key: np.ndarray
    t_tag: np.ndarray
    batch: np.ndarray
    tgt_off: np.ndarray
    tgt: np.ndarray
    keys: tuple
    tags: tuple
    done: int
    hooks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # gates that call Python
    callbacks: dict = field(default_factory=dict)  # hook gate -> its own callback(run, gate), else the run's on_fire

    @property
    def gates(self) -> int:
        return len(self.count)

    @property
    def transfers(self) -> int:
        return len(self.src)


class DataflowBuilder:
    """Collects gates, edges and transfers (in numpy chunks) and builds a `Dataflow`.

    >>> b = DataflowBuilder()
    >>> start, end = b.gates(2)
    >>> b.edges([start], [end])
    >>> b.transfer_from(start, [0], [1], [1000], key=("job",), tag="t", targets=[end])
    array([0])
    >>> flow = b.build(done=int(end))
    >>> flow.count.tolist(), flow.transfers
    ([0, 2], 1)
    """

    def __init__(self) -> None:
        self._gates = 0
        self._delay: list[np.ndarray] = []
        self._edge_a: list[np.ndarray] = []
        self._edge_b: list[np.ndarray] = []
        self._t: list[tuple[np.ndarray, ...]] = []  # (sender gate, src, dst, nbytes, key, tag, batch)
        self._tgt_t: list[np.ndarray] = []
        self._tgt_g: list[np.ndarray] = []
        self._transfers = 0
        self._keys: dict[tuple, int] = {}
        self._tags: dict[str, int] = {}
        self._batches = 0
        self._hooks: list[int] = []
        self._callbacks: dict[int, Callable] = {}
        self._external: list[np.ndarray] = []

    @property
    def num_gates(self) -> int:
        return self._gates

    def gates(self, n: int, delay: float | np.ndarray = 0.0) -> np.ndarray:
        """`n` new gates (ids returned), each firing its successors `delay` seconds after it fires."""
        ids = np.arange(self._gates, self._gates + n, dtype=np.int64)
        self._gates += n
        self._delay.append(np.broadcast_to(np.asarray(delay, dtype=np.float64), (n,)).copy())
        return ids

    def edges(self, a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> None:
        """Gate a[i] counts down gate b[i] (after a[i]'s delay); either side may be one gate for all."""
        a, b = np.broadcast_arrays(np.atleast_1d(np.asarray(a, dtype=np.int64)),
                                   np.atleast_1d(np.asarray(b, dtype=np.int64)))
        self._edge_a.append(a.copy())
        self._edge_b.append(b.copy())

    def batch(self, n: int = 1) -> int:
        """`n` new batch labels (the first returned; the others follow it)."""
        self._batches += n
        return self._batches - n

    def key(self, key: tuple) -> int:
        """The id of route key `key` (see `transfers`)."""
        return self._keys.setdefault(key, len(self._keys))

    def transfers(self, sender: np.ndarray, src: np.ndarray, dst: np.ndarray, nbytes: np.ndarray, *,
                  key: tuple | np.ndarray, tag: str | Sequence[str], batch: np.ndarray | int | None = None
                  ) -> np.ndarray:
        """Transfers src[i] -> dst[i] of nbytes[i], sent when gate sender[i] fires (in the order given);
        `key` one route key for all, or per transfer an id from `key()`; `tag` one for all or one each;
        `batch` a label (default: a new one for all). Returns their ids."""
        sender = np.asarray(sender, dtype=np.int64)
        n = len(sender)
        ids = np.arange(self._transfers, self._transfers + n, dtype=np.int64)
        self._transfers += n
        if isinstance(key, tuple):
            kid = np.full(n, self.key(key), dtype=np.int64)
        else:
            kid = np.broadcast_to(np.asarray(key, dtype=np.int64), (n,)).copy()
        if isinstance(tag, str):
            tid = np.full(n, self._tags.setdefault(tag, len(self._tags)), dtype=np.int64)
        else:
            tid = np.fromiter((self._tags.setdefault(t, len(self._tags)) for t in tag), dtype=np.int64, count=n)
        label = np.full(n, self.batch(), dtype=np.int64) if batch is None else \
            np.broadcast_to(np.asarray(batch, dtype=np.int64), (n,)).copy()
        self._t.append((sender, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64),
                        np.asarray(nbytes, dtype=np.int64), kid, tid, label))
        return ids

    def transfer_from(self, sender: int, src, dst, nbytes, *, key: tuple, tag: str, targets=()) -> np.ndarray:
        """`transfers` from one gate, each counting down every gate of `targets` on arrival."""
        ids = self.transfers(np.full(len(src), sender, dtype=np.int64), src, dst, nbytes, key=key, tag=tag)
        for g in targets:
            self.targets(ids, np.full(len(ids), g, dtype=np.int64))
        return ids

    def targets(self, transfers: np.ndarray, gates: np.ndarray) -> None:
        """Transfer transfers[i] counts down gate gates[i] when it arrives."""
        self._tgt_t.append(np.asarray(transfers, dtype=np.int64))
        self._tgt_g.append(np.asarray(gates, dtype=np.int64))

    def hook(self, gate: int, callback: Callable[["DataflowRun", int], None] | None = None) -> None:
        """When `gate` fires, `callback(run, gate)` is called, or without one the run's `on_fire(gate)` (work
        outside the dataflow starts then)."""
        self._hooks.append(int(gate))
        if callback is not None:
            self._callbacks[int(gate)] = callback

    def external(self, gate: int | np.ndarray) -> None:
        """`gate` (or each gate of an array) also waits for one count-down from outside
        (`DataflowRun.count_down`)."""
        self._external.append(np.atleast_1d(np.asarray(gate, dtype=np.int64)).copy())

    def build(self, done: int) -> Dataflow:
        g = self._gates
        cat = (lambda parts, dtype=np.int64: np.concatenate(parts).astype(dtype, copy=False) if parts
               else np.zeros(0, dtype=dtype))
        ea, eb = cat(self._edge_a), cat(self._edge_b)
        tt, tg = cat(self._tgt_t), cat(self._tgt_g)
        count = np.bincount(eb, minlength=g) + np.bincount(tg, minlength=g) + \
            np.bincount(cat(self._external), minlength=g)
        succ_off, succ = _csr(ea, eb, g)
        cols = [cat([c[i] for c in self._t]) for i in range(7)] if self._t else [np.zeros(0, np.int64)] * 7
        sender, src, dst, nbytes, kid, tid, label = cols
        send_off, send = _csr(sender, np.arange(len(sender), dtype=np.int64), g)
        tgt_off, tgt = _csr(tt, tg, len(sender))
        if len(nbytes) and nbytes.min() < 0:
            raise ValueError("negative transfer size")
        if done in self._hooks:
            raise ValueError("the done gate cannot be a hook")
        return Dataflow(count.astype(np.int64), cat(self._delay, np.float64), succ_off, succ, send_off, send, src,
                        dst, nbytes, kid, tid, label, tgt_off, tgt, tuple(self._keys), tuple(self._tags), int(done),
                        np.unique(np.asarray(self._hooks, dtype=np.int64)), dict(self._callbacks))


def _csr(rows: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=off[1:])
    return off, values[order]


@dataclass(eq=False)
class DataflowRun:
    """A dataflow started on a network: `done` fires (value: end time) when its done gate fires; then
    `fire[g]` is the instant gate g fired (NaN: never) and `t_start`/`t_end` each transfer's interval."""

    flow: Dataflow
    done: simpy.Event
    fire: np.ndarray = field(default=None)
    t_start: np.ndarray = field(default=None)
    t_end: np.ndarray = field(default=None)
    compiled: bool = False
    on_fire: Callable[[int], None] | None = None  # called (at its instant) when a hook gate fires
    _count_down: Callable[[np.ndarray], None] | None = None  # set by the executor running it
    _fired: Callable[[np.ndarray], np.ndarray] | None = None  # live fire times (set by the executor)
    _set_delay: Callable[[np.ndarray, np.ndarray], None] | None = None  # set by the executor running it

    def __post_init__(self) -> None:
        if self.fire is None:
            self.fire = np.full(self.flow.gates, np.nan)
            self.t_start = np.full(self.flow.transfers, np.nan)
            self.t_end = np.full(self.flow.transfers, np.nan)

    def count_down(self, gate: int | np.ndarray, delay: np.ndarray | None = None) -> None:
        """Count gate `gate` (or each of distinct gates) down by one now, from outside (see
        `DataflowBuilder.external`). With `delay`, each gate's delay (from its firing to counting down its
        successors) is set to it first: a gate released now passes on `delay` seconds later."""
        gates = np.atleast_1d(np.asarray(gate, dtype=np.int64))
        if delay is not None:
            self._set_delay(gates, np.broadcast_to(np.asarray(delay, dtype=np.float64), gates.shape))
        self._count_down(gates)

    def fired(self, gates: np.ndarray) -> np.ndarray:
        """The instants gates `gates` fired, so far (NaN: not yet); usable while the run goes."""
        return self._fired(np.asarray(gates, dtype=np.int64)) if self._fired is not None else self.fire[gates]

    def hooked(self, gate: int) -> None:
        """Hook gate `gate` fired now: its own callback, else the run's `on_fire` (the executors call this)."""
        callback = self.flow.callbacks.get(gate)
        if callback is not None:
            callback(self, gate)
        else:
            self.on_fire(gate)


class _PythonRun:
    """`run_python`'s state: gate counts, this instant's arrivals, and the run's record."""

    def __init__(self, network, flow: Dataflow, run: DataflowRun):
        self.network, self.flow, self.run = network, flow, run
        self.count = flow.count.copy()
        self.delay = flow.delay
        self.group = flow.t_key * (int(flow.batch.max()) + 1 if len(flow.batch) else 1) + flow.batch  # send_batch
        self.inbox: list[np.ndarray] = []
        self.flush_pending = False
        self.hooked = np.zeros(flow.gates, dtype=bool)
        self.hooked[flow.hooks] = True
        run._count_down = lambda gates: self.fire(self._count_down(gates))
        run._set_delay = self._set_delay

    def fire(self, ready: np.ndarray) -> None:
        """Gates `ready` fire now, with every gate they open at this instant (in the order counts hit zero)."""
        flow, env, run = self.flow, self.network.env, self.run
        while len(ready):
            now = env.now
            run.fire[ready] = now
            if len(flow.hooks) and self.hooked[ready].any():
                for g in ready[self.hooked[ready]].tolist():
                    run.hooked(g)
            sent = _rows(flow.send_off, flow.send, ready)
            if len(sent):
                self._send(sent)
            timed = self.delay[ready] > 0
            if timed.any():
                for g in ready[timed].tolist():
                    env.timeout(float(self.delay[g])).callbacks.append(lambda _e, g=g: self._timer(g))
                ready = ready[~timed]
            if run.fire[flow.done] == now and not run.done.triggered:
                run.done.succeed(now)
            ready = self._count_down(_rows(flow.succ_off, flow.succ, ready))

    def _set_delay(self, gates: np.ndarray, delay: np.ndarray) -> None:
        if self.delay is self.flow.delay:  # the run's own copy (the dataflow stays as built)
            self.delay = self.flow.delay.copy()
        self.delay[gates] = delay

    def _timer(self, g: int) -> None:
        self.fire(self._count_down(self.flow.succ[self.flow.succ_off[g]:self.flow.succ_off[g + 1]]))

    def _count_down(self, gates: np.ndarray) -> np.ndarray:
        """Count `gates` down (a gate may appear several times); the ones that reached zero, in the order
        of their last count-down."""
        if len(gates) == 1:
            g = int(gates[0])
            self.count[g] -= 1
            return gates if self.count[g] == 0 else gates[:0]
        if not len(gates):
            return gates
        np.subtract.at(self.count, gates, 1)
        hit = np.flatnonzero(self.count[gates] == 0)
        if not len(hit):
            return gates[:0]
        rev = gates[hit][::-1]
        _, first = np.unique(rev, return_index=True)  # each gate's last count-down, seen from the end
        return rev[np.sort(first)][::-1]

    def _send(self, sent: np.ndarray) -> None:
        flow, net = self.flow, self.network
        self.run.t_start[sent] = net.env.now
        group = self.group[sent]
        if len(sent) == 1 or (group == group[0]).all():
            parts = [sent]
        else:
            order = np.argsort(group, kind="stable")
            cuts = np.flatnonzero(np.diff(group[order])) + 1
            parts = np.split(sent[order], cuts)
        for part in parts:
            t0 = int(part[0])
            net.send_batch(flow.src[part], flow.dst[part], flow.nbytes[part], self._arrival(part),
                           key=flow.keys[int(flow.t_key[t0])], tag=flow.tags[int(flow.t_tag[t0])])

    def _arrival(self, part: np.ndarray):
        def arrived(idx: np.ndarray, t: float) -> None:
            got = part[idx]
            self.run.t_end[got] = t
            self.inbox.append(got)
            if not self.flush_pending:  # every arrival of this instant first, then the gates they open
                self.flush_pending = True
                self.network.defer(self._flush)

        return arrived

    def _flush(self) -> None:
        self.flush_pending = False
        got = np.concatenate(self.inbox) if len(self.inbox) > 1 else self.inbox[0]
        self.inbox = []
        self.fire(self._count_down(_rows(self.flow.tgt_off, self.flow.tgt, got)))


def _rows(off: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """CSR rows `rows` concatenated (one row: a slice)."""
    if len(rows) == 1:
        r = int(rows[0])
        return values[off[r]:off[r + 1]]
    return gather(off, values, rows)


def run_python(network, flow: Dataflow, on_fire: Callable[[int], None] | None = None) -> DataflowRun:
    """Start `flow` now on `network` through `send_batch` (the reference executor; see the module
    docstring). The returned run's `done` fires when the done gate fires; `on_fire(g)` is called when hook
    gate g fires."""
    run = DataflowRun(flow, network.env.event(), on_fire=on_fire)
    state = _PythonRun(network, flow, run)
    state.fire(np.flatnonzero(flow.count == 0))
    return run


__all__ = ["Dataflow", "DataflowBuilder", "DataflowRun", "run_python"]

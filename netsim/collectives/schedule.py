"""Step schedules: a collective as numbered steps of transfers between (virtual) ranks, and their executor.

Dependency rule (per virtual rank): a rank enters step k once it has received every
transfer addressed to it in steps < k; on entering it issues its own step-k sends.
That is the data flow of ring, tree, halving-doubling and direct algorithms alike: `lower`
turns it into gates of a `netsim.network.dataflow.Dataflow`, which runs on any network model. Pipelined chunks are lanes:
copies of the ranks (virtual rank = lane * n + rank), optionally kept in order on each
connection (`Schedule.follower`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Sequence

import numpy as np
import simpy

from netsim.network import NetworkModel
from netsim.collectives.repeats import cycle_bound, kept_steps, release, repeated_runs
from netsim.network.dataflow import Dataflow, DataflowBuilder
from netsim.topology.csr import csr, gather


@dataclass(frozen=True, eq=False)
class Step:
    """Transfers src[i] -> dst[i] of nbytes[i] bytes, between virtual ranks."""

    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray

    @cached_property
    def by_src(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, transfer order): the transfers sent by rank v are order[offsets[v]:offsets[v+1]]."""
        return csr(self.src, int(self.src.max()) + 1 if len(self.src) else 0)

    def sent_by(self, ranks: np.ndarray) -> np.ndarray:
        offsets, order = self.by_src
        if len(ranks) == 1:  # one rank entering: a slice, no gather
            r = int(ranks[0])
            return order[offsets[r]:offsets[r + 1]] if r < len(offsets) - 1 else order[:0]
        return gather(offsets, order, ranks[ranks < len(offsets) - 1])


@dataclass(frozen=True, eq=False)
class Schedule:
    """A collective's steps over `node_of.size` virtual ranks (`node_of[v]` is v's GPU node).

    `channel_of[v]` names the connection v sends on (each channel hashes as its own flow).
    `follower[v]` (-1: none) is the virtual rank that sends each step only after v's sends
    of that step have arrived: pipelined chunks following each other down a connection.
    With `wait_sends`, a rank also waits for its own step-k sends to arrive before step k + 1
    (blocking send-receive, as MPI implementations of halving-doubling do).
    """

    node_of: np.ndarray
    steps: Sequence[Step]
    channel_of: np.ndarray | None = None
    follower: np.ndarray | None = None
    wait_sends: bool = False

    @property
    def num_ranks(self) -> int:
        return len(self.node_of)


def lower(builder: DataflowBuilder, schedule: Schedule, *, key: tuple, tag: str,
          after: np.ndarray | None = None, compress: int = 0, note: Callable[[dict], None] | None = None,
          step_times: Callable[[list], tuple] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Add `schedule` to `builder` as gates: cell(k, r), for step k = 0..K and virtual rank r, fires when
    rank r enters step k (K: finished) and sends r's step-k transfers; it waits for cell(k-1, r) and for
    every transfer that must reach r first::

        cell(k, r) ──sends──► transfer r -> d (step k) ──arrives──► cell(k+1, d)
             │                                        (and cell(k+1, r) with wait_sends,
             ▼                                         cell(k, follower[r]) with a follower)
        cell(k+1, r)

    A rank that neither receives in step k nor waits on its own sends enters step k + 1 as it enters step
    k, so its cell(k + 1, r) is cell(k, r) itself (one gate, no edge): a tree's idle ranks cost nothing per
    step. Each channel's transfers hash as their own connection (route key `key + (channel,)`); each step and
    channel is one batch. With `after` (one gate, or one per virtual rank), rank r's first cell also
    waits for that gate. With `compress` M > 0, each run of at least 2M identical steps keeps its first M
    and the rest are skipped by their period (`netsim.collectives.repeats`; `note` gets each run's figures,
    `step_times` is the network's `NetworkModel.step_times`). Returns (first cells, last cells), one per
    virtual rank."""
    v = schedule.num_ranks
    runs = repeated_runs(schedule.steps, v, compress)
    steps = kept_steps(schedule.steps, runs) if runs else schedule.steps
    k_steps = len(steps)
    node_of = np.asarray(schedule.node_of, dtype=np.int64)
    channels = schedule.channel_of
    if channels is not None:
        names, chan_of = np.unique(np.asarray(channels, dtype=np.int64), return_inverse=True)
        key_ids = np.array([builder.key(key + (int(c),)) for c in names.tolist()], dtype=np.int64)
    follower = schedule.follower
    boundaries = []  # per compressed run: the step after its kept ones, in the steps simulated
    skipped = 0
    for run in runs:
        boundaries.append(run.start - skipped + run.kept)
        skipped += run.skipped
    cells, fresh = _cells(steps, v, schedule.wait_sends, follower, boundaries, builder)
    entry = cells[v:].copy()  # what enters step k + 1 (a compressed run's arrivals go to gates of their own)
    if runs:
        for run, boundary in zip(runs, boundaries):
            arrived, shifted, hook = builder.gates(v), builder.gates(v), builder.gates(1)
            entry[(boundary - 1) * v:boundary * v] = arrived
            builder.edges(arrived, np.broadcast_to(hook, (v,)))
            builder.edges(shifted, cells[boundary * v:(boundary + 1) * v])
            builder.external(shifted)
            bound = 0.0 if step_times is None else _settled_bound(
                schedule, steps[boundary - 1], node_of, key, (names, chan_of) if channels is not None else None,
                step_times)
            builder.hook(int(hook[0]), release(run, cells, boundary, v, arrived, shifted, bound, note, tag))
    if k_steps:
        builder.edges(cells[:k_steps * v][fresh], entry[fresh])
    if after is not None:
        builder.edges(np.broadcast_to(np.asarray(after, dtype=np.int64), (v,)), cells[:v])
    for k, step in enumerate(steps):
        src, dst = np.asarray(step.src, dtype=np.int64), np.asarray(step.dst, dtype=np.int64)
        if not len(src):
            continue
        if channels is None:
            kid, batch = key, builder.batch()
        else:
            c = chan_of[src]
            kid = key_ids[c]
            batch = builder.batch(len(names)) + c
        ids = builder.transfers(cells[k * v + src], node_of[src], node_of[dst], step.nbytes, key=kid, tag=tag,
                                batch=batch)
        builder.targets(ids, entry[k * v + dst])
        if schedule.wait_sends:
            builder.targets(ids, entry[k * v + src])
        if follower is not None:
            later = np.asarray(follower, dtype=np.int64)[src]
            has = later >= 0
            builder.targets(ids[has], cells[k * v + later[has]])
    return cells[:v], cells[k_steps * v:]


def _cells(steps: list[Step], v: int, wait_sends: bool, follower, boundaries: list[int],
           builder: DataflowBuilder) -> tuple[np.ndarray, np.ndarray]:
    """`lower`'s cells: gate ids per (step k, rank r) laid out `k * v + r` for k = 0..len(steps), and which
    cells of steps 1.. are gates of their own (`fresh`, laid out `(k - 1) * v + r`). Cell (k + 1, r) is a
    gate of its own when something arrives for r at the end of step k (it receives, or waits on its own
    sends), when a leader's step-(k + 1) transfer gates it (a follower), or at a compressed run's boundary;
    otherwise it is cell (k, r), the same gate."""
    k_steps = len(steps)
    need = np.zeros((k_steps + 1, v), dtype=bool)
    need[0] = True
    need[boundaries] = True
    if k_steps:
        k = np.repeat(np.arange(k_steps), [len(step.src) for step in steps])
        src = np.concatenate([np.asarray(step.src, dtype=np.int64) for step in steps])
        need[k + 1, np.concatenate([np.asarray(step.dst, dtype=np.int64) for step in steps])] = True
        if wait_sends:
            need[k + 1, src] = True
        if follower is not None:
            later = np.asarray(follower, dtype=np.int64)[src]
            need[k[later >= 0], later[later >= 0]] = True
    cells = np.empty(need.shape, dtype=np.int64)
    cells[need] = builder.gates(int(need.sum()))
    for k in range(1, k_steps + 1):  # the others: the cell before
        np.copyto(cells[k], cells[k - 1], where=~need[k])
    return cells.ravel(), need[1:].ravel()


def _settled_bound(schedule: Schedule, step: Step, node_of: np.ndarray, key: tuple, channels: tuple | None,
                   step_times: Callable[[list], tuple]) -> float:
    """The least a repeated `step` takes once settled (`netsim.collectives.repeats`): the network's least time
    for its transfers (`NetworkModel.step_times`, each channel on its own route key, as `lower` sends them)
    and the ranks' cycle bound from each transfer's time alone."""
    if channels is None:
        least, alone = step_times([(node_of[step.src], node_of[step.dst], step.nbytes, key)])
        order = np.arange(len(step.src))
    else:
        names, chan_of = channels
        c = chan_of[step.src]
        order = np.argsort(c, kind="stable")  # the parts' order: channel by channel
        least, alone = step_times([(node_of[step.src[c == i]], node_of[step.dst[c == i]], step.nbytes[c == i],
                                    key + (int(name),)) for i, name in enumerate(names.tolist())])
    each = np.empty(len(order))
    each[order] = alone
    return max(least, cycle_bound(step.src, step.dst, each, schedule.num_ranks, schedule.wait_sends))


def dataflow(schedule: Schedule, *, key: tuple = (), tag: str = "", compress: int = 0,
             note: Callable[[dict], None] | None = None, step_times: Callable[[list], tuple] | None = None
             ) -> Dataflow:
    """The schedule alone as a dataflow, done when every rank has finished (every transfer arrived);
    `compress`, `note` and `step_times` as in `lower`."""
    builder = DataflowBuilder()
    _, last = lower(builder, schedule, key=key, tag=tag, compress=compress, note=note, step_times=step_times)
    done = builder.gates(1)
    builder.edges(last, np.broadcast_to(done, last.shape))
    return builder.build(int(done[0]))


def execute(network: NetworkModel, schedule: Schedule, *, key: tuple = (), tag: str = "", compress: int = 0,
            note: Callable[[dict], None] | None = None) -> simpy.Event:
    """Start the schedule now; the returned event fires (value: end time) when every transfer arrived.

    The schedule runs as a dataflow (`lower`) on the network model (`NetworkModel.run_dataflow`: the fluid
    model runs it in compiled code, together with whatever else runs; otherwise the reference executor
    sends each step's transfers through `send_batch`)."""
    flow = dataflow(schedule, key=key, tag=tag, compress=compress, note=note, step_times=network.step_times)
    return network.run_dataflow(flow).done

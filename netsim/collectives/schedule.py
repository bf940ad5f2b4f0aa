"""Step schedules: a collective as numbered steps of transfers between (virtual) ranks, and their executor.

Dependency rule (per virtual rank): a rank enters step k once it has received every
transfer addressed to it in steps < k; on entering it issues its own step-k sends.
That is the data flow of ring, tree, halving-doubling and direct algorithms alike,
so one executor runs them all on any network model. Pipelined chunks are lanes:
copies of the ranks (virtual rank = lane * n + rank), optionally kept in order on each
connection (`Schedule.follower`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Sequence

import numpy as np
import simpy

from netsim.network import NetworkModel
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


@dataclass(eq=False)
class _Run:
    network: NetworkModel
    schedule: Schedule
    key: tuple
    tag: str
    done: simpy.Event
    gate: list[np.ndarray] = field(default_factory=list)  # gate[k][v]: arrivals v awaits before step k
    entered: list[np.ndarray] = field(default_factory=list)
    finished: int = 0
    inbox: dict[int, list[np.ndarray]] = field(default_factory=dict)  # step -> ranks whose gate moved
    flush_pending: bool = False


def execute(network: NetworkModel, schedule: Schedule, *, key: tuple = (), tag: str = "") -> simpy.Event:
    """Start the schedule now; the returned event fires (value: end time) when every transfer arrived.

    The network model may run the schedule itself (`NetworkModel.run_schedule`: the fluid model runs
    it in compiled code); otherwise this executor sends each step through `send_batch`."""
    done = network.run_schedule(schedule, key=key, tag=tag)
    if done is not None:
        return done
    v = schedule.num_ranks
    run = _Run(network, schedule, key, tag, network.env.event())
    steps, follower = schedule.steps, schedule.follower
    received: dict[int, np.ndarray] = {}
    run.gate = [np.zeros(v, dtype=np.int64)]
    for step in steps:
        counts = received.get(id(step))
        if counts is None:
            counts = np.bincount(step.dst, minlength=v)
            if schedule.wait_sends:
                counts = counts + np.bincount(step.src, minlength=v)
            received[id(step)] = counts
        run.gate.append(counts.copy())
        run.entered.append(np.zeros(v, dtype=bool))
    if follower is not None:
        for k, step in enumerate(steps):  # a follower waits for its leader's sends of the same step
            later = follower[step.src]
            np.add.at(run.gate[k], later[later >= 0], 1)
    run.entered.append(np.zeros(v, dtype=bool))  # entering "step K" means finished
    ready = np.flatnonzero(run.gate[0] == 0)
    _enter(run, ready, 0)
    return run.done


def _enter(run: _Run, ranks: np.ndarray, k: int) -> None:
    steps = run.schedule.steps
    node_of = run.schedule.node_of
    channels = run.schedule.channel_of
    while len(ranks) and k < len(steps):
        step = steps[k]
        if len(ranks) == 1:
            run.entered[k][ranks[0]] = True
        else:
            run.entered[k][ranks] = True
        sel = step.sent_by(ranks)
        if len(sel) and channels is None:
            run.network.send_batch(node_of[step.src[sel]], node_of[step.dst[sel]], step.nbytes[sel],
                                   _arrival(run, k, sel), key=run.key, tag=run.tag)
        elif len(sel) == 1:  # one transfer: its own channel
            run.network.send_batch(node_of[step.src[sel]], node_of[step.dst[sel]], step.nbytes[sel],
                                   _arrival(run, k, sel), key=run.key + (int(channels[step.src[sel[0]]]),),
                                   tag=run.tag)
        elif len(sel):  # one batch per channel, so each channel hashes as its own connection
            chan = channels[step.src[sel]]
            for c in np.unique(chan).tolist():
                sub = sel[chan == c]
                run.network.send_batch(node_of[step.src[sub]], node_of[step.dst[sub]], step.nbytes[sub],
                                       _arrival(run, k, sub), key=run.key + (c,), tag=run.tag)
        if len(ranks) == 1:  # one rank: a scalar look at its gate
            if run.gate[k + 1][ranks[0]] != 0:
                return
        else:
            ranks = ranks[run.gate[k + 1][ranks] == 0]
        k += 1
    if k == len(steps) and len(ranks):
        run.entered[k][ranks] = True
        run.finished += len(ranks)
        if run.finished == run.schedule.num_ranks:
            run.done.succeed(run.network.env.now)


def _arrival(run: _Run, k: int, sel: np.ndarray) -> Callable[[np.ndarray, float], None]:
    step = run.schedule.steps[k]
    follower = run.schedule.follower

    def arrived(idx: np.ndarray, _t: float) -> None:
        run.inbox.setdefault(k + 1, []).append(step.dst[sel[idx]])
        if run.schedule.wait_sends:
            run.inbox[k + 1].append(step.src[sel[idx]])
        if follower is not None:
            later = follower[step.src[sel[idx]]]
            later = later[later >= 0]
            if len(later):
                run.inbox.setdefault(k, []).append(later)
        if not run.flush_pending:
            # Handle every arrival of this instant together (one batch of sends per step), once
            # the network has delivered them all.
            run.flush_pending = True
            run.network.defer(lambda: _flush(run))

    return arrived


def _flush(run: _Run) -> None:
    run.flush_pending = False
    inbox, run.inbox = run.inbox, {}
    for j in sorted(inbox):
        ranks = np.concatenate(inbox[j]) if len(inbox[j]) > 1 else inbox[j][0]
        gate = run.gate[j]
        if len(ranks) == 1:  # one arrival: scalar bookkeeping
            r = int(ranks[0])
            gate[r] -= 1
            if gate[r] == 0 and not run.entered[j][r] and (j == 0 or run.entered[j - 1][r]):
                _enter(run, ranks, j)
            continue
        np.subtract.at(gate, ranks, 1)
        ready = np.unique(ranks)
        ready = ready[(gate[ready] == 0) & ~run.entered[j][ready]]
        if j > 0:
            ready = ready[run.entered[j - 1][ready]]
        _enter(run, ready, j)

"""Ring all-reduces of one group of workers on a full mesh of identical links, without the general
fluid model: the exact shortcut `utilization` uses where it holds.

Why it is exact. On a full mesh, the ring's hop r -> r+1 is the direct link r -> r+1, and only rank r
sends on it (every collective runs on the same ring). Each flow crosses one link, so the fluid model's
max-min sharing falls apart into one processor-sharing queue per link: the k flows on a link each get
min(cap, capacity / k), where cap is the per-flow cap of `NetworkOptions` (the same on every link). A
transfer arrives `latency + overhead` after its last byte left; a rank enters step s + 1 once it has
received its step-s piece (the step-schedule executor's rule for a ring). The pieces are the executor's
(`split_bytes`: n pieces, the first N mod n one byte larger; rank r sends piece (r - s) mod n at step s).

Why it is fast. Per flow it costs a few heap operations instead of a fluid rate computation. And when
every all-reduce so far divides into n equal pieces, every link carries the same flows at the same
times (the ring is symmetric under rotation), so one link stands for all: the cost of an all-reduce is
then its 2(n - 1) steps, not its 2n(n - 1) transfers. The first all-reduce with unequal pieces copies
that one link's state to all n links (they are identical at that instant) and the run goes on per link.
Pieces that differ by one byte put the ranks a few byte-times apart, and that changes the end of an
all-reduce by more than 1e-9 of it, so they are not rounded away: then the cost is per transfer.

tests/workloads/test_ring_mesh.py compares it with the full simulation (to 1e-12).
"""

from __future__ import annotations

import heapq
import math

import simpy

from netsim.network.partition import split_bytes
from netsim.network import NetworkOptions
from netsim.network.fluid import FINISH_CLOCK, FINISH_REL, LATE

_DONE, _ARRIVE = 0, 1  # kinds of internal events: a link's next drain (if still current), an arrival


class _Collective:
    """One all-reduce in flight: its pieces, and per simulated rank the steps received so far."""

    __slots__ = ("pieces", "got", "early", "finished", "event")

    def __init__(self, pieces: list[int], ranks: int, event: simpy.Event):
        self.pieces = pieces
        self.got = [0] * ranks  # steps received in order (rank r has entered step got[r])
        self.early: set[tuple[int, int]] = set()  # (rank, step) received before an earlier step
        self.finished = 0
        self.event = event


class RingMesh:
    """`size` workers, rank r on GPU r of a full mesh (or ring) whose links all have `bandwidth` (bytes/s) and
    `latency` (s), under `options`; `run("all_reduce", nbytes, algo="ring")` as on a `Communicator` (the
    only call it takes), on `sim`'s clock. `bytes_sent` sums the transfers finished so far."""

    def __init__(self, sim, size: int, bandwidth: float, latency: float, options: NetworkOptions | None = None):
        if size < 2:
            raise ValueError("a ring needs at least 2 ranks")
        options = options or NetworkOptions()
        if options.endpoint_rate_cap is not None:
            bandwidth = min(bandwidth, options.endpoint_rate_cap)  # a rank sends on its one ring link only
        self.sim, self.size = sim, size
        self.name, self.job = "ring", ""  # as a Communicator's: the group its program calls name
        self.nodes = sim.topology.gpus[:size]  # rank r's node, for the program that runs on it
        self.bandwidth = float(bandwidth)
        self.cap = float(options.flow_cap(latency))
        self.delay = float(latency) + options.overhead  # last byte out -> arrival
        self.bytes_sent = 0  # bytes of finished transfers (all ranks), as the transfers table would sum
        self._m = 1  # simulated links: 1 while the ring is symmetric, then `size`
        self._virtual = [0.0]  # per link: service each of its flows has had since the link was created
        self._clock = [0.0]  # per link: when _virtual was last brought up to date
        self._flows: list[list] = [[]]  # per link: heap of [finish tag, seq, collective, step, bytes]
        self._gen = [0]  # per link: generation of its scheduled drain (older ones are stale)
        self._events: list[tuple] = []  # heap of (time, seq, kind, a, b, c)
        self._seq = 0
        self._wake_at = math.inf

    # -- the Communicator interface ---------------------------------------------------------------

    def run(self, op: str, nbytes: int, *, algo: str = "ring", label: str = "") -> simpy.Event:
        """Start a ring all-reduce of `nbytes` now; the event fires with its end time."""
        if op != "all_reduce" or algo != "ring":
            raise ValueError(f"RingMesh runs ring all-reduces only, not {op}/{algo}")
        now = self.sim.env.now
        self._process(now, ahead=False)  # anything due by this instant has happened
        pieces = [int(p) for p in split_bytes(nbytes, self.size)]
        if self._m == 1 and len(set(pieces)) > 1:
            self._expand()
        event = self.sim.env.event()
        coll = _Collective(pieces, self._m, event)
        for r in range(self._m):
            self._send(coll, r, 0, now)
        self._process(now, ahead=False)
        self._arm()
        return event

    # -- internals (the hot path: plain lists, few calls) ----------------------------------------

    def _advance(self, link: int, t: float) -> None:
        """Bring the link's per-flow service up to `t` (at its present rate)."""
        k = len(self._flows[link])
        if k and t > self._clock[link]:
            self._virtual[link] += (t - self._clock[link]) * min(self.cap, self.bandwidth / k)
        self._clock[link] = t

    def _reschedule(self, link: int) -> None:
        """Schedule the link's next drain at its present rates (the previous one goes stale)."""
        gen = self._gen[link] = self._gen[link] + 1
        flows = self._flows[link]
        if flows:
            rate = min(self.cap, self.bandwidth / len(flows))
            due = self._clock[link] + max(flows[0][0] - self._virtual[link], 0.0) / rate
            self._seq += 1
            heapq.heappush(self._events, (due, self._seq, _DONE, link, gen, None))

    def _send(self, coll: _Collective, rank: int, step: int, now: float) -> None:
        """Rank `rank` (a simulated link) enters `step` and sends its piece on its link."""
        nbytes = coll.pieces[(rank - step) % self.size]
        self._seq += 1
        if nbytes == 0:  # nothing to move: it drains at once
            heapq.heappush(self._events, (now + self.delay, self._seq, _ARRIVE, coll, (rank + 1) % self._m, step))
            return
        self._advance(rank, now)
        heapq.heappush(self._flows[rank], [self._virtual[rank] + nbytes, self._seq, coll, step, nbytes])
        self._reschedule(rank)

    def _drain(self, link: int, now: float) -> None:
        """The link's first flow has drained (and any other within the fluid model's tolerance)."""
        self._advance(link, now)
        flows = self._flows[link]
        virtual = self._virtual[link]
        slack = min(self.cap, self.bandwidth / len(flows)) * FINISH_CLOCK * now
        done = [heapq.heappop(flows)]
        while flows and flows[0][0] - virtual <= max(FINISH_REL * flows[0][4], slack):
            done.append(heapq.heappop(flows))
        self._reschedule(link)
        weight = self.size // self._m  # transfers one simulated link stands for
        receiver = (link + 1) % self._m
        for _tag, _seq, coll, step, nbytes in done:
            self.bytes_sent += weight * nbytes
            if self.delay:
                self._seq += 1
                heapq.heappush(self._events, (now + self.delay, self._seq, _ARRIVE, coll, receiver, step))
            else:
                self._arrive(coll, receiver, step, now)

    def _arrive(self, coll: _Collective, rank: int, step: int, now: float) -> None:
        """`rank` received its step-`step` piece; it enters every step it now may."""
        if step != coll.got[rank]:
            coll.early.add((rank, step))
            return
        last = 2 * (self.size - 1)
        while True:
            s = coll.got[rank] = coll.got[rank] + 1
            if s == last:
                coll.finished += 1
                if coll.finished == self._m:
                    self._finish(coll, now)
                return
            self._send(coll, rank, s, now)
            if (rank, s) not in coll.early:
                return
            coll.early.discard((rank, s))

    def _finish(self, coll: _Collective, t: float) -> None:
        """The all-reduce ended at `t` (not before now): its event fires at `t` on the SimPy clock."""
        env = self.sim.env
        if t <= env.now:
            coll.event.succeed(t)
        else:
            env.timeout(t - env.now).callbacks.append(lambda _e: coll.event.succeed(t))

    def _process(self, now: float, ahead: bool) -> None:
        """Handle the internal events due at or before `now`; `ahead` (from the wake, which runs after
        everything else at this instant) also those before the next SimPy event: nothing can start an
        all-reduce before that event, and an all-reduce that ends schedules one."""
        events = self._events
        env = self.sim.env
        while events and (events[0][0] <= now or (ahead and events[0][0] < env.peek())):
            t, _seq, kind, a, b, c = heapq.heappop(events)
            if kind == _DONE:
                if b == self._gen[a]:
                    self._drain(a, t)
            else:
                self._arrive(a, b, c, t)

    def _arm(self) -> None:
        """Make sure the SimPy clock stops at the next internal event (after that instant's other events)."""
        events = self._events
        while events and events[0][2] == _DONE and events[0][4] != self._gen[events[0][3]]:
            heapq.heappop(events)  # stale drains
        if events and events[0][0] < self._wake_at:
            env = self.sim.env
            self._wake_at = events[0][0]
            wake = simpy.Event(env)
            wake._ok, wake._value = True, self._wake_at  # triggered by hand: succeed() would be NORMAL priority
            wake.callbacks.append(self._on_wake)
            env.schedule(wake, priority=LATE, delay=self._wake_at - env.now)

    def _on_wake(self, event: simpy.Event) -> None:
        if event.value == self._wake_at:  # the latest wake (an earlier-armed later one may still come)
            self._wake_at = math.inf
        self._process(self.sim.env.now, ahead=True)
        self._arm()

    def _expand(self) -> None:
        """From one link standing for all to one per rank: copy the symmetric state n times."""
        n = self.size
        now = self.sim.env.now
        self._advance(0, now)
        heap = self._flows[0]
        self._virtual = [self._virtual[0]] * n
        self._clock = [self._clock[0]] * n
        self._flows = [[list(f) for f in heap] for _ in range(n)]
        self._gen = [0] * n
        pending = [e for e in self._events if e[2] == _ARRIVE]
        self._events = []
        self._m = n
        colls = {id(f[2]): f[2] for f in heap} | {id(e[3]): e[3] for e in pending}
        for coll in colls.values():
            coll.got = coll.got * n
            coll.early = {(r, s) for (_r, s) in coll.early for r in range(n)}
            coll.finished *= n
        for t, _seq, _kind, coll, _rank, step in pending:
            for r in range(n):
                self._seq += 1
                heapq.heappush(self._events, (t, self._seq, _ARRIVE, coll, r, step))
        for link in range(n):
            self._reschedule(link)

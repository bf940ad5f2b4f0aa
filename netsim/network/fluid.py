"""The fluid model: flow-level max-min fair sharing, rates recomputed only when flows start or end.

Active flows live in parallel numpy arrays (remaining bytes, rate). Transfers that
start at one instant are batched: the first one schedules a settle event at a
priority below every ordinary event of that instant, so all of them join one rate
computation. Flows that drain at the same instant finish in the same settle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from netsim.network.base import NetworkModel
from netsim.network.max_min import max_min_rates
from netsim.routing import Route

LATE = 2  # SimPy priority after NORMAL (1): runs once everything else at this instant has run
FINISH_REL = 1e-12  # a flow with less than this fraction of its bytes left is done
FINISH_CLOCK = 1e-13  # ... or with less than this fraction of the clock left to run


@dataclass(eq=False)
class _Flow:
    tid: int
    src: int
    dst: int
    nbytes: int
    start: float
    route: Route
    event: simpy.Event
    tag: str


class FluidNetwork(NetworkModel):
    """Flow-level model: full-duplex links shared max-min fairly, latency added on arrival."""

    name = "fluid"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        topo = self.topo
        self._flows: list[_Flow] = []
        self._remaining = np.zeros(0)
        self._rates = np.zeros(0)
        self._pending: list[_Flow] = []
        self._settle_scheduled = False
        self._last = 0.0
        self._generation = 0
        self._load_links = np.zeros(0, dtype=np.int64)
        self._load = np.zeros(0)
        # Endpoint caps are virtual links, one per sending node, after the real ones.
        self._capacity = topo.capacity
        if self.options.endpoint_rate_cap is not None:
            self._capacity = np.concatenate([topo.capacity, np.full(topo.num_nodes, self.options.endpoint_rate_cap)])
        self.rate_computations = 0

    @property
    def active(self) -> int:
        return len(self._flows) + len(self._pending)

    def _start(self, tid: int, src: int, dst: int, nbytes: int, route: Route, event: simpy.Event, tag: str) -> None:
        flow = _Flow(tid, src, dst, nbytes, self.env.now, route, event, tag)
        if nbytes == 0:
            self._finish(tid, src, dst, 0, flow.start, flow.start, route, event, tag)
            return
        self._pending.append(flow)
        if not self._settle_scheduled:
            self._settle_scheduled = True
            # Event.succeed() would schedule at NORMAL priority; set it triggered by hand instead.
            ev = simpy.Event(self.env)
            ev._ok, ev._value = True, None
            ev.callbacks.append(self._on_settle)
            self.env.schedule(ev, priority=LATE)

    def _on_settle(self, _event: simpy.Event) -> None:
        self._settle_scheduled = False
        self._settle()

    def _on_wake(self, event: simpy.Event) -> None:
        if event.value == self._generation:
            self._settle()

    def _advance(self, now: float) -> None:
        dt = now - self._last
        if dt > 0 and len(self._flows):
            self._remaining -= self._rates * dt
            if self.meter is not None:
                self.meter.add(self._last, now, self._load_links, self._load)
        self._last = now

    def _settle(self) -> None:
        now = self.env.now
        self._advance(now)
        changed = bool(self._pending)
        if len(self._flows):
            sizes = np.fromiter((f.nbytes for f in self._flows), dtype=np.float64, count=len(self._flows))
            done = self._remaining <= np.maximum(FINISH_REL * sizes, self._rates * (FINISH_CLOCK * now))
            if done.any():
                changed = True
                keep = ~done
                finished = [f for f, d in zip(self._flows, done.tolist()) if d]
                self._flows = [f for f, k in zip(self._flows, keep.tolist()) if k]
                self._remaining = self._remaining[keep]
                for f in finished:
                    self._finish(f.tid, f.src, f.dst, f.nbytes, f.start, now, f.route, f.event, f.tag)
        if self._pending:
            self._flows.extend(self._pending)
            self._remaining = np.concatenate([self._remaining, [float(f.nbytes) for f in self._pending]])
            self._pending = []
        if changed:
            self._recompute()
        self._generation += 1
        if self._flows:
            ttf = float(np.min(self._remaining / self._rates))
            wake = self.env.timeout(max(ttf, 0.0), value=self._generation)
            wake.callbacks.append(self._on_wake)

    def _recompute(self) -> None:
        flows = self._flows
        if not flows:
            self._rates = np.zeros(0)
            self._load_links = np.zeros(0, dtype=np.int64)
            self._load = np.zeros(0)
            return
        self.rate_computations += 1
        counts = np.fromiter((len(f.route.links) for f in flows), dtype=np.int64, count=len(flows))
        links = np.concatenate([f.route.links for f in flows])
        coef = np.concatenate([f.route.coef for f in flows])
        owner = np.repeat(np.arange(len(flows)), counts)
        if self.options.endpoint_rate_cap is not None:
            srcs = np.fromiter((f.src for f in flows), dtype=np.int64, count=len(flows))
            links = np.concatenate([links, self.topo.num_links + srcs])
            coef = np.concatenate([coef, np.ones(len(flows))])
            owner = np.concatenate([owner, np.arange(len(flows))])
        used, local = np.unique(links, return_inverse=True)
        cap = None
        if self.options.flow_rate_cap is not None:
            cap = np.full(len(flows), self.options.flow_rate_cap)
        rates, load = max_min_rates(owner, local, coef, self._capacity[used], len(flows), cap)
        self._rates = rates
        real = used < self.topo.num_links
        self._load_links, self._load = used[real], load[real]

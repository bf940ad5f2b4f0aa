"""The analytic model: alpha-beta per transfer, no contention — the reference tier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.network.base import ARRIVAL_TOLERANCE, Batch, NetworkModel


@dataclass(eq=False)
class _Draining:
    """A batch whose flows have not all drained: per flow its rate since `since`, bytes left then,
    and the time its last byte leaves."""

    batch: Batch
    offsets: np.ndarray  # flow f's entries are block.links[offsets[f]:offsets[f + 1]]
    links: list  # per flow: its links now (a failure moves a flow to a working path)
    coef: list
    rate: np.ndarray
    since: np.ndarray
    left: np.ndarray
    drained: np.ndarray
    done: np.ndarray  # flows already reported drained
    parts: np.ndarray  # per transfer: flows still going
    generation: int = 0


class AnalyticNetwork(NetworkModel):
    """Each flow takes its bytes / (its bottleneck rate alone); a transfer arrives overhead + path
    latency after its last flow drained. No sharing at all — not even among one step's own transfers
    out of one NIC (a direct all-to-all, the parallel chunks of one send): exact for schedules whose
    transfers in flight never share a link (rings, chains), and a lower bound on time elsewhere. There is no contention, but faults act: when a link fails,
    flows still draining through it move to a working path of their policy; when a link degrades,
    flows through it continue at their new bottleneck rate with the bytes they have left."""

    name = "analytic"
    contended = False  # transfers sharing a link do not slow each other
    help = "alpha-beta: each transfer at its bottleneck rate as if alone (no contention), plus latency"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._draining: dict[int, _Draining] = {}


    def _start(self, batch: Batch) -> None:
        now = self.env.now
        block = batch.block
        rate = self._solo_rates(batch)
        offsets = np.concatenate([[0], np.cumsum(block.counts)])
        n = len(block.owner)
        links = [block.links[offsets[f]:offsets[f + 1]] for f in range(n)]
        coef = [block.coef[offsets[f]:offsets[f + 1]] for f in range(n)]
        left = batch.flow_bytes.astype(np.float64)
        state = _Draining(batch, offsets, links, coef, rate, np.full(n, float(now)), left, now + left / rate,
                          np.zeros(n, dtype=bool), np.bincount(block.owner, minlength=len(batch.src)))
        self._draining[id(state)] = state
        self._wake(state)

    def _wake(self, state: _Draining) -> None:
        """Schedule the next drain of `state`: flows draining within a whisker of each other together."""
        state.generation += 1
        pending = np.flatnonzero(~state.done)
        if not len(pending):
            del self._draining[id(state)]
            return
        times = state.drained[pending]
        first = float(times.min())
        group = pending[times <= first + ARRIVAL_TOLERANCE * max(abs(first), 1e-9)]
        at = float(state.drained[group].max())
        generation = state.generation
        timer = self.env.timeout(max(at - self.env.now, 0.0))
        timer.callbacks.append(lambda _e: self._drain(state, group, generation))

    def _drain(self, state: _Draining, flows: np.ndarray, generation: int) -> None:
        if generation != state.generation:
            return  # a fault rescheduled this batch
        self._meter(state, flows)
        state.done[flows] = True
        self._flows_drained(state.batch, flows, state.drained[flows], state.parts)
        self._wake(state)

    def _meter(self, state: _Draining, flows: np.ndarray) -> None:
        """Record what `flows` carried from `since` to their drain (or to now, at a fault)."""
        if self.meter is None:
            return
        for f in flows.tolist():
            end = min(float(state.drained[f]), self.env.now)
            if state.left[f] > 0:
                self.meter.add(float(state.since[f]), end, state.links[f], state.coef[f] * state.rate[f])

    def fail_links(self, links: list[int]) -> None:
        super().fail_links(links)
        dead = set(int(l) for l in links)
        self._refit(lambda s, f: bool(dead.intersection(s.links[f].tolist())), reroute=True)

    def degrade_links(self, links: list[int], factor: float) -> None:
        super().degrade_links(links, factor)
        hit = set(int(l) for l in links)
        self._refit(lambda s, f: bool(hit.intersection(s.links[f].tolist())), reroute=False)

    def _refit(self, touched, *, reroute: bool) -> None:
        """Flows still draining whose links changed continue from now with the bytes they have left."""
        now = self.env.now
        for state in list(self._draining.values()):
            flows = [f for f in np.flatnonzero(~state.done & (state.drained > now)).tolist() if touched(state, f)]
            if not flows:
                continue
            chosen = np.asarray(flows, dtype=np.int64)
            self._meter(state, chosen)
            block, batch = state.batch.block, state.batch
            for f in flows:
                state.left[f] = state.rate[f] * (state.drained[f] - now)
                state.since[f] = now
                if reroute:
                    i = int(block.owner[f])
                    route = self.router.route(int(batch.src[i]), int(batch.dst[i]), batch.key)
                    j = int(block.path[f])
                    if route.independent and 0 <= j < len(route.paths):
                        state.links[f] = np.asarray(route.paths[j], dtype=np.int64)
                        state.coef[f] = np.ones(len(state.links[f]))
                    else:
                        state.links[f], state.coef[f] = route.links, route.coef
                rate = float(np.min(self._capacity[state.links[f]] / state.coef[f]))
                rate = min(rate, float(block.cap[f]))
                if self.options.endpoint_rate_cap is not None:
                    rate = min(rate, self.options.endpoint_rate_cap)
                state.rate[f] = rate
                state.drained[f] = now + state.left[f] / rate
            self._wake(state)

"""The analytic model: alpha-beta per transfer, no contention — the reference tier."""

from __future__ import annotations

import simpy

from netsim.network.base import NetworkModel
from netsim.routing import Route


class AnalyticNetwork(NetworkModel):
    """Each transfer takes overhead + path latency + bytes / (its bottleneck rate alone)."""

    name = "analytic"

    def _start(self, tid: int, src: int, dst: int, nbytes: int, route: Route, event: simpy.Event, tag: str) -> None:
        now = self.env.now
        rate = self._solo_rate(route)
        drained = now + nbytes / rate
        if self.meter is not None and nbytes:
            self.meter.add(now, drained, route.links, route.coef * rate)
        self._finish(tid, src, dst, nbytes, now, drained, route, event, tag)

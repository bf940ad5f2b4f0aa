"""`c4p` and `c4p:S`: C4P-style traffic planning (Alibaba's C4, its path-planning part).

Collective traffic is a few large, long-lived, predictable connections, so a central planner
can place them. Each connection (source, destination, communicator key, stripe) is given a
path when it is first used — at communicator set-up — choosing, among the working
equal-cost paths, the one whose busiest fabric link carries the fewest planned connections
(then the least total), so spine links stay evenly loaded across every job on the fabric.
When a link fails, the connections through it are re-planned. With `c4p:S`, every transfer
is striped over S connections, each its own subflow, with shares in proportion to the
throughput each connection was last measured at (equal until measured), so a slowed path
gets less.

Not modelled: the two bonded ports of a NIC to dual ToRs (netsim's hosts have one port per NIC).
"""

from __future__ import annotations

import numpy as np

from netsim.errors import ConfigError
from netsim.routing.policy import Policy, count_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology

SMOOTHING = 0.5  # weight of the newest throughput measurement


class C4P(Policy):
    """Central planner: each connection placed on the least-loaded working path; `stripes` per transfer."""

    def __init__(self, topo: Topology, cache: PathCache, stripes: int = 1):
        self.topo, self.cache, self.stripes = topo, cache, stripes
        self.name = "c4p" if stripes == 1 else f"c4p:{stripes}"
        endpoint = np.isin(np.asarray(topo.node_kind), ["gpu", "nic", "nvswitch"])
        self.fabric = ~(endpoint[topo.link_src] | endpoint[topo.link_dst])
        self.load = np.zeros(topo.num_links, dtype=np.int64)  # planned connections per fabric link
        self.plan: dict[tuple, tuple[int, ...]] = {}
        self.rate: dict[tuple, float] = {}
        self.learns = stripes > 1  # only striped shares change with measurements
        self.places_in_order = True  # a new connection goes where the load is least when it is first seen

    def _fabric_links(self, path: tuple[int, ...]) -> np.ndarray:
        links = np.asarray(path, dtype=np.int64)
        return links[self.fabric[links]]

    def _place(self, src: int, dst: int) -> tuple[int, ...]:
        paths = self.cache.paths(src, dst)
        best, best_score = paths[0], None
        for p in paths:
            used = self.load[self._fabric_links(p)]
            score = (int(used.max()) if len(used) else 0, int(used.sum()))
            if best_score is None or score < best_score:
                best, best_score = p, score
        self.load[self._fabric_links(best)] += 1
        return best

    def route(self, src: int, dst: int, key: tuple) -> Route:
        conns = [(src, dst, key, j) for j in range(self.stripes)]
        for conn in conns:
            if conn not in self.plan:
                self.plan[conn] = self._place(src, dst)
        paths = [self.plan[c] for c in conns]
        if self.stripes == 1:
            return Route.of(self.topo, paths, [1.0])
        known = [self.rate[c] for c in conns if c in self.rate]
        default = float(np.mean(known)) if known else 1.0
        rates = np.array([self.rate.get(c, default) for c in conns])
        return Route.of(self.topo, paths, list(rates / rates.sum()), independent=True)

    def observe(self, src: int, dst: int, key: tuple, route: Route, path: int, seconds: float, nbytes: int) -> None:
        if seconds <= 0 or nbytes <= 0:
            return
        """Smooth the connection's measured throughput into its share of later transfers."""
        conn = (src, dst, key, max(path, 0))
        measured = nbytes / seconds
        old = self.rate.get(conn)
        self.rate[conn] = measured if old is None else SMOOTHING * measured + (1 - SMOOTHING) * old

    def links_changed(self) -> None:
        """Re-plan (on next use) every connection whose path crosses a failed link."""
        down = self.cache.down
        for conn, path in list(self.plan.items()):
            if not down.isdisjoint(path):
                self.load[self._fabric_links(path)] -= 1
                del self.plan[conn]
                self.rate.pop(conn, None)


@register("c4p", "C4P planning: each connection on the least-loaded working path, re-planned on "
                 "failures; c4p:S stripes every transfer over S connections by measured throughput (runs on the "
                 "reference executor, not the compiled loop: a route depends on the order connections start)")
def _c4p(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    stripes = count_argument("c4p", arg)
    if stripes == "min":
        raise ConfigError("routing policy c4p takes a number of stripes (c4p, c4p:4)", field="routing")
    return C4P(topo, cache, int(stripes))

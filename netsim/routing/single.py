"""`single`: one fixed path per pair of nodes, whatever the key — static routing, the worst case."""

from __future__ import annotations

from netsim.routing.policy import Policy, no_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class Single(Policy):
    """One fixed path per (src, dst) pair, whatever the key: the first equal-cost path."""

    name = "single"

    def __init__(self, topo: Topology, cache: PathCache):
        self.topo, self.cache = topo, cache

    def route(self, src: int, dst: int, key: tuple) -> Route:
        return Route.of(self.topo, [self.cache.paths(src, dst)[0]], [1.0])


@register("single", "one fixed path per pair of nodes (the first equal-cost path), whatever the flow")
def _single(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    no_argument("single", arg)
    return Single(topo, cache)

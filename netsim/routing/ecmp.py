"""`ecmp`: per-flow ECMP, the default policy.

Every switch hashes the flow (source, destination, key, the switch itself) with the
simulation's seed onto one of its equal-cost next hops, so one transfer takes one path and
different flows between the same GPUs spread over the fabric only as far as the hash
spreads them (collisions included: the effect the other policies are compared against).
"""

from __future__ import annotations

from netsim.routing.hashing import flow_hash
from netsim.routing.policy import Policy, no_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class Ecmp(Policy):
    """Per-flow ECMP: every switch hashes the flow key onto one of its equal-cost next hops."""

    name = "ecmp"

    def __init__(self, topo: Topology, cache: PathCache, seed: int):
        self.topo, self.cache, self.seed = topo, cache, seed
        self._link_dst = topo.link_dst.tolist()

    def path(self, src: int, dst: int, key: tuple) -> tuple[int, ...]:
        """The one path the hash picks for this flow."""
        if self.cache.down:  # failed next hops leave the groups: hash over the working paths
            live = self.cache.paths(src, dst)
            return live[flow_hash(self.seed, src, dst, key) % len(live)]
        hops = self.cache.dag(src, dst).hops
        link_dst = self._link_dst
        node, path = src, []
        while node != dst:
            options = hops.list_of(node)
            link = options[flow_hash(self.seed, src, dst, key, node) % len(options)] if len(options) > 1 else options[0]
            path.append(link)
            node = link_dst[link]
        return tuple(path)

    def route(self, src: int, dst: int, key: tuple) -> Route:
        return Route.of(self.topo, [self.path(src, dst, key)], [1.0])


@register("ecmp", "per-flow ECMP: each switch hashes the flow onto one of its equal-cost next hops")
def _ecmp(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    no_argument("ecmp", arg)
    return Ecmp(topo, cache, seed)

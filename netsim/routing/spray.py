"""`spray`: ideal packet spraying, the yardstick of the other policies.

Every transfer is one flow split in equal fixed shares over all working equal-cost paths
(no reordering cost, no hash collisions): on a leaf-spine it meets the lower bound of the
busiest fabric link, D.f/s for D flows of f bytes leaving a leaf over s paths.
"""

from __future__ import annotations

from netsim.routing.policy import Policy, no_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class Spray(Policy):
    """Ideal packet spraying: every transfer split equally over all equal-cost paths."""

    name = "spray"

    def __init__(self, topo: Topology, cache: PathCache):
        self.topo, self.cache = topo, cache

    def route(self, src: int, dst: int, key: tuple) -> Route:
        paths = self.cache.paths(src, dst)
        return Route.of(self.topo, paths, [1.0 / len(paths)] * len(paths))


@register("spray", "ideal packet spraying: every transfer split equally over all equal-cost paths")
def _spray(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    no_argument("spray", arg)
    return Spray(topo, cache)

"""`split:K` and `split:min`: every flow cut into subflows at the sender.

`split:K` cuts each transfer into K equal subflows, each hashed by ECMP on its own (with its
own rate, the transfer ending with its last subflow): collisions average out as K grows.
`split:min` plans instead of hashing: it is `planned:min`, the fewest equal subflows that
let an edge-colouring plan bring the busiest leaf uplink down to spraying's load (see
`netsim.routing.planned`).
"""

from __future__ import annotations

from netsim.errors import ConfigError
from netsim.routing.ecmp import Ecmp
from netsim.routing.planned import Planned
from netsim.routing.policy import Policy, count_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class SplitEcmp(Policy):
    """`split:K`: each flow cut into K equal subflows at the sender, each hashed by ECMP on its own."""

    def __init__(self, ecmp: Ecmp, k: int):
        self.ecmp, self.k, self.name = ecmp, k, f"split:{k}"

    def route(self, src: int, dst: int, key: tuple) -> Route:
        paths = [self.ecmp.path(src, dst, key + ("sub", j)) for j in range(self.k)]
        return Route.of(self.ecmp.topo, paths, [1.0 / self.k] * self.k, independent=True)


@register("split", "split:K cuts every flow into K subflows, each ECMP-hashed on its own; "
                   "split:min plans the fewest subflows that match spraying (as planned:min, on the reference "
                   "executor)")
def _split(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    if arg is None:
        raise ConfigError("routing policy 'split' needs a number of subflows or 'min' (split:4, split:min)",
                          field="routing")
    count = count_argument("split", arg)
    if count == "min":
        return Planned(topo, cache, "min", name="split:min", seed=seed)
    return SplitEcmp(Ecmp(topo, cache, seed), int(count))

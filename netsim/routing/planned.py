"""`planned`, `planned:m` and `split:min`: planned single-path routing and minimal splitting.

`planned` routes the inter-leaf flows of one collective step (a batch of transfers issued
together) by an equitable edge colouring of the leaf-to-leaf flow multigraph with s colours,
s = the equal-cost paths between two leaves (spines x parallel links), colour c = path c.
Every leaf uplink and downlink then carries at most ceil(D/s) flows, D the most inter-leaf
flows leaving or entering one leaf. The colours are numbered from an offset drawn from the
communicator's key, so plans of different jobs (which do not know of each other) do not
all start on the same spine. `planned:m` first splits every flow into m equal
subflows; `split:min` (= `planned:min`) uses the minimal m* = s / gcd(s, D), which brings the
maximum load down to spraying's D.f/s (f the bytes of one flow): with m subflows each leaf
link carries at most ceil(mD/s) subflows of f/m bytes, and mD/s is a whole number exactly
when m is a multiple of s / gcd(s, D).

Transfers within a leaf (or between nodes without a leaf) take their first equal-cost path.
"""

from __future__ import annotations

from collections import Counter
from math import gcd

import numpy as np

from netsim.errors import ConfigError
from netsim.routing.colouring import equitable_colouring
from netsim.routing.hashing import flow_hash
from netsim.routing.policy import Policy, count_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


def minimal_split(spines: int, degree: int) -> int:
    """m* = s / gcd(s, D): the fewest equal subflows per flow that let planning match spraying."""
    return spines // gcd(spines, degree) if degree else 1


class Planned(Policy):
    """Equitable-colouring planner for the flows of each batch; `subflows` is an int or 'min'."""

    def __init__(self, topo: Topology, cache: PathCache, subflows: int | str = 1, name: str = "planned",
                 seed: int = 0):
        self.topo, self.cache, self.subflows, self.name, self.seed = topo, cache, subflows, name, seed

    def route(self, src: int, dst: int, key: tuple) -> Route:
        """A transfer on its own is a batch of one."""
        return self.route_batch([src], [dst], key)[0]

    def route_batch(self, src: list[int], dst: list[int], key: tuple) -> list[Route]:
        topo, cache = self.topo, self.cache
        leaf = topo.attrs["leaf"]
        ls, ld = leaf[np.asarray(src)], leaf[np.asarray(dst)]
        routes: list[Route | None] = [None] * len(src)
        inter = [i for i in range(len(src)) if ls[i] >= 0 and ld[i] >= 0 and ls[i] != ld[i]]
        for i in range(len(src)):
            if routes[i] is None and i not in set(inter):
                routes[i] = Route.of(topo, [cache.paths(src[i], dst[i])[0]], [1.0])
        if not inter:
            return routes  # type: ignore[return-value]
        paths = [cache.paths(src[i], dst[i]) for i in inter]
        counts = {len(p) for p in paths}
        if len(counts) != 1:
            raise ConfigError(f"routing {self.name!r} needs the same number of equal-cost paths between every "
                              f"pair of leaves (found {sorted(counts)}); use it on a leaf-spine", field="routing")
        s = counts.pop()
        out_deg = Counter(int(ls[i]) for i in inter)
        in_deg = Counter(int(ld[i]) for i in inter)
        degree = max(max(out_deg.values()), max(in_deg.values()))
        m = minimal_split(s, degree) if self.subflows == "min" else int(self.subflows)
        edges = [(int(ls[i]), int(ld[i])) for i in inter for _ in range(m)]
        # each communicator (key) numbers the paths from its own offset: a plan knows only its own
        # step, and without this every job's plan would start filling the fabric at path 0
        shift = flow_hash(self.seed, key) % s
        colours = [(c + shift) % s for c in equitable_colouring(edges, s)]
        for k, i in enumerate(inter):
            use = Counter(colours[k * m:(k + 1) * m])
            chosen = sorted(use)
            routes[i] = Route.of(topo, [paths[k][c] for c in chosen], [use[c] / m for c in chosen])
        return routes  # type: ignore[return-value]


@register("planned", "plans each collective step by edge colouring: one path per flow, or planned:m "
                     "subflows per flow, planned:min the fewest that match spraying (runs on the reference "
                     "executor, not the compiled loop: it plans each step's batch as it is sent)")
def _planned(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    count = count_argument("planned", arg)
    return Planned(topo, cache, count, name="planned" if arg is None else f"planned:{arg}", seed=seed)

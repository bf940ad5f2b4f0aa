"""The `Router`: one policy over one topology, with routes cached per (src, dst, key)."""

from __future__ import annotations

import numpy as np

from netsim.routing.policy import Policy, make_policy
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class Router:
    """`route(src, dst, key)` -> `Route`; `paths(...)` gives the same as [(path, weight)].

    The one caller of the `Policy` hooks: it caches the policy's routes until links change,
    and passes on batches, link changes and (for policies that learn) measurements.
    """

    def __init__(self, topo: Topology, policy: str = "ecmp", seed: int = 0, cache: PathCache | None = None):
        self.topo = topo
        self.cache = cache or PathCache(topo)
        self.policy = make_policy(policy, topo, self.cache, seed)
        # a policy without its own `route_batch` routes transfer by transfer: then through the cache
        self._plans_batches = type(self.policy).route_batch is not Policy.route_batch
        self._routes: dict[tuple[int, int, tuple], Route] = {}

    def route(self, src: int, dst: int, key: tuple = ()) -> Route:
        if self.policy.learns:  # its answer changes with what it measures: ask every time
            return self.policy.route(src, dst, key)
        k = (src, dst, key)
        r = self._routes.get(k)
        if r is None:
            r = self._routes[k] = self.policy.route(src, dst, key)
        return r

    def set_down(self, links: set[int]) -> None:
        """Mark links failed (or working again): routes are recomputed from now on."""
        self.cache.down = set(links)
        self._routes.clear()
        self.policy.links_changed()

    def observe(self, src: int, dst: int, key: tuple, route: Route, path: int, seconds: float, nbytes: int) -> None:
        """Tell a policy that learns from measurements (C4P) how one flow of a transfer went."""
        if self.policy.learns:
            self.policy.observe(src, dst, key, route, path, seconds, nbytes)

    @property
    def learns(self) -> bool:
        """Whether the policy's answers change with what it measures (then nothing is cached)."""
        return self.policy.learns

    @property
    def routes_each_transfer(self) -> bool:
        """Whether a transfer's route depends only on its own (src, dst, key): no batch planning, no
        learning, no placement in order of arrival (then routes may be looked up ahead of time, in any
        grouping)."""
        return not (self.policy.learns or self._plans_batches or self.policy.places_in_order)

    def single_paths(self, src: np.ndarray, dst: np.ndarray, key: tuple = ()
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """A batch's routes as arrays (links, counts, latency) when the policy offers them (`Policy.single_paths`:
        one path per transfer, no link down, nothing learned or planned); else None."""
        if self.cache.down or not self.routes_each_transfer:
            return None
        return self.policy.single_paths(src, dst, key)

    def route_batch(self, src: list[int], dst: list[int], key: tuple = ()) -> list[Route]:
        """Routes for transfers issued together; planners see the whole batch (a collective step)."""
        if self._plans_batches:
            return self.policy.route_batch(src, dst, key)
        route = self.route
        return [route(s, d, key) for s, d in zip(src, dst)]

    def paths(self, src: int, dst: int, key: tuple = ()) -> list[tuple[tuple[int, ...], float]]:
        r = self.route(src, dst, key)
        return list(zip(r.paths, r.weights))

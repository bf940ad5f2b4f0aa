"""`Policy`, the base class of routing policies, and the registry that builds them by name.

A scenario or the CLI names a policy as ``name`` or ``name:arg`` (``ecmp``, ``split:4``,
``c4p:2``); `make_policy` finds the factory registered under ``name`` and hands it the
argument. Adding a policy means writing one module that subclasses `Policy`, registering a
factory with `register` (name and one line of help), and importing the module in
`netsim.routing`'s ``__init__``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from netsim.errors import ConfigError
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class Policy:
    """Base class of routing policies: map a transfer from `src` to `dst` to a `Route`.

    A policy is built once per `Router` (one per simulation) by the factory it was registered
    with, and sees the topology and the router's `PathCache`, whose ``down`` set holds the
    failed links (``cache.paths`` leaves them out). The `Router` is the only caller of the
    hooks below; it caches routes per (src, dst, key) unless the policy `learns`.

    Subclasses must implement `route`, and can customise the policy by:

    - `route_batch`, to see every transfer of a collective step at once (planners);
    - `links_changed`, to drop state that depends on links that failed or came back;
    - `learns` and `observe`, to adapt routes to the throughput flows were measured at.

    The key is a tuple that identifies the flow beyond its end points: a communicator's
    (job, name), a port number, or ``()``. The same (src, dst, key) must give the same route
    unless the policy `learns` or links changed; that is what makes runs deterministic.
    """

    name: str = "policy"
    """The name the policy was asked for, with its argument (``split:4``): shown in results."""

    learns: bool = False
    """Whether routes change with what `observe` is told. When True the `Router` caches
    nothing (it asks `route` / `route_batch` for every transfer) and reports every drained
    flow to `observe`. An instance may set it (C4P learns only when striping)."""

    places_in_order: bool = False
    """Whether a route depends on which transfers were routed before it (C4P places each new
    connection on the least-loaded path at the moment it is first asked). Then routes must be asked
    for in the order the transfers start: network models never look them up ahead of time."""

    def route(self, src: int, dst: int, key: tuple) -> Route:
        """Route one transfer from node `src` to node `dst` (`src` != `dst`).

        This method needs to be implemented by subclasses. It must return a `Route` over
        paths from `src` to `dst` (tuples of link ids, normally taken from
        ``cache.paths(src, dst)``) with weights summing to 1; ``Route.of(topo, paths,
        weights, independent=...)`` builds one. It is called by the `Router` the first time
        a (src, dst, key) is seen after a change of links (then cached), or every time if the
        policy `learns`.
        """
        raise NotImplementedError(self)

    def route_batch(self, src: list[int], dst: list[int], key: tuple) -> list[Route]:
        """Route transfers issued at one instant under one key: a collective step.

        Transfer i goes from ``src[i]`` to ``dst[i]``; the method must return one `Route`
        per transfer, in the same order. It is called by `Router.route_batch` whenever a
        network model starts a batch (the model caches the routes of a batch it has seen).
        Planners override it to place the whole step at once (`planned` colours the step's
        inter-leaf flows). By default every transfer is routed on its own by `route`; for a
        policy that does not override this method the `Router` does that itself, through its
        route cache.
        """
        return [self.route(s, d, key) for s, d in zip(src, dst)]

    def links_changed(self) -> None:
        """Links failed or came back: ``cache.down`` holds the failed ones from now on.

        Called by `Router.set_down` after it has emptied its route cache, before the next
        route is asked for. A policy that keeps state built from paths (C4P's placed
        connections and link loads) drops or repairs it here; nothing needs returning.
        By default it does nothing: routes are computed afresh from ``cache.paths``.
        """

    def single_paths(self, src: np.ndarray, dst: np.ndarray, key: tuple
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Optional fast path: the routes of many transfers as arrays, for a policy whose every route
        is one path (weight 1) that depends only on (src, dst, key).

        Returns (links, counts, latency): transfer i's path is ``links[sum(counts[:i]):][:counts[i]]``,
        its link ids sorted ascending (as `Route.of` keeps them), and ``latency[i]`` equals
        `Route.latency` bit for bit — so the answer must be exactly what `route` would give. Called
        by `Router.single_paths` (network models ask it for a batch's routes before `route_batch`)
        while no link is down; by default it returns None: the routes come from `route`.
        """
        return None

    def observe(self, src: int, dst: int, key: tuple, route: Route, path: int, seconds: float, nbytes: int) -> None:
        """One flow of a transfer drained: `nbytes` moved in `seconds` from its start.

        `route` is the transfer's route and `path` the index of the flow's path in it (-1
        when the transfer was one flow split over all its paths in fixed shares). Called by
        the network model, through `Router.observe`, only when the policy `learns`, once per
        flow, at the instant its last byte left; nothing needs returning. By default it
        ignores the measurement.
        """


PolicyFactory = Callable[[Topology, PathCache, int, "str | None"], Policy]
"""Builds a policy: (topology, path cache, seed, argument after ``name:`` or None)."""


@dataclass(frozen=True)
class Registered:
    """A policy factory as registered: its name, what builds it, one line of help."""

    name: str
    factory: PolicyFactory
    help: str


POLICIES: dict[str, Registered] = {}


def register(name: str, help: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Decorator: make the factory (or `Policy` subclass taking the factory's arguments) available
    as routing policy `name`; `help` is the line that `--help` and error messages show."""
    if not name or ":" in name:
        raise ValueError(f"a policy name is a word without ':', got {name!r}")

    def wrap(factory: PolicyFactory) -> PolicyFactory:
        POLICIES[name] = Registered(name, factory, help)
        return factory

    return wrap


def policy_names() -> list[str]:
    """The registered policy names (without arguments), sorted."""
    return sorted(POLICIES)


def policy_help() -> dict[str, str]:
    """Policy name -> its one line of help, in `policy_names` order."""
    return {name: POLICIES[name].help for name in policy_names()}


def make_policy(spec: str, topo: Topology, cache: PathCache, seed: int) -> Policy:
    """Build the policy named by `spec` (``name`` or ``name:arg``) for `topo`."""
    name, _, arg = str(spec).partition(":")
    entry = POLICIES.get(name)
    if entry is None:
        raise ConfigError(f"unknown routing policy {spec!r} (known: {', '.join(policy_names())})", field="routing")
    return entry.factory(topo, cache, seed, arg or None)


def no_argument(name: str, arg: str | None) -> None:
    """For factories of policies without an argument: reject ``name:arg``."""
    if arg is not None:
        raise ConfigError(f"routing policy {name!r} takes no argument, got {name}:{arg}", field="routing")


MAX_SUBFLOWS = 256  # per transfer: far beyond any NIC's queue pairs, and each subflow costs the engine


def count_argument(name: str, arg: str | None) -> int | str:
    """The argument of ``name:K`` / ``name:min``: an int in 1..MAX_SUBFLOWS (1 when absent) or 'min'."""
    if arg == "min":
        return "min"
    try:
        value = int(arg) if arg is not None else 1
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_SUBFLOWS:
        raise ConfigError(f"routing policy {name}:{arg}: expected a number of subflows from 1 to {MAX_SUBFLOWS}, "
                          "or 'min'", field="routing")
    return value

"""Routing policies and their registry: `ecmp`, `spray`, `single`, `split:K`, `planned[:m]`, `split:min`,
`c4p[:S]`.

A policy maps (src, dst, key) to a `Route`. Later policies register under a name
(optionally with an argument, written ``name:arg``) and are picked from scenarios
and the CLI by that name.
"""

from __future__ import annotations

from typing import Callable, Protocol

from netsim.errors import ConfigError
from netsim.routing.hashing import flow_hash
from netsim.routing.c4p import C4P
from netsim.routing.planned import Planned
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology


class Policy(Protocol):
    name: str

    def route(self, src: int, dst: int, key: tuple) -> Route: ...


PolicyFactory = Callable[[Topology, PathCache, int, str | None], Policy]
_REGISTRY: dict[str, PolicyFactory] = {}


def register(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    def wrap(factory: PolicyFactory) -> PolicyFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def policy_names() -> list[str]:
    return sorted(_REGISTRY)


def make_policy(spec: str, topo: Topology, cache: PathCache, seed: int) -> Policy:
    """Build the policy named by `spec` ('ecmp', 'spray', 'single', or 'name:arg')."""
    name, _, arg = str(spec).partition(":")
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"unknown routing policy {spec!r} (known: {', '.join(policy_names())})", field="routing")
    return factory(topo, cache, seed, arg or None)


def _no_arg(name: str, arg: str | None) -> None:
    if arg is not None:
        raise ConfigError(f"routing policy {name!r} takes no argument, got {name}:{arg}", field="routing")


class Ecmp:
    """Per-flow ECMP: every switch hashes the flow key onto one of its equal-cost next hops."""

    name = "ecmp"

    def __init__(self, topo: Topology, cache: PathCache, seed: int):
        self.topo, self.cache, self.seed = topo, cache, seed

    def path(self, src: int, dst: int, key: tuple) -> tuple[int, ...]:
        if self.cache.down:  # failed next hops leave the groups: hash over the working paths
            live = self.cache.paths(src, dst)
            return live[flow_hash(self.seed, src, dst, key) % len(live)]
        dag = self.cache.dag(src, dst)
        node, path = src, []
        while node != dst:
            options = dag.next_links[node]
            link = int(options[flow_hash(self.seed, src, dst, key, node) % len(options)]) if len(options) > 1 else int(options[0])
            path.append(link)
            node = int(self.topo.link_dst[link])
        return tuple(path)

    def route(self, src: int, dst: int, key: tuple) -> Route:
        return Route.of(self.topo, [self.path(src, dst, key)], [1.0])


class Spray:
    """Ideal packet spraying: every transfer split equally over all equal-cost paths."""

    name = "spray"

    def __init__(self, topo: Topology, cache: PathCache):
        self.topo, self.cache = topo, cache

    def route(self, src: int, dst: int, key: tuple) -> Route:
        paths = self.cache.paths(src, dst)
        return Route.of(self.topo, paths, [1.0 / len(paths)] * len(paths))


class Single:
    """One fixed path per (src, dst) pair, whatever the key: the first equal-cost path."""

    name = "single"

    def __init__(self, topo: Topology, cache: PathCache):
        self.topo, self.cache = topo, cache

    def route(self, src: int, dst: int, key: tuple) -> Route:
        return Route.of(self.topo, [self.cache.paths(src, dst)[0]], [1.0])


class SplitEcmp:
    """`split:K`: each flow cut into K equal subflows at the sender, each hashed by ECMP on its own."""

    def __init__(self, ecmp: Ecmp, k: int):
        self.ecmp, self.k, self.name = ecmp, k, f"split:{k}"

    def route(self, src: int, dst: int, key: tuple) -> Route:
        paths = [self.ecmp.path(src, dst, key + ("sub", j)) for j in range(self.k)]
        return Route.of(self.ecmp.topo, paths, [1.0 / self.k] * self.k, independent=True)


def _count(name: str, arg: str | None) -> int | str:
    if arg == "min":
        return "min"
    try:
        value = int(arg) if arg is not None else 1
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"routing policy {name}:{arg}: expected a positive number of subflows or 'min'",
                          field="routing")
    return value


@register("split")
def _split(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    if arg is None:
        raise ConfigError("routing policy 'split' needs a number of subflows or 'min' (split:4, split:min)",
                          field="routing")
    count = _count("split", arg)
    if count == "min":
        return Planned(topo, cache, "min", name="split:min", seed=seed)
    return SplitEcmp(Ecmp(topo, cache, seed), int(count))


@register("planned")
def _planned(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    count = _count("planned", arg)
    return Planned(topo, cache, count, name="planned" if arg is None else f"planned:{arg}", seed=seed)


@register("c4p")
def _c4p(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    stripes = _count("c4p", arg)
    if stripes == "min":
        raise ConfigError("routing policy c4p takes a number of stripes (c4p, c4p:4)", field="routing")
    return C4P(topo, cache, int(stripes))


@register("ecmp")
def _ecmp(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    _no_arg("ecmp", arg)
    return Ecmp(topo, cache, seed)


@register("spray")
def _spray(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    _no_arg("spray", arg)
    return Spray(topo, cache)


@register("single")
def _single(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    _no_arg("single", arg)
    return Single(topo, cache)

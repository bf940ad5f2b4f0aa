"""The immutable `Topology`: nodes with kinds and attributes, directed links in numpy arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from netsim.errors import TopologyError
from netsim.topology.csr import csr

if TYPE_CHECKING:
    import networkx as nx

NODE_ATTRS = ("host", "leaf", "rail", "pod", "dc")
_ATTR_SET = frozenset(NODE_ATTRS)


def _link_name(a: str, b: str, both: bool) -> str:
    return f"{a}<->{b}" if both else f"{a}->{b}"


def _check_link(a: str, b: str, capacity: float, latency: float, tier: str, both: bool) -> None:
    """A link's bandwidth must be a positive number and its latency a number >= 0 (the error names it)."""
    if not capacity > 0 or not math.isfinite(capacity):
        raise TopologyError(f"link {_link_name(a, b, both)} ({tier}): bandwidth must be a positive number, "
                            f"got {capacity!r}")
    if not latency >= 0 or not math.isfinite(latency):
        raise TopologyError(f"link {_link_name(a, b, both)} ({tier}): latency must be >= 0, got {latency!r}")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Topology:
    """A fabric: nodes (GPUs, NICs, switches, sites) and directed links (a cable is two links).

    Link data lives in numpy arrays indexed by link id: `link_src`, `link_dst`,
    `capacity` (bytes/s), `latency` (s) and `link_tier` (a label such as 'leaf-spine').
    `relay[v]` says whether node v forwards traffic it neither sends nor receives
    (switches and NICs do, GPUs only in direct-connect topologies). `gpus` lists the
    GPU node ids in rank order.
    """

    name: str
    node_names: tuple[str, ...]
    node_kind: tuple[str, ...]
    attrs: dict[str, np.ndarray]
    relay: np.ndarray
    link_src: np.ndarray
    link_dst: np.ndarray
    capacity: np.ndarray
    latency: np.ndarray
    link_tier: tuple[str, ...]
    gpus: np.ndarray
    meta: dict

    def __repr__(self) -> str:
        tiers = sorted(set(self.link_tier))
        return (f"Topology({self.name!r}: {self.gpus.size:,} GPUs, {self.num_nodes:,} nodes, {self.num_links:,} "
                f"directed links; tiers {', '.join(tiers)})")

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(repr(self))}</p>"

    @property
    def num_nodes(self) -> int:
        return len(self.node_names)

    @property
    def num_links(self) -> int:
        return len(self.link_src)

    @cached_property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.node_names)}

    def node(self, name: str) -> int:
        """The id of the node called `name`."""
        try:
            return self.index[name]
        except KeyError:
            raise TopologyError(f"unknown node {name!r} in topology {self.name!r}") from None

    @cached_property
    def out_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, link ids): the links leaving node v are ids[offsets[v]:offsets[v+1]]."""
        return _csr(self.link_src, self.num_nodes)

    @cached_property
    def out_next(self) -> tuple[np.ndarray, np.ndarray]:
        """(node, relays) beside `out_csr`'s link ids: the node each link leads to and whether it relays, read
        in order where a walk scans a node's links (not through the link ids)."""
        _, ids = self.out_csr
        node = _frozen(self.link_dst[ids].copy())
        return node, _frozen(self.relay[node].copy())

    @cached_property
    def in_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, link ids): the links entering node v are ids[offsets[v]:offsets[v+1]]."""
        return _csr(self.link_dst, self.num_nodes)

    @cached_property
    def link_names(self) -> tuple[str, ...]:
        names = self.node_names
        return tuple(f"{names[s]}->{names[d]}" for s, d in zip(self.link_src.tolist(), self.link_dst.tolist()))

    def links_named(self, name: str) -> list[int]:
        """Link ids for 'a->b' (one direction) or 'a<->b' (both directions of the cable)."""
        both = "<->" in name
        a, sep, b = name.partition("<->" if both else "->")
        if not sep:
            raise TopologyError(f"link {name!r}: write 'a->b' or 'a<->b' with node names")
        ia, ib = self.node(a.strip()), self.node(b.strip())
        pairs = [(ia, ib), (ib, ia)] if both else [(ia, ib)]
        offsets, ids = self.out_csr
        found = sorted(int(l) for u, v in pairs for l in ids[offsets[u]:offsets[u + 1]] if self.link_dst[l] == v)
        if not found:
            raise TopologyError(f"no link {name!r} in topology {self.name!r}")
        return found

    def gpu_attr(self, attr: str) -> np.ndarray:
        """The attribute `attr` (host, leaf, rail, pod, dc) of each GPU, in rank order."""
        return self.attrs[attr][self.gpus]

    @classmethod
    def from_networkx(cls, graph, *, name: str | None = None) -> "Topology":
        """A topology from a networkx graph (see `netsim.topology.custom.from_networkx`)."""
        from netsim.topology.custom import from_networkx

        return from_networkx(graph, name=name)

    def to_networkx(self) -> "nx.MultiDiGraph":
        """A networkx view for drawing and checks (not for the hot path); `Topology.from_networkx` reads it
        back."""
        import networkx as nx  # imported here: the command line starts faster without it

        graph = nx.MultiDiGraph(name=self.name)
        for v, name in enumerate(self.node_names):
            graph.add_node(v, name=name, kind=self.node_kind[v], relay=bool(self.relay[v]),
                           **{a: int(self.attrs[a][v]) for a in NODE_ATTRS})
        for link in range(self.num_links):
            graph.add_edge(
                int(self.link_src[link]), int(self.link_dst[link]), key=link,
                capacity=float(self.capacity[link]), latency=float(self.latency[link]), tier=self.link_tier[link],
            )
        return graph


def _csr(endpoint: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    offsets, order = csr(endpoint, num_nodes)
    return _frozen(offsets), _frozen(order.astype(np.int64))


class TopologyBuilder:
    """Collects nodes and full-duplex cables, checks them, and builds a `Topology`."""

    def __init__(self, name: str):
        self.name = name
        self.names: list[str] = []
        self.kinds: list[str] = []
        self.relays: list[bool] = []
        self.attrs: dict[str, list[int]] = {a: [] for a in NODE_ATTRS}
        self.index: dict[str, int] = {}
        # the links so far, column by column (src, dst, capacity, latency, tier): no tuple per link to allocate
        # (and for the garbage collector to count and visit)
        self.link_columns: tuple[list, list, list, list, list] = ([], [], [], [], [])
        self.gpu_ids: list[int] = []
        self.meta: dict = {}

    def add_node(self, name: str, kind: str, *, relay: bool | None = None, **attrs: int) -> int:
        if name in self.index:
            raise TopologyError(f"node {name!r} defined twice in topology {self.name!r}")
        if not _ATTR_SET.issuperset(attrs):
            raise ValueError(f"unknown node attributes {sorted(set(attrs) - _ATTR_SET)}")
        v = len(self.names)
        self.index[name] = v
        self.names.append(name)
        self.kinds.append(kind)
        self.relays.append(kind != "gpu" if relay is None else relay)
        if attrs:
            for a, column in self.attrs.items():
                column.append(int(attrs.get(a, -1)))
        else:
            for column in self.attrs.values():
                column.append(-1)
        if kind == "gpu":
            self.gpu_ids.append(v)
        return v

    def add_nodes(self, names: list[str], kinds: list[str], attrs: dict[str, list[int]]) -> range:
        """`add_node` for each of `names` in order, in one go (a fabric's servers cost a few list operations,
        not a call per node): `kinds[i]` and `attrs[a][i]` (one list per attribute given; the others -1) are
        node i's; relays are the nodes that are not GPUs. Returns their ids. Nothing is added if one fails."""
        if not _ATTR_SET.issuperset(attrs):
            raise ValueError(f"unknown node attributes {sorted(set(attrs) - _ATTR_SET)}")
        if len(kinds) != len(names) or any(len(column) != len(names) for column in attrs.values()):
            raise ValueError("add_nodes: kinds and each attribute need one entry per name")
        first = len(self.names)
        fresh = dict(zip(names, range(first, first + len(names))))
        if len(fresh) < len(names) or not self.index.keys().isdisjoint(fresh):
            seen = set(self.index)
            for name in names:
                if name in seen:
                    raise TopologyError(f"node {name!r} defined twice in topology {self.name!r}")
                seen.add(name)
        self.index.update(fresh)
        self.names.extend(names)
        self.kinds.extend(kinds)
        self.relays.extend([kind != "gpu" for kind in kinds])
        for a, column in self.attrs.items():
            column.extend(attrs[a] if a in attrs else [-1] * len(names))
        self.gpu_ids.extend([v for v, kind in enumerate(kinds, first) if kind == "gpu"])
        return range(first, len(self.names))

    def add_cable(self, a: str, b: str, capacity: float, latency: float, tier: str) -> None:
        """A full-duplex cable: two directed links of the same capacity and latency."""
        self.add_link(a, b, capacity, latency, tier, both=True)

    def add_link(self, a: str, b: str, capacity: float, latency: float, tier: str, *, both: bool = False) -> None:
        """One directed link a -> b (with `both`, b -> a too: a cable)."""
        _check_link(a, b, capacity, latency, tier, both)
        index = self.index
        ia, ib = index.get(a, -1), index.get(b, -1)
        if ia < 0 or ib < 0:
            raise TopologyError(f"link {_link_name(a, b, both)}: unknown node {(a if ia < 0 else b)!r}")
        src, dst, cap, lat, tiers = self.link_columns
        capacity, latency = float(capacity), float(latency)
        src.append(ia)
        dst.append(ib)
        if both:
            src.append(ib)
            dst.append(ia)
        n = 2 if both else 1
        cap.extend([capacity] * n)
        lat.extend([latency] * n)
        tiers.extend([tier] * n)

    def add_cables(self, cables: list[tuple[str, str, float, float, str]]) -> None:
        """`add_cable(a, b, capacity, latency, tier)` for each cable in order, in one go (the numbers checked
        once per distinct capacity, latency and tier). Nothing is added if one fails; the error is the one the
        first failing cable would raise alone."""
        bad = set()
        for kind, first in {c[2:]: c for c in reversed(cables)}.items():  # (the first cable of each kind)
            try:
                _check_link(*first, True)
            except TopologyError:
                bad.add(kind)
        get = self.index.get
        ends = [(get(c[0], -1), get(c[1], -1)) for c in cables]
        if bad or any(ia < 0 or ib < 0 for ia, ib in ends):
            for (ia, ib), (a, b, *rest) in zip(ends, cables):
                if tuple(rest) in bad:
                    _check_link(a, b, *rest, True)
                if ia < 0 or ib < 0:
                    raise TopologyError(f"link {_link_name(a, b, True)}: unknown node {(a if ia < 0 else b)!r}")
        src, dst, cap, lat, tiers = self.link_columns
        for (ia, ib), (_, _, capacity, latency, tier) in zip(ends, cables):
            capacity, latency = float(capacity), float(latency)
            src.extend((ia, ib))
            dst.extend((ib, ia))
            cap.extend((capacity, capacity))
            lat.extend((latency, latency))
            tiers.extend((tier, tier))

    def build(self, *, check_connected: bool = True) -> Topology:
        if not self.gpu_ids:
            raise TopologyError(f"topology {self.name!r} has no GPUs")
        src, dst, cap, lat, tier = self.link_columns
        topo = Topology(
            name=self.name,
            node_names=tuple(self.names),
            node_kind=tuple(self.kinds),
            attrs={a: _frozen(np.asarray(v, dtype=np.int64)) for a, v in self.attrs.items()},
            relay=_frozen(np.asarray(self.relays, dtype=bool)),
            link_src=_frozen(np.asarray(src, dtype=np.int64)),
            link_dst=_frozen(np.asarray(dst, dtype=np.int64)),
            capacity=_frozen(np.asarray(cap, dtype=np.float64)),
            latency=_frozen(np.asarray(lat, dtype=np.float64)),
            link_tier=tuple(tier),
            gpus=_frozen(np.asarray(self.gpu_ids, dtype=np.int64)),
            meta=dict(self.meta),
        )
        if check_connected:
            _check_gpus_connected(topo)
        return topo


def _check_gpus_connected(topo: Topology) -> None:
    """Every GPU must reach every other GPU through relaying nodes."""
    from netsim.topology.paths import distances_to

    dist = distances_to(topo, int(topo.gpus[0]))
    unreachable = [topo.node_names[g] for g in topo.gpus.tolist() if dist[g] < 0]
    if unreachable:
        shown = ", ".join(unreachable[:3]) + (" ..." if len(unreachable) > 3 else "")
        raise TopologyError(
            f"topology {topo.name!r} is disconnected: {len(unreachable)} GPU(s) cannot reach "
            f"{topo.node_names[topo.gpus[0]]} ({shown})"
        )

"""Any fabric: a topology from named nodes and cables (`kind: graph`), from a networkx graph, and from an
ASTRA-sim network configuration (multi-dimensional Ring / FullyConnected / Switch).

    >>> topo = graph_topology({"gpu0": "gpu", "gpu1": "gpu", "sw": "switch"},
    ...                       [("gpu0", "sw", 50e9, 1e-6), ("gpu1", "sw", 50e9, 1e-6)], name="pair")
    >>> topo.gpus.size, topo.num_links
    (2, 4)
    >>> astra = astra_network({"topology": ["Ring", "Switch"], "npus_count": [4, 2], "bandwidth": [50, 25],
    ...                        "latency": [500, 1000]}, name="two-level")
    >>> astra.gpus.size, sorted(set(astra.link_tier))
    (8, ['dim0-ring', 'dim1-switch'])
"""

from __future__ import annotations

import math
from typing import Iterable

from netsim.errors import TopologyError
from netsim.topology.graph import NODE_ATTRS, Topology, TopologyBuilder
from netsim.units import parse_bandwidth, parse_time

ROLES = ("gpu", "switch", "nic", "router")  # every role but gpu forwards traffic
ASTRA_SHAPES = ("Ring", "FullyConnected", "Switch")


def graph_topology(nodes: dict[str, str | dict], cables: Iterable[tuple], *, name: str = "graph") -> Topology:
    """A topology of these nodes (name -> role, or a mapping with `role`, `relay` — whether it forwards
    others' traffic, by default every role but gpu — and node attributes such as `host`) and these full-duplex cables ``(a, b, bandwidth B/s, latency s[, tier])``. A GPU without a
    cable, an unknown role or node, or GPUs that cannot reach each other are one-line errors."""
    b = TopologyBuilder(name)
    for node, spec in nodes.items():
        spec = {"role": spec} if isinstance(spec, str) else dict(spec)
        role = spec.pop("role", None)
        relay = spec.pop("relay", None)
        if role not in ROLES:
            raise TopologyError(f"node {node!r}: role must be one of {', '.join(ROLES)}, got {role!r}")
        unknown = sorted(set(spec) - set(NODE_ATTRS))
        if unknown:
            raise TopologyError(f"node {node!r}: unknown attributes {unknown} (known: role, {', '.join(NODE_ATTRS)})")
        b.add_node(str(node), role, relay=relay, **spec)
    cabled: set[str] = set()
    for cable in cables:
        a, z, bandwidth, latency = cable[:4]
        b.add_cable(str(a), str(z), bandwidth, latency, cable[4] if len(cable) > 4 else "cable")
        cabled.update((str(a), str(z)))
    b.meta.update(kind="graph")
    loose = [n for n, k in zip(b.names, b.kinds) if k == "gpu" and n not in cabled]
    if loose:
        raise TopologyError(f"GPU {loose[0]!r} has no cable" + (f" (nor {len(loose) - 1} more)" if len(loose) > 1 else ""))
    return b.build()


def from_networkx(graph, *, name: str | None = None) -> Topology:
    """A topology from a networkx graph: nodes with a `kind` (or `role`) attribute of `ROLES` (and optional
    node attributes), edges with `capacity` (bytes/s), optional `latency` (s) and `tier`. An undirected
    graph's edges are cables; a directed graph's edges are links, one direction each (`to_networkx` gives
    one, so the two round-trip). Nodes are named by their `name` attribute where they have one.

    >>> import networkx as nx
    >>> g = nx.Graph()
    >>> g.add_nodes_from([("a", {"kind": "gpu"}), ("b", {"kind": "gpu"}), ("s", {"kind": "switch"})])
    >>> g.add_edges_from([("a", "s", {"capacity": 1e10}), ("b", "s", {"capacity": 1e10})])
    >>> from_networkx(g, name="star").num_links
    4
    """
    b = TopologyBuilder(name or graph.graph.get("name") or "networkx")
    b.meta.update(kind="networkx")
    names = {}
    for v, data in graph.nodes(data=True):
        role = data.get("kind", data.get("role"))
        if role not in ROLES:
            raise TopologyError(f"node {v!r}: attribute 'kind' must be one of {', '.join(ROLES)}, got {role!r}")
        names[v] = str(data.get("name", v))
        b.add_node(names[v], role, relay=data.get("relay"),
                   **{a: int(data[a]) for a in NODE_ATTRS if a in data and data[a] is not None})
    edges = graph.edges(data=True)
    for u, v, data in edges:
        if "capacity" not in data:
            raise TopologyError(f"edge {names[u]}-{names[v]}: needs a 'capacity' in bytes/s")
        capacity, latency, tier = float(data["capacity"]), float(data.get("latency", 0.0)), str(data.get("tier", "cable"))
        if graph.is_directed():
            b.add_link(names[u], names[v], capacity, latency, tier)
        else:
            b.add_cable(names[u], names[v], capacity, latency, tier)
    return b.build()


def astra_network(config: dict, *, name: str = "astra") -> Topology:
    """The fabric of an ASTRA-sim network configuration: dimensions from the innermost, each a `Ring`,
    `FullyConnected` or `Switch` of `npus_count[d]` NPUs with `bandwidth[d]` GB/s and `latency[d]` ns per
    link; NPU i's coordinate in dimension d is (i // prod(npus_count[:d])) % npus_count[d], and the NPUs
    that differ only there form one group of that dimension (a ring, a clique, or a star on a switch of
    its own). NPUs are named gpu0, gpu1, ...; links carry the tier ``dim{d}-{shape}``."""
    try:
        shapes = list(config["topology"])
        counts = [int(c) for c in config["npus_count"]]
        bandwidths = [float(x) for x in config["bandwidth"]]
        latencies = [float(x) for x in config["latency"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise TopologyError("an ASTRA-sim network needs lists topology, npus_count, bandwidth (GB/s) and latency "
                            f"(ns), one entry per dimension ({exc})") from None
    if not shapes or len({len(shapes), len(counts), len(bandwidths), len(latencies)}) != 1:
        raise TopologyError("topology, npus_count, bandwidth and latency need one entry per dimension each")
    for d, (shape, n, bw, lat) in enumerate(zip(shapes, counts, bandwidths, latencies)):
        if shape not in ASTRA_SHAPES:
            raise TopologyError(f"dimension {d}: unknown shape {shape!r} (known: {', '.join(ASTRA_SHAPES)})")
        if n < 1 or not bw > 0 or not math.isfinite(bw) or not lat >= 0 or not math.isfinite(lat):
            raise TopologyError(f"dimension {d}: expected npus_count >= 1, bandwidth > 0 GB/s, latency >= 0 ns")
    total = math.prod(counts)
    if total > 131_072:
        raise TopologyError(f"{total:,} NPUs, more than the 131,072 netsim builds")
    b = TopologyBuilder(name)
    b.meta.update(kind="astra_network", dimensions=list(zip(shapes, counts)))
    for i in range(total):
        b.add_node(f"gpu{i}", "gpu", relay=False, host=i)
    stride = 1
    for d, (shape, n, bw, lat) in enumerate(zip(shapes, counts, bandwidths, latencies)):
        # through the unit parser, so a link reads the same as one written "150GB/s" / "500ns" in a YAML file
        tier, capacity, latency = f"dim{d}-{shape.lower()}", parse_bandwidth(f"{bw}GB/s"), parse_time(f"{lat}ns")
        if n > 1:
            for g, members in enumerate(_groups(total, stride, n)):
                names = [f"gpu{i}" for i in members]
                if shape == "Switch":
                    b.add_node(f"sw{d}.{g}", "switch")
                    for m in names:
                        b.add_cable(m, f"sw{d}.{g}", capacity, latency, tier)
                elif shape == "Ring":
                    for k in range(n if n > 2 else 1):
                        b.add_cable(names[k], names[(k + 1) % n], capacity, latency, tier)
                else:
                    for k in range(n):
                        for j in range(k + 1, n):
                            b.add_cable(names[k], names[j], capacity, latency, tier)
        stride *= n
    if any(s != "Switch" for s, n in zip(shapes, counts) if n > 1):  # NPUs relay in direct-connect dimensions
        b.relays = [True if k == "gpu" else r for k, r in zip(b.kinds, b.relays)]
    return b.build()


def _groups(total: int, stride: int, n: int) -> list[list[int]]:
    """The groups of NPUs that differ only in the coordinate of stride `stride` and size `n`."""
    out = []
    for base in range(total):
        if (base // stride) % n == 0:
            out.append([base + k * stride for k in range(n)])
    return out


def is_astra_network(data: object) -> bool:
    """Whether a parsed YAML document is an ASTRA-sim network configuration (lists `topology` and `npus_count`)."""
    return isinstance(data, dict) and isinstance(data.get("topology"), list) and "npus_count" in data


__all__ = ["ASTRA_SHAPES", "ROLES", "astra_network", "from_networkx", "graph_topology", "is_astra_network"]

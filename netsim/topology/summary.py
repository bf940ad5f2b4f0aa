"""What `netsim topo show` prints: counts, capacities, bisection bandwidth, equal-cost path counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from netsim.topology.graph import Topology
from netsim.topology.paths import PathCache


@dataclass(frozen=True)
class TopologySummary:
    name: str
    kind: str
    nodes: dict[str, int]
    links: list[tuple[str, int, float, float]]  # tier, directed links, min capacity, max latency
    gpus: int
    bisection: float | None  # bytes/s, first half of the GPUs to the second half (max-flow); None: skipped
    path_counts: dict[int, int]  # equal-cost paths -> number of GPU pairs (sampled from GPU 0)


MAX_BISECTION_LINKS = 100_000  # beyond this the max-flow takes minutes; `topo show` says it skipped it


def bisection_bandwidth(topo: Topology) -> float:
    """Max-flow from the first half of the GPUs (rank order) to the second half, in bytes/s.

    GPUs that do not relay carry no transit: a sending GPU takes nothing in, a receiving
    GPU sends nothing on.
    """
    gpus = topo.gpus.tolist()
    if len(gpus) < 2:
        return 0.0
    senders, receivers = set(gpus[: len(gpus) // 2]), set(gpus[len(gpus) // 2 :])
    import networkx as nx  # imported here: only `topo show` needs it

    g = nx.DiGraph()
    for l in range(topo.num_links):
        a, b = int(topo.link_src[l]), int(topo.link_dst[l])
        if (b in senders and not topo.relay[b]) or (a in receivers and not topo.relay[a]):
            continue
        cap = float(topo.capacity[l])
        if g.has_edge(a, b):
            g[a][b]["capacity"] += cap
        else:
            g.add_edge(a, b, capacity=cap)
    for v in senders:
        g.add_edge("S", v)  # no capacity attribute: unbounded
    for v in receivers:
        g.add_edge(v, "T")
    value, _ = nx.maximum_flow(g, "S", "T", flow_func=nx.algorithms.flow.preflow_push)
    return float(value)


def summarize_topology(topo: Topology, sample: int = 256) -> TopologySummary:
    tiers: dict[str, list[int]] = {}
    for l, tier in enumerate(topo.link_tier):
        tiers.setdefault(tier, []).append(l)
    links = [(t, len(ids), float(topo.capacity[ids].min()), float(topo.latency[ids].max())) for t, ids in tiers.items()]
    cache = PathCache(topo)
    first = int(topo.gpus[0])
    others = topo.gpus[1:]
    if len(others) > sample:
        others = others[np.linspace(0, len(others) - 1, sample).astype(int)]
    counts = Counter(cache.dag(first, int(g)).num_paths for g in others.tolist())
    return TopologySummary(
        name=topo.name, kind=str(topo.meta.get("kind", "?")), nodes=dict(Counter(topo.node_kind)), links=links,
        gpus=len(topo.gpus), path_counts=dict(sorted(counts.items())),
        bisection=bisection_bandwidth(topo) if topo.num_links <= MAX_BISECTION_LINKS else None,
    )

"""Equal-cost (fewest-hop) path sets between nodes, found by vectorised BFS.

A path is a tuple of link ids. Only relaying nodes (switches, NICs, sites; GPUs in
direct-connect topologies) may appear inside a path; the endpoints may be anything.
"""

from __future__ import annotations

import numpy as np

from netsim.errors import TopologyError
from netsim.topology.csr import gather
from netsim.topology.graph import Topology

MAX_PATHS = 4096


def distances_to(topo: Topology, dst: int) -> np.ndarray:
    """Hop distance from every node to `dst` through relaying nodes (-1: cannot reach)."""
    offsets, links = topo.in_csr
    dist = np.full(topo.num_nodes, -1, dtype=np.int64)
    dist[dst] = 0
    frontier = np.array([dst], dtype=np.int64)
    level = 0
    while frontier.size:
        level += 1
        incoming = gather(offsets, links, frontier)
        if not len(incoming):
            break
        preds = np.unique(topo.link_src[incoming])
        preds = preds[dist[preds] < 0]
        dist[preds] = level
        frontier = preds[topo.relay[preds]]
    return dist


class PathDag:
    """The shortest-path DAG from one source to one destination.

    `next_links[v]` are the links out of node v that stay on a shortest path.
    """

    __slots__ = ("src", "dst", "next_links", "num_paths", "_paths")

    def __init__(self, topo: Topology, src: int, dst: int, dist: np.ndarray):
        self.src, self.dst = src, dst
        if src == dst:
            raise TopologyError(f"a transfer needs two different nodes, got {topo.node_names[src]} twice")
        if dist[src] < 0:
            raise TopologyError(f"no path from {topo.node_names[src]} to {topo.node_names[dst]}")
        offsets, out_links = topo.out_csr
        self.next_links: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {dst: 1}
        layer = [src]
        order: list[int] = []
        seen = {src}
        while layer:
            nxt: list[int] = []
            for v in layer:
                order.append(v)
                cand = out_links[offsets[v] : offsets[v + 1]]
                heads = topo.link_dst[cand]
                ok = (dist[heads] == dist[v] - 1) & ((heads == dst) | topo.relay[heads])
                self.next_links[v] = cand[ok]
                for h in heads[ok].tolist():
                    if h != dst and h not in seen:
                        seen.add(h)
                        nxt.append(h)
            layer = nxt
        for v in reversed(order):
            counts[v] = sum(counts[int(topo.link_dst[l])] for l in self.next_links[v].tolist())
        self.num_paths = counts[src]
        self._paths: list[tuple[int, ...]] | None = None

    def paths(self, topo: Topology) -> list[tuple[int, ...]]:
        """Every shortest path as a tuple of link ids (at most MAX_PATHS)."""
        if self._paths is None:
            if self.num_paths > MAX_PATHS:
                raise TopologyError(
                    f"{self.num_paths} equal-cost paths from {topo.node_names[self.src]} to "
                    f"{topo.node_names[self.dst]}: more than the {MAX_PATHS} netsim enumerates"
                )
            out: list[tuple[int, ...]] = []
            stack: list[tuple[int, tuple[int, ...]]] = [(self.src, ())]
            while stack:
                v, prefix = stack.pop()
                if v == self.dst:
                    out.append(prefix)
                    continue
                for link in reversed(self.next_links[v].tolist()):
                    stack.append((int(topo.link_dst[link]), prefix + (link,)))
            self._paths = out
        return self._paths


class PathCache:
    """Distances per destination and path DAGs per (src, dst), computed once each.

    `down` holds failed links: `paths` leaves out every path through one (the equal-cost
    sets stay those of the healthy fabric, as switches drop a failed next hop from their
    ECMP group rather than recompute shortest paths).
    """

    def __init__(self, topo: Topology):
        self.topo = topo
        self._dist: dict[int, np.ndarray] = {}
        self._dags: dict[tuple[int, int], PathDag] = {}
        self.down: set[int] = set()

    def dag(self, src: int, dst: int) -> PathDag:
        key = (src, dst)
        dag = self._dags.get(key)
        if dag is None:
            dist = self._dist.get(dst)
            if dist is None:
                dist = self._dist[dst] = distances_to(self.topo, dst)
            dag = self._dags[key] = PathDag(self.topo, src, dst, dist)
        return dag

    def paths(self, src: int, dst: int) -> list[tuple[int, ...]]:
        every = self.dag(src, dst).paths(self.topo)
        if not self.down:
            return every
        live = [p for p in every if self.down.isdisjoint(p)]
        if not live:
            raise TopologyError(f"no working path from {self.topo.node_names[src]} to {self.topo.node_names[dst]}: "
                                f"every equal-cost path crosses a failed link")
        return live

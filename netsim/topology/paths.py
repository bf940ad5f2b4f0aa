"""Equal-cost (fewest-hop) path sets between nodes, found by vectorised BFS.

A path is a tuple of link ids. Only relaying nodes (switches, NICs, sites; GPUs in
direct-connect topologies) may appear inside a path; the endpoints may be anything.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

from netsim.errors import TopologyError
from netsim.topology.gateways import Distances, assemble, regions
from netsim.topology.graph import Topology

MAX_PATHS = 4096
MAX_HOPS = 32767  # the longest shortest path routed (distance rows are int8, or int16 where paths are longer)


def distances_to(topo: Topology, dst: int) -> np.ndarray:
    """Hop distance from every node to `dst` through relaying nodes (-1: cannot reach)."""
    offsets, links = topo.in_csr
    return _bfs_to(dst, offsets, links, topo.link_src, topo.relay, topo.num_nodes)


@njit(cache=True)
def _bfs_to(dst, in_offsets, in_links, link_src, relay, num_nodes):
    """Breadth-first search backwards from `dst`; only the destination and relaying nodes are expanded."""
    dist = np.full(num_nodes, -1, dtype=np.int64)
    queue = np.empty(num_nodes, dtype=np.int64)
    dist[dst] = 0
    queue[0] = dst
    head, tail = 0, 1
    while head < tail:
        v = queue[head]
        head += 1
        if v != dst and not relay[v]:
            continue
        for k in range(in_offsets[v], in_offsets[v + 1]):
            u = link_src[in_links[k]]
            if dist[u] < 0:
                dist[u] = dist[v] + 1
                queue[tail] = u
                tail += 1
    return dist


@njit(cache=True)
def _bfs_rows(targets, out, first, in_offsets, in_links, link_src, relay, num_nodes):
    """`_bfs_to` for each of `targets`, into rows first, first + 1, ... of `out` (one call for many).
    Returns the longest distance found (the caller checks it fits `out`'s type)."""
    longest = 0
    for i in range(len(targets)):
        dist = _bfs_to(targets[i], in_offsets, in_links, link_src, relay, num_nodes)
        for v in range(num_nodes):  # element by element: a row assignment compiles slowly (seconds)
            out[first + i, v] = dist[v]
            if dist[v] > longest:
                longest = dist[v]
    return longest


class NextHops:
    """Shortest-path next hops toward one destination, from every node at once.

    A link u -> h is a next hop of u when it brings u one hop closer to `dst` and h is the
    destination or a node that relays. `links_of(u)` are u's next hops; `path_count[u]` is how
    many equal-cost paths lead from u to `dst`. One vectorised pass per destination serves every
    source (a per-pair search would repeat the same work for each of them).
    """

    __slots__ = ("topo", "dst", "dist", "offsets", "links", "_path_count", "_lists")

    def __init__(self, topo: Topology, dst: int, dist: np.ndarray):
        self.topo, self.dst, self.dist = topo, dst, dist.copy()  # (its own: the cache reuses its rows)
        offsets, out_links = topo.out_csr
        heads, tails = topo.link_dst[out_links], topo.link_src[out_links]
        ok = (dist[tails] > 0) & (dist[heads] == dist[tails] - 1) & ((heads == dst) | topo.relay[heads])
        self.links = out_links[ok]
        per_node = np.bincount(tails[ok], minlength=topo.num_nodes)
        self.offsets = np.concatenate([[0], np.cumsum(per_node)])
        self._path_count: np.ndarray | None = None
        self._lists: dict[int, list[int]] = {}

    @property
    def nbytes(self) -> int:
        """Memory its arrays take, with room for the path counts (whether computed yet or not)."""
        return self.dist.nbytes + self.links.nbytes + self.offsets.nbytes + 8 * len(self.dist)

    @property
    def path_count(self) -> np.ndarray:
        """Equal-cost paths from each node to `dst` (float: counts can exceed int64 on huge fabrics);
        computed on first use (a per-flow hash walk never needs it)."""
        if self._path_count is None:
            topo = self.topo
            count = np.zeros(topo.num_nodes, dtype=np.float64)
            count[self.dst] = 1.0
            src_of, dst_of = topo.link_src[self.links], topo.link_dst[self.links]
            level = self.dist[src_of]
            for d in range(1, int(level.max()) + 1 if len(level) else 1):
                at = level == d
                np.add.at(count, src_of[at], count[dst_of[at]])
            self._path_count = count
        return self._path_count

    def links_of(self, node: int) -> np.ndarray:
        return self.links[self.offsets[node]:self.offsets[node + 1]]

    def list_of(self, node: int) -> list[int]:
        """`links_of(node)` as a Python list, kept (per-hop walks in Python index lists several times
        faster than numpy arrays)."""
        found = self._lists.get(node)
        if found is None:
            found = self._lists[node] = self.links[self.offsets[node]:self.offsets[node + 1]].tolist()
        return found


class PathDag:
    """The shortest-path DAG from one source to one destination (a view on the destination's
    `NextHops`): `next_links[v]` are the links out of node v that stay on a shortest path."""

    __slots__ = ("src", "dst", "hops", "_paths")

    def __init__(self, topo: Topology, src: int, dst: int, hops: NextHops):
        self.src, self.dst, self.hops = src, dst, hops
        if src == dst:
            raise TopologyError(f"a transfer needs two different nodes, got {topo.node_names[src]} twice")
        if hops.dist[src] < 0:
            raise TopologyError(f"no path from {topo.node_names[src]} to {topo.node_names[dst]}")
        self._paths: list[tuple[int, ...]] | None = None

    @property
    def num_paths(self) -> int:
        """How many shortest paths lead from `src` to `dst` (capped at 2**62)."""
        count = self.hops.path_count[self.src]
        return int(count) if count < 2**62 else 2**62

    @property
    def next_links(self) -> "_NextLinks":
        return _NextLinks(self.hops)

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
                for link in reversed(self.hops.links_of(v).tolist()):
                    stack.append((int(topo.link_dst[link]), prefix + (link,)))
            self._paths = out
        return self._paths


class _NextLinks:
    """`dag.next_links[v]`: node v's next hops toward the DAG's destination."""

    __slots__ = ("hops",)

    def __init__(self, hops: NextHops):
        self.hops = hops

    def __getitem__(self, node: int) -> np.ndarray:
        return self.hops.links_of(node)


class _Rows:
    """Hop-distance rows kept for some destinations: int8 (int16 from the first distance past 127, as on a
    large ring; past MAX_HOPS refused), at most `budget` bytes. Rows asked for before are kept (grown by
    doubling, up to `max_rows`), so batches over the same destinations cost a lookup; a batch that needs
    rows beyond them starts afresh, and one over more destinations than `max_rows` must come in parts.
    `compute(new, matrix, first)` writes the rows of destinations `new` from row `first` on and returns the
    longest distance it found."""

    def __init__(self, topo: Topology, budget: int, compute: Callable[[np.ndarray, np.ndarray, int], int]):
        self.topo, self.budget, self.compute = topo, budget, compute
        self.row_of = np.full(topo.num_nodes, -1, dtype=np.int64)  # destination -> its row in `matrix`
        self.rows = 0
        self.matrix = np.zeros((0, topo.num_nodes), dtype=np.int8)

    @property
    def max_rows(self) -> int:
        """How many destinations' rows one batch may ask for (the budget in int16 rows, so a batch that
        turns the rows to int16 still fits; at least 16)."""
        return max(16, self.budget // (2 * self.topo.num_nodes))

    def get(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(matrix, rows): hop distances to each of `targets` are ``matrix[rows[i]]`` (-1: cannot reach),
        valid until the next call."""
        if not self._fill(targets):  # a path too long for int8 rows: int16 rows from now on
            self.matrix = np.zeros((0, self.topo.num_nodes), dtype=np.int16)
            self.row_of[self.row_of >= 0] = -1
            self.rows = 0
            self._fill(targets)
        return self.matrix, self.row_of[targets]

    def _fill(self, targets: np.ndarray) -> bool:
        """Rows for the destinations of `targets` not kept yet; False when a distance does not fit the rows'
        type (those rows are not kept)."""
        new = np.unique(targets[self.row_of[targets] < 0])
        if not len(new):
            return True
        if self.rows + len(new) > self.max_rows:  # start afresh with this batch's destinations
            new = np.unique(targets)
            if len(new) > self.max_rows:
                raise ValueError(f"{len(new)} destinations in one batch: more than the {self.max_rows} "
                                 "rows kept (ask in parts)")
            self.row_of[self.row_of >= 0] = -1
            self.rows = 0
        if self.rows + len(new) > len(self.matrix):
            size = min(max(16, 2 * len(self.matrix), self.rows + len(new)), self.max_rows)
            grown = np.zeros((size, self.topo.num_nodes), dtype=self.matrix.dtype)
            grown[:self.rows] = self.matrix[:self.rows]
            self.matrix = grown
        longest = self.compute(new, self.matrix, self.rows)
        if longest > MAX_HOPS:
            raise TopologyError(f"{self.topo.name}: a shortest path of {longest} hops; netsim routes paths of at "
                                f"most {MAX_HOPS} hops")
        if longest > np.iinfo(self.matrix.dtype).max:
            return False
        self.row_of[new] = np.arange(self.rows, self.rows + len(new))
        self.rows += len(new)
        return True


class PathCache:
    """Next hops per destination and path DAGs per (src, dst), computed on demand and kept within a
    memory budget: what a fabric costs to route stays bounded, not one row per destination (n^2 on a
    fabric where every GPU is a destination).

    - Distance rows (`distance_rows`): at most `max_rows` (ROW_BUDGET bytes of int8 rows, or int16 rows
      once a fabric shows a shortest path past 127 hops, as a large ring does; past MAX_HOPS it is
      refused); a batch that needs rows beyond them starts the kept rows afresh, and a batch over more
      destinations than that must come in parts (`max_rows` says how many; ECMP's batch walk does this).
      A destination's row is assembled from the searched rows of its gateways, the switches that lead
      into its server (`netsim.topology.gateways`; GATEWAY_BUDGET bytes of them), not searched over the
      whole fabric.
    - Next hops per destination (what per-path routing reads: `dag`, `paths`): kept up to HOPS_BUDGET
      bytes, the oldest dropped first with the path DAGs toward it (recomputed if asked again).

    `down` holds failed links: `paths` leaves out every path through one (the equal-cost
    sets stay those of the healthy fabric, as switches drop a failed next hop from their
    ECMP group rather than recompute shortest paths).
    """

    ROW_BUDGET = 1024 * 2**20  # (every destination of a 16,384-GPU rail fabric: 0.6 GiB)
    GATEWAY_BUDGET = 256 * 2**20
    DENSE_CELLS = 2**26  # rows built for a batch's targets up to this many (targets x nodes), else lookups
    HOPS_BUDGET = 256 * 2**20

    def __init__(self, topo: Topology):
        self.topo = topo
        self._hops: dict[int, NextHops] = {}  # oldest first
        self._hops_bytes = 0
        self._dags: dict[tuple[int, int], PathDag] = {}
        self._dags_to: dict[int, list[tuple[int, int]]] = {}  # destination -> the keys of its DAGs
        self.down: set[int] = set()
        offsets, links = topo.in_csr
        self._searched = _Rows(topo, self.GATEWAY_BUDGET, lambda new, out, first: _bfs_rows(
            new, out, first, offsets, links, topo.link_src, topo.relay, topo.num_nodes))
        self._assembled = _Rows(topo, self.ROW_BUDGET, self._assemble)
        self._servers: tuple[np.ndarray, ...] | None = None  # (host_of, members offsets, members, position)

    def _server_index(self) -> tuple[np.ndarray, ...]:
        """Each node's server (`host` attribute, -1: none), the servers' members (CSR) and each node's
        position among its server's members."""
        if self._servers is None:
            host_of = np.asarray(self.topo.attrs["host"], dtype=np.int64)
            count = int(host_of.max()) + 1 if len(host_of) and host_of.max() >= 0 else 0
            order = np.argsort(host_of, kind="stable")
            order = order[host_of[order] >= 0]
            m_off = np.zeros(count + 1, dtype=np.int64)
            np.cumsum(np.bincount(host_of[order], minlength=count), out=m_off[1:])
            pos = np.zeros(len(host_of), dtype=np.int64)
            pos[order] = np.arange(len(order)) - m_off[host_of[order]]
            self._servers = (host_of, m_off, order, pos)
        return self._servers

    def _regions(self, targets: np.ndarray) -> tuple:
        """Each target's server search (`gateways.regions`): (loc_off, loc, f_off, f_node, f_tail)."""
        host_of, m_off, members, pos = self._server_index()
        return regions(targets, host_of, m_off, members, pos, self.topo.in_csr, self.topo.link_src, self.topo.relay)

    def _gateway_rows(self, gateways: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(matrix, f_row): the searched rows of `gateways` (one per target's way in), ``matrix[f_row[j]]`` for
        gateway j (-1: one that does not relay, which needs no row)."""
        relays = self.topo.relay[gateways]
        via = np.unique(gateways[relays])
        matrix, rows = self._searched.get(via)
        f_row = np.full(len(gateways), -1, dtype=np.int64)
        f_row[relays] = rows[np.searchsorted(via, gateways[relays])]
        return matrix, f_row

    def _assemble(self, new: np.ndarray, out: np.ndarray, first: int) -> int:
        """Rows of destinations `new` into `out` from row `first` on, from their gateways' searched rows
        (as many destinations at a time as their gateways' rows fit the gateway budget)."""
        host_of, m_off, members, pos = self._server_index()
        loc_off, loc, f_off, f_node, f_tail = self._regions(new)
        per_target = int(np.diff(f_off).max()) if len(new) else 1
        step = max(1, self._searched.max_rows // max(1, per_target))
        longest = 0
        for a in range(0, len(new), step):
            b = min(len(new), a + step)
            part = (loc_off[a:b + 1] - loc_off[a], loc[loc_off[a]:loc_off[b]], f_off[a:b + 1] - f_off[a],
                    f_node[f_off[a]:f_off[b]], f_tail[f_off[a]:f_off[b]])
            matrix, f_row = self._gateway_rows(part[3])
            longest = max(longest, assemble(new[a:b], host_of, pos, (m_off, members), part, f_row, matrix, out,
                                            first + a))
        return longest

    @property
    def max_rows(self) -> int:
        """How many destinations' distance rows one batch may ask for (ROW_BUDGET; at least 16)."""
        return self._assembled.max_rows

    def distance_rows(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(matrix, rows): hop distances to each of `targets` are ``matrix[rows[i]]`` (int8 or int16, -1: cannot
        reach), valid until the next call. Rows asked for before are kept (grown by doubling, up to
        `max_rows`), so batches over the same destinations cost a lookup, not a copy."""
        return self._assembled.get(np.asarray(targets, dtype=np.int64))

    def toward(self, targets: np.ndarray) -> Distances | None:
        """Distances toward `targets` (unique) for a walk that asks node by node: their kept rows when they
        have them or when rows for them cost little to build (DENSE_CELLS nodes x targets), else lookups
        through their gateways (no row per target: what makes a step to 131,072 GPUs cheap to route).
        None when neither fits the budgets: ask for at most `max_rows` targets at once."""
        targets = np.asarray(targets, dtype=np.int64)
        host_of, _, _, pos = self._server_index()
        cheap = len(targets) * self.topo.num_nodes <= self.DENSE_CELLS and len(targets) <= self.max_rows
        if not cheap and not (self._assembled.row_of[targets] >= 0).all():
            found = self._regions(targets)
            gateways = found[3]
            if len(np.unique(gateways[self.topo.relay[gateways]])) <= self._searched.max_rows:
                matrix, f_row = self._gateway_rows(gateways)
                return Distances(targets, matrix[:0], np.full(len(targets), -1, dtype=np.int64), host_of, pos,
                                 found, f_row, matrix)
            if len(targets) > self.max_rows:  # gateways without number (no servers), and too many targets
                return None
        matrix, rows = self.distance_rows(targets)
        return Distances.of_rows(targets, matrix, rows, host_of)

    def distances(self, dst: int) -> np.ndarray:
        """Hop distance from every node to `dst` through relaying nodes (-1: cannot reach): its kept row."""
        matrix, rows = self.distance_rows(np.array([dst], dtype=np.int64))
        return matrix[rows[0]]

    def dag(self, src: int, dst: int) -> PathDag:
        key = (src, dst)
        dag = self._dags.get(key)
        if dag is None:
            dag = PathDag(self.topo, src, dst, self.next_hops(dst))
            self._dags[key] = dag
            self._dags_to[dst].append(key)
        return dag

    def next_hops(self, dst: int) -> NextHops:
        """The next hops toward `dst`, kept within HOPS_BUDGET (the oldest destinations dropped first)."""
        hops = self._hops.get(dst)
        if hops is None:
            hops = NextHops(self.topo, dst, self.distances(dst))
            while self._hops and self._hops_bytes + hops.nbytes > self.HOPS_BUDGET:
                old, dropped = next(iter(self._hops.items()))
                del self._hops[old]
                self._hops_bytes -= dropped.nbytes
                for key in self._dags_to.pop(old, ()):
                    del self._dags[key]
            self._hops[dst] = hops
            self._hops_bytes += hops.nbytes
            self._dags_to[dst] = []
        return hops

    def paths(self, src: int, dst: int) -> list[tuple[int, ...]]:
        every = self.dag(src, dst).paths(self.topo)
        if not self.down:
            return every
        live = [p for p in every if self.down.isdisjoint(p)]
        if not live:
            raise TopologyError(f"no working path from {self.topo.node_names[src]} to {self.topo.node_names[dst]}: "
                                f"every equal-cost path crosses a failed link")
        return live

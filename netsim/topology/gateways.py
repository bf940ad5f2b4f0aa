"""Distances to many destinations through their gateways: rows for the fabric's switches, not for every GPU.

A hop-distance row toward a destination costs a search over the whole fabric and a byte per node; a
collective that sends to every GPU of a 131,072-GPU fabric would need 131,072 of them (34 GB of rows, hours
of searching). Yet from outside its server every path to a GPU enters through the same few switches. So a
destination d is described by its server (the nodes sharing its `host` attribute; d alone when it has
none) and by the way in::

    outside the server                       d's server
    v ──(any path, relays only)──► f ──link──► u ──(inside, relays only)──► d
                                   gateway     local distance l(u)

    dist(v, d) = min( l(v) if v is in d's server,  min over gateways f of  dist(v, f) + tail(f) )
    tail(f)    = 1 + min l(u) over f's links into the server; l is a search inside the server alone

The last node outside the server on a shortest path is some gateway f, so the minimum is the exact
distance. A gateway that does not relay (a GPU of another server with a direct link) counts only as the
path's own source. Searched rows are kept for the gateways only (on a leaf-spine, rail-optimized or
fat-tree fabric: its leaf or edge switches); a destination's row is assembled from them (a pass over the
nodes per gateway, and a search over its server's tens of nodes) instead of searched over the whole fabric
(`PathCache.distance_rows`). On a fabric without servers (`host` unset) the gateways are the destination's
own neighbours.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _regions(targets, host_of, m_off, members, pos, in_off, in_links, link_src, relay, f_cap):
    """Per target: local distances over its server's members (-1: not reachable inside) and its gateways
    with their tails (CSR: f_off, f_node, f_tail)."""
    n = len(targets)
    loc_off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        h = host_of[targets[i]]
        loc_off[i + 1] = loc_off[i] + (m_off[h + 1] - m_off[h] if h >= 0 else 1)
    loc = np.full(loc_off[n], -1, dtype=np.int64)
    f_off = np.zeros(n + 1, dtype=np.int64)
    f_node = np.empty(f_cap, dtype=np.int64)
    f_tail = np.empty(f_cap, dtype=np.int64)
    mark = np.full(len(host_of), -1, dtype=np.int64)  # gateway -> its index in this target's list
    queue = np.empty(max(1, loc_off[n]), dtype=np.int64)
    k = 0
    for i in range(n):
        d = targets[i]
        h = host_of[d]
        base = loc_off[i]
        first = k
        loc[base + (pos[d] if h >= 0 else 0)] = 0
        queue[0] = d
        head, tail = 0, 1
        while head < tail:
            u = queue[head]
            head += 1
            if u != d and not relay[u]:
                continue
            lu = loc[base + (pos[u] if h >= 0 else 0)]
            for q in range(in_off[u], in_off[u + 1]):
                w = link_src[in_links[q]]
                if h >= 0 and host_of[w] == h:
                    if loc[base + pos[w]] < 0:
                        loc[base + pos[w]] = lu + 1
                        queue[tail] = w
                        tail += 1
                elif w != d:
                    j = mark[w]
                    if j < 0:
                        mark[w] = k
                        f_node[k] = w
                        f_tail[k] = lu + 1
                        k += 1
                    elif lu + 1 < f_tail[j]:
                        f_tail[j] = lu + 1
        for j in range(first, k):
            mark[f_node[j]] = -1
        f_off[i + 1] = k
    return loc_off, loc, f_off, f_node[:k], f_tail[:k]


@njit(cache=True)
def _assemble(targets, host_of, pos, m_off, members, loc_off, loc, f_off, f_node, f_tail, f_row, via, out, first):
    """Row first + i of `out` for target i: the distance from every node (-1: cannot reach), from its
    gateways' rows `via` and its server's local distances (its members: `members[m_off[h]:m_off[h + 1]]`).
    Returns the longest distance found. Two passes over the nodes per row: the first gateway's row is
    copied (later ones merged), and the row is written out with its longest; only the server's members are
    visited for its local distances (on a 1,024-GPU leaf-spine, 1,024 rows in 1.2-1.4 ms instead of 2.4, when
    a row was cleared first and every node was checked for being the server's)."""
    longest = 0
    num_nodes = out.shape[1]
    row = np.empty(num_nodes, dtype=np.int64)
    for i in range(len(targets)):
        filled = False  # (`row` holds a gateway's row)
        for j in range(f_off[i], f_off[i + 1]):
            if f_row[j] < 0:
                continue
            g = f_row[j]
            t = f_tail[j]
            if not filled:
                for v in range(num_nodes):
                    dv = np.int64(via[g, v])
                    row[v] = dv + t if dv >= 0 else -1
                filled = True
            else:
                for v in range(num_nodes):
                    dv = np.int64(via[g, v])
                    if dv >= 0 and (row[v] < 0 or dv + t < row[v]):
                        row[v] = dv + t
        if not filled:
            row[:] = -1
        for j in range(f_off[i], f_off[i + 1]):  # the gateways themselves
            f = f_node[j]
            t = f_tail[j]
            if row[f] < 0 or t < row[f]:
                row[f] = t
        d = targets[i]
        h = host_of[d]
        if h >= 0:
            for q in range(m_off[h], m_off[h + 1]):
                v = members[q]
                lv = loc[loc_off[i] + pos[v]]
                if lv >= 0 and (row[v] < 0 or lv < row[v]):
                    row[v] = lv
        row[d] = 0
        for v in range(num_nodes):  # element by element: a row assignment compiles slowly
            out[first + i, v] = row[v]
            if row[v] > longest:
                longest = row[v]
    return longest


def regions(targets: np.ndarray, host_of: np.ndarray, m_off: np.ndarray, members: np.ndarray, pos: np.ndarray,
            in_csr: tuple[np.ndarray, np.ndarray], link_src: np.ndarray, relay: np.ndarray) -> tuple:
    """Each target's server search: (loc_off, loc, f_off, f_node, f_tail)."""
    in_off, in_links = in_csr
    indeg = np.diff(in_off)
    hosts = host_of[targets]
    host_indeg = np.bincount(host_of[host_of >= 0], weights=indeg[host_of >= 0], minlength=len(m_off) - 1) \
        if len(m_off) > 1 else np.zeros(0)
    cap = int(host_indeg[hosts[hosts >= 0]].sum() + indeg[targets[hosts < 0]].sum()) if len(targets) else 0
    return _regions(targets, host_of, m_off, members, pos, in_off, in_links, link_src, relay, max(cap, 1))


def assemble(targets: np.ndarray, host_of: np.ndarray, pos: np.ndarray, servers: tuple, found: tuple,
             f_row: np.ndarray, via: np.ndarray, out: np.ndarray, first: int) -> int:
    """Rows first, first + 1, ... of `out` for `targets` (their `regions`, their gateways' rows in `via` at
    `f_row`, -1 for a gateway that does not relay; `servers`: each server's members, (offsets, members));
    returns the longest distance (the caller checks it fits `out`'s type: a row that does not fit is
    wrapped)."""
    loc_off, loc, f_off, f_node, f_tail = found
    return int(_assemble(targets, host_of, pos, servers[0], servers[1], loc_off, loc, f_off, f_node, f_tail, f_row,
                         via, out, first))


@njit(cache=True)
def distance(v, s, dense, drow, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, via):
    """Hops from node v to target s of a `Distances` table (its `args` follow (v, s)); -1: cannot reach."""
    r = drow[s]
    if r >= 0:
        return np.int64(dense[r, v])
    d = targets[s]
    if v == d:
        return 0
    h = host_of[d]
    best = -1
    if h >= 0 and host_of[v] == h:
        best = loc[loc_off[s] + pos[v]]
    for j in range(f_off[s], f_off[s + 1]):
        if f_node[j] == v:
            c = f_tail[j]
        elif f_row[j] >= 0:
            dv = np.int64(via[f_row[j], v])
            if dv < 0:
                continue
            c = dv + f_tail[j]
        else:
            continue
        if best < 0 or c < best:
            best = c
    return best


@njit(cache=True)
def _distances(src, slot, dense, drow, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, via):
    out = np.empty(len(src), dtype=np.int64)
    for k in range(len(src)):
        out[k] = distance(src[k], slot[k], dense, drow, targets, host_of, pos, loc_off, loc, f_off, f_node,
                          f_tail, f_row, via)
    return out


class Distances:
    """Hop distances toward a batch's `targets`, for walks that ask node by node (`distance(v, s, *args)`):
    kept rows where the targets have them (a lookup), else their gateways' rows and server searches (a
    few lookups each; no row per target is built). Valid until the path cache's next call."""

    def __init__(self, targets: np.ndarray, dense: np.ndarray, drow: np.ndarray, host_of: np.ndarray,
                 pos: np.ndarray, found: tuple, f_row: np.ndarray, via: np.ndarray):
        loc_off, loc, f_off, f_node, f_tail = found
        self.args = (dense, drow, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, via)
        self.rows = len(drow) > 0 and bool((drow >= 0).all())  # every target from a kept row

    @classmethod
    def of_rows(cls, targets: np.ndarray, matrix: np.ndarray, rows: np.ndarray, host_of: np.ndarray) -> "Distances":
        """Every target from its kept row."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(targets, matrix, rows, host_of, empty, (empty, empty, np.zeros(len(targets) + 1, np.int64),
                                                          empty, empty), empty, matrix[:0])

    def to(self, src: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Hops from src[k] to targets[slot[k]]."""
        return _distances(np.asarray(src, dtype=np.int64), np.asarray(slot, dtype=np.int64), *self.args)


__all__ = ["Distances", "assemble", "distance", "regions"]

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
path's own source. Rows are kept for the gateways (on a leaf-spine, rail-optimized or fat-tree fabric:
its leaf or edge switches), through `PathCache.distance_rows`; each destination costs a search over its
server (tens of nodes). On a fabric without servers (`host` unset) the gateways are the destination's
own neighbours: rows for those, as many as before.
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
def gateway_distance(v, i, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, rows):
    """Hops from node v to target i of a `Gateways` table (-1: cannot reach)."""
    d = targets[i]
    if v == d:
        return 0
    h = host_of[d]
    best = -1
    if h >= 0 and host_of[v] == h:
        best = loc[loc_off[i] + pos[v]]
    for j in range(f_off[i], f_off[i + 1]):
        if f_node[j] == v:
            c = f_tail[j]
        elif f_row[j] >= 0:
            dv = rows[f_row[j], v]
            if dv < 0:
                continue
            c = dv + f_tail[j]
        else:
            continue
        if best < 0 or c < best:
            best = c
    return best


@njit(cache=True)
def _distances(src, slot, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, rows):
    out = np.empty(len(src), dtype=np.int64)
    for k in range(len(src)):
        out[k] = gateway_distance(src[k], slot[k], targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail,
                                  f_row, rows)
    return out


class Gateways:
    """Distances toward `targets` (see the module docstring): `args` are what `gateway_distance` takes after
    (v, i), valid until the path cache's next call."""

    def __init__(self, targets: np.ndarray, host_of: np.ndarray, pos: np.ndarray, regions: tuple,
                 f_row: np.ndarray, rows: np.ndarray):
        self.targets = targets
        loc_off, loc, f_off, f_node, f_tail = regions
        self.args = (targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, rows)

    def distances(self, src: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Hops from src[k] to targets[slot[k]]."""
        return _distances(np.asarray(src, dtype=np.int64), np.asarray(slot, dtype=np.int64), *self.args)

    def row(self, i: int) -> np.ndarray:
        """Hops from every node to target i (int64, -1: cannot reach)."""
        targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, rows = self.args
        d = int(targets[i])
        out = np.full(len(host_of), -1, dtype=np.int64)
        for j in range(int(f_off[i]), int(f_off[i + 1])):
            f, t = int(f_node[j]), int(f_tail[j])
            if f_row[j] >= 0:
                via = rows[f_row[j]].astype(np.int64)
                better = (via >= 0) & ((out < 0) | (via + t < out))
                out[better] = via[better] + t
            if out[f] < 0 or t < out[f]:
                out[f] = t
        h = int(host_of[d])
        if h >= 0:
            inside = np.flatnonzero(host_of == h)
            local = loc[loc_off[i] + pos[inside]]
            better = (local >= 0) & ((out[inside] < 0) | (local < out[inside]))
            out[inside[better]] = local[better]
        out[d] = 0
        return out


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


__all__ = ["Gateways", "gateway_distance", "regions"]

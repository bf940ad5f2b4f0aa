"""`ecmp`: per-flow ECMP, the default policy.

Every switch hashes the flow (source, destination, key, the switch itself) with the
simulation's seed onto one of its equal-cost next hops, so one transfer takes one path and
different flows between the same GPUs spread over the fabric only as far as the hash
spreads them (collisions included: the effect the other policies are compared against).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netsim.routing.hashing import flow_hash, flow_hashes
from netsim.routing.policy import Policy, no_argument, register
from netsim.routing.route import Route
from netsim.topology import PathCache, Topology
from netsim.topology.gateways import distance


class Ecmp(Policy):
    """Per-flow ECMP: every switch hashes the flow key onto one of its equal-cost next hops."""

    name = "ecmp"

    def __init__(self, topo: Topology, cache: PathCache, seed: int):
        self.topo, self.cache, self.seed = topo, cache, seed
        self._link_dst = topo.link_dst.tolist()

    def path(self, src: int, dst: int, key: tuple) -> tuple[int, ...]:
        """The one path the hash picks for this flow."""
        if self.cache.down:  # failed next hops leave the groups: hash over the working paths
            live = self.cache.paths(src, dst)
            return live[flow_hash(self.seed, src, dst, key) % len(live)]
        hops = self.cache.dag(src, dst).hops
        link_dst = self._link_dst
        node, path = src, []
        while node != dst:
            options = hops.list_of(node)
            link = options[flow_hash(self.seed, src, dst, key, node) % len(options)] if len(options) > 1 else options[0]
            path.append(link)
            node = link_dst[link]
        return tuple(path)

    def route(self, src: int, dst: int, key: tuple) -> Route:
        return Route.of(self.topo, [self.path(src, dst, key)], [1.0])

    def single_paths(self, src: np.ndarray, dst: np.ndarray, key: tuple
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """`path` for a whole batch: the hop-by-hop walks run compiled and stop where a switch offers
        several next hops; the hash picks there (the same `flow_hash`, compiled: `flow_hashes`); the walks
        go on. A path depends on the pair (and the key) alone, so a pair that comes several times in the batch
        (a chunked collective's chunks between two GPUs) is walked once: the 1,024-GPU pipelined tree (16
        chunks) routed its 65k transfers in ~8 ms instead of ~21 (40 batches)."""
        topo = self.topo
        if not len(src) or (src == dst).any():
            return None
        first, which = _distinct(src.astype(np.int64) * topo.num_nodes + dst)  # (int64: no wrap past 46k nodes)
        if len(first) < len(src):
            found = self._walks(src[first], dst[first], key)
            return None if found is None else _each(*found, which)
        return self._walks(src, dst, key)

    def _walks(self, src: np.ndarray, dst: np.ndarray, key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """`single_paths` for distinct pairs."""
        topo = self.topo
        targets, inverse = np.unique(dst, return_inverse=True)
        table = self.cache.toward(targets)
        if table is None:  # more rows than the cache keeps: the destinations in parts
            return self._in_parts(src, dst, key, inverse // self.cache.max_rows)
        hops = table.to(src, inverse)
        if hops.min() < 0 or hops.max() > 128:
            return None  # no path (`path` raises the error), or absurdly long ones
        n = len(src)
        node = src.astype(np.int64, copy=True)
        links = np.zeros((n, int(hops.max())), dtype=np.int64)
        taken = np.zeros(n, dtype=np.int64)
        choice = np.full(n, -1, dtype=np.int64)
        options = np.zeros(n, dtype=np.int64)
        pending = np.zeros(n, dtype=np.int64)
        offsets, out_links = topo.out_csr
        dense, drow = table.args[0], table.args[1]
        while k := (_walk(dst, drow[inverse], dense, offsets, out_links, *topo.out_next, topo.link_dst, node, links,
                          taken, choice, options, pending) if table.rows else
                    _walk_gateways(inverse, offsets, out_links, topo.link_dst, topo.relay, node, links, taken, choice,
                                   options, pending, *table.args)):
            at = pending[:k]
            hashes = flow_hashes(self.seed, key, src[at], dst[at], node[at])
            choice[at] = hashes % options[at].astype(np.uint64)
        return _sorted_paths(links, taken, topo.latency)


    def _in_parts(self, src: np.ndarray, dst: np.ndarray, key: tuple, part: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """`single_paths` over the transfers of each `part` in turn, put back in the batch's order."""
        which = np.empty(len(src), dtype=np.int64)  # each transfer's place in the parts' paths, in part order
        pieces = []
        for p in range(int(part.max()) + 1):
            idx = np.flatnonzero(part == p)
            found = self._walks(src[idx], dst[idx], key)
            if found is None:
                return None
            which[idx] = np.arange(len(idx)) + sum(len(f[1]) for f in pieces)
            pieces.append(found)
        return _each(*(np.concatenate([f[j] for f in pieces]) for j in range(3)), which)


@njit(cache=True)
def _distinct(keys):
    """(first, which): where each distinct key first comes, in that order, and which of them each key is (a
    hash table: no sort)."""
    size = 2
    while size < 2 * len(keys):  # (at most half full)
        size *= 2
    slot_key = np.empty(size, dtype=np.int64)
    slot_id = np.full(size, -1, dtype=np.int64)
    first = np.empty(len(keys), dtype=np.int64)
    which = np.empty(len(keys), dtype=np.int64)
    n = 0
    for i in range(len(keys)):
        k = keys[i]
        h = (np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
        j = np.int64(h) & (size - 1)
        while slot_id[j] >= 0 and slot_key[j] != k:
            j = (j + 1) & (size - 1)
        if slot_id[j] < 0:
            slot_key[j] = k
            slot_id[j] = n
            first[n] = i
            n += 1
        which[i] = slot_id[j]
    return first[:n], which


@njit(cache=True)
def _each(links, counts, latency, which):
    """Paths (flat links, counts, latencies) of pairs `which[i]` in turn, from those of distinct pairs."""
    first = np.empty(len(counts), dtype=np.int64)
    at = 0
    for p in range(len(counts)):
        first[p] = at
        at += counts[p]
    n = np.empty(len(which), dtype=np.int64)
    total = 0
    for i in range(len(which)):
        n[i] = counts[which[i]]
        total += n[i]
    out = np.empty(total, dtype=np.int64)
    k = 0
    for i in range(len(which)):
        a = first[which[i]]
        for j in range(n[i]):
            out[k + j] = links[a + j]
        k += n[i]
    lat = np.empty(len(which))
    for i in range(len(which)):
        lat[i] = latency[which[i]]
    return out, n, lat


@njit(cache=True)
def _walk(dst, row, dists, offsets, out_links, out_node, out_relay, link_dst, node, links, taken, choice, options,
          pending):
    """Walk i from node[i] toward dst[i] (distances dists[row[i]]) one hop at a time, appending to links[i],
    while a node offers one next hop (or choice[i] names the one to take); stop where it offers several:
    those walks go to `pending` (with their option count in `options`). Returns how many stopped. A node's
    links are scanned with their far ends and relays read in order (`Topology.out_next`): a walk of 1,024
    transfers across the spines took 0.21-0.27 ms instead of 0.29-0.53."""
    k = 0
    for i in range(len(dst)):
        d = dst[i]
        r = row[i]
        v = node[i]
        while v != d:
            level = dists[r, v] - 1
            want = choice[i] if choice[i] >= 0 else 0
            count = 0
            pick = -1
            for j in range(offsets[v], offsets[v + 1]):
                h = out_node[j]
                if dists[r, h] == level and (h == d or out_relay[j]):
                    if count == want:
                        pick = out_links[j]
                    count += 1
            if count > 1 and choice[i] < 0:
                options[i] = count
                pending[k] = i
                k += 1
                break
            choice[i] = -1
            links[i, taken[i]] = pick
            taken[i] += 1
            v = link_dst[pick]
        node[i] = v
    return k


@njit(cache=True)
def _walk_gateways(slot, offsets, out_links, link_dst, relay, node, links, taken, choice, options, pending,
                   dense, drow, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row, via):
    """`_walk` with distances asked node by node of a `Distances` table (whose `args` end the arguments):
    for batches toward more targets than rows are worth building for. (One walk taking the distance as a
    function would not be cached by numba: 0.35 s of compiling in every process.)"""
    k = 0
    for i in range(len(slot)):
        s = slot[i]
        d = targets[s]
        v = node[i]
        while v != d:
            level = distance(v, s, dense, drow, targets, host_of, pos, loc_off, loc, f_off, f_node, f_tail, f_row,
                             via) - 1
            want = choice[i] if choice[i] >= 0 else 0
            count = 0
            pick = -1
            for j in range(offsets[v], offsets[v + 1]):
                h = link_dst[out_links[j]]
                if (h == d or relay[h]) and distance(h, s, dense, drow, targets, host_of, pos, loc_off, loc, f_off,
                                                     f_node, f_tail, f_row, via) == level:
                    if count == want:
                        pick = out_links[j]
                    count += 1
            if count > 1 and choice[i] < 0:
                options[i] = count
                pending[k] = i
                k += 1
                break
            choice[i] = -1
            links[i, taken[i]] = pick
            taken[i] += 1
            v = link_dst[pick]
        node[i] = v
    return k


@njit(cache=True)
def _sorted_paths(links, taken, link_latency):
    """Each walk's links sorted, concatenated, with its latency summed in sorted order the way numpy sums
    (`Route.of` computes it so: pairwise with eight accumulators from eight terms on)."""
    n = len(taken)
    counts = taken.copy()
    flat = np.empty(counts.sum(), dtype=np.int64)
    latency = np.empty(n)
    k = 0
    for i in range(n):
        m = taken[i]
        path = flat[k:k + m]
        for j in range(m):  # insertion sort: a path has a handful of links
            x = links[i, j]
            a = j
            while a > 0 and path[a - 1] > x:
                path[a] = path[a - 1]
                a -= 1
            path[a] = x
        k += m
        if m < 8:
            total = 0.0
            for j in range(m):
                total += link_latency[path[j]]
        else:
            acc = np.empty(8)
            for j in range(8):
                acc[j] = link_latency[path[j]]
            j = 8
            while j < m - m % 8:
                for a in range(8):
                    acc[a] += link_latency[path[j + a]]
                j += 8
            total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
            while j < m:
                total += link_latency[path[j]]
                j += 1
        latency[i] = total
    return flat, counts, latency


@register("ecmp", "per-flow ECMP: each switch hashes the flow onto one of its equal-cost next hops")
def _ecmp(topo: Topology, cache: PathCache, seed: int, arg: str | None) -> Policy:
    no_argument("ecmp", arg)
    return Ecmp(topo, cache, seed)

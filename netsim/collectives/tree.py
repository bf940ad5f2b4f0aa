"""Tree algorithms: pipelined binary trees for broadcast and reduce, a double binary tree for all-reduce, and
NCCL's own tree (`nccl_tree`: a chain inside each server, a double binary tree across servers, per channel).

A tree here is an in-order (midpoint) binary tree over positions 0..n-1; positions map to
ranks. In the double tree, the second tree is the first shifted by one rank, so a rank that
is a leaf in one tree is (mostly) interior in the other, and each tree carries half the
buffer. Reduction flows leaves -> root (a node sends when all children have sent), then
the result flows root -> leaves; the buffer moves in `chunks` pipelined pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.collectives.compose import chunked, parallel, step
from netsim.network.partition import split_bytes
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule


@dataclass(frozen=True)
class Tree:
    parent: np.ndarray  # per position, -1 at the root
    root: int

    @property
    def n(self) -> int:
        return len(self.parent)

    def children(self) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in range(self.n)]
        for v, p in enumerate(self.parent.tolist()):
            if p >= 0:
                kids[p].append(v)
        return kids

    def height(self) -> np.ndarray:
        """Edges from each node down to its deepest leaf (leaves: 0)."""
        h = np.zeros(self.n, dtype=np.int64)
        for v in np.argsort(self.depth())[::-1].tolist():
            p = int(self.parent[v])
            if p >= 0:
                h[p] = max(h[p], h[v] + 1)
        return h

    def depth(self) -> np.ndarray:
        """Edges from the root down to each node (the root: 0), every node climbing one edge per pass."""
        d = np.zeros(self.n, dtype=np.int64)
        up = self.parent.copy()
        while (below := up >= 0).any():
            d += below
            up[below] = self.parent[up[below]]
        return d


def binary_tree(n: int) -> Tree:
    """The in-order binary tree: the root is the midpoint, each half recursively."""
    parent = np.full(n, -1, dtype=np.int64)

    def build(lo: int, hi: int, up: int) -> int:
        if lo >= hi:
            return -1
        mid = (lo + hi) // 2
        parent[mid] = up
        build(lo, mid, mid)
        build(mid + 1, hi, mid)
        return mid

    root = build(0, n, -1)
    return Tree(parent, root)


def tree_schedule(tree: Tree, nodes: np.ndarray, nbytes: int, *, reduce: bool, broadcast: bool) -> Schedule:
    """Reduce to the root (step = height of the sender), then broadcast (step = offset + depth of the sender)."""
    n = tree.n
    height, depth = tree.height(), tree.depth()
    top = int(height[tree.root])
    sends: dict[int, tuple[list[int], list[int]]] = {}
    if reduce:
        for v in range(n):
            if tree.parent[v] >= 0:
                sends.setdefault(int(height[v]), ([], []))
                sends[int(height[v])][0].append(v), sends[int(height[v])][1].append(int(tree.parent[v]))
    if broadcast:
        offset = top if reduce else 0
        kids = tree.children()
        for v in range(n):
            for c in kids[v]:
                k = offset + int(depth[v])
                sends.setdefault(k, ([], []))
                sends[k][0].append(v), sends[k][1].append(c)
    count = max(sends) + 1 if sends else 0
    steps = [step(*sends.get(k, ([], [])), [nbytes] * len(sends.get(k, ([], []))[0])) for k in range(count)]
    return Schedule(nodes, steps)


def rooted(req: Request) -> np.ndarray:
    """Rank at each tree position, rotated so that the tree's root position holds `req.root`."""
    tree = binary_tree(req.n)
    return np.roll(np.arange(req.n), tree.root - req.root)


def tree(op: str):
    """Pipelined binary tree: broadcast from or reduce to the root; all-reduce over the double tree."""

    def build(req: Request) -> Schedule:
        n = req.n
        t = binary_tree(n)
        if op == "all_reduce":
            halves = split_bytes(req.nbytes, 2)
            first = np.arange(n)
            second = np.roll(first, -1)  # position p of tree 2 holds rank p + 1
            parts = [
                chunked(tree_schedule(t, req.nodes[ranks], int(h), reduce=True, broadcast=True), req.chunks,
                        in_order=True)
                for ranks, h in zip((first, second), halves)
            ]
            return parallel(*parts, channels=True)
        ranks = rooted(req)
        schedule = tree_schedule(t, req.nodes[ranks], req.nbytes, reduce=op == "reduce", broadcast=op == "broadcast")
        return chunked(schedule, req.chunks, in_order=True)

    return build


def nccl_tree(req: Request) -> Schedule:
    r"""NCCL's all-reduce tree: per channel c (one per local rank: channel c leaves every server through local
    rank c and its NIC), the ranks of each server form a chain hanging from local rank c, and the servers'
    rank c form a double binary tree (the second shifted by one server); each channel and tree carries its
    share of the buffer, reduced up to the root and broadcast back down, pipelined in chunks::

        server 0: c ─ c+1 ─ ... (chain)         tree 1:   s1            tree 2:   s2
        server 1: c ─ c+1 ─ ...                          /  \                   /  \
        server 2: c ─ c+1 ─ ...                        s0    s2               s1    s3
                                                              ...                    ...
    """
    hosts = req.hosts()
    g = len(hosts[0])
    req.require(all(len(h) == g for h in hosts), "nccl_tree", "every server needs the same number of ranks")
    if req.n < 2:
        return Schedule(req.nodes, [])
    h = len(hosts)
    across = binary_tree(h)
    shares = split_bytes(req.nbytes, 2 * g)
    parts = []
    for c in range(g):
        leaders = [int(hosts[i][c]) for i in range(h)]
        for which in (0, 1):
            order = np.roll(np.arange(h), -which)
            parent = np.full(req.n, -1, dtype=np.int64)
            for pos in range(h):
                if across.parent[pos] >= 0:
                    parent[leaders[order[pos]]] = leaders[order[across.parent[pos]]]
            for ranks in hosts:
                chain = np.roll(ranks, -c)
                parent[chain[1:]] = chain[:-1]
            t = Tree(parent, leaders[order[across.root]])
            parts.append(chunked(tree_schedule(t, req.nodes, int(shares[2 * c + which]), reduce=True, broadcast=True),
                                 req.chunks, in_order=True))
    return parallel(*parts, channels=True)


def nccl_tree_count(req: Request) -> int:
    """Transfers of one chunk: per channel and tree, every rank but the root sends up once and receives once."""
    hosts = req.hosts()
    req.require(all(len(h) == len(hosts[0]) for h in hosts), "nccl_tree", "every server needs the same number of ranks")
    return 2 * 2 * len(hosts[0]) * (req.n - 1) if req.n > 1 else 0

"""Tree algorithms: pipelined binary trees for broadcast and reduce, NCCL's double binary tree for all-reduce.

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
        d = np.zeros(self.n, dtype=np.int64)
        for v in range(self.n):
            u, k = v, 0
            while self.parent[u] >= 0:
                u, k = int(self.parent[u]), k + 1
            d[v] = k
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

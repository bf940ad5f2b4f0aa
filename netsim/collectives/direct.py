"""Direct algorithms: every transfer straight to its destination in one step, and the dissemination barrier.

all-to-all: block j of each rank's buffer to rank j. reduce-scatter: block j to rank j
(reduced there). all-gather: each rank's block to everyone. all-reduce: reduce-scatter
then all-gather. broadcast / reduce: the whole buffer from / to the root. send/recv:
one message. barrier: ceil(log2 n) rounds, rank r signalling r + 2^i.
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.compose import chunked, step
from netsim.network.partition import split_bytes
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule, Step


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    src, dst = np.nonzero(~np.eye(n, dtype=bool))
    return src, dst


def _exchange(n: int, nbytes: int, by_src: bool) -> Step:
    """Every rank to every other; block j goes to rank j (by_src=False) or rank i's own block i goes out."""
    block = split_bytes(nbytes, n)
    src, dst = _pairs(n)
    return step(src, dst, block[src] if by_src else block[dst])


def direct(op: str):
    def build(req: Request) -> Schedule:
        n, size = req.n, req.nbytes
        if n < 2:
            return Schedule(req.nodes, [])
        if op in ("all_to_all", "reduce_scatter"):
            steps = [_exchange(n, size, by_src=False)]
        elif op == "all_gather":
            steps = [_exchange(n, size, by_src=True)]
        elif op == "all_reduce":
            steps = [_exchange(n, size, by_src=False), _exchange(n, size, by_src=True)]
        elif op == "broadcast":
            others = np.setdiff1d(np.arange(n), [req.root])
            steps = [step(np.full(n - 1, req.root), others, np.full(n - 1, size))]
        elif op == "reduce":
            others = np.setdiff1d(np.arange(n), [req.root])
            steps = [step(others, np.full(n - 1, req.root), np.full(n - 1, size))]
        else:
            raise ValueError(op)
        return chunked(Schedule(req.nodes, steps), req.chunks, in_order=False)

    return build


def dissemination(req: Request) -> Schedule:
    """Barrier: in round i every rank r sends an empty message to r + 2^i; ceil(log2 n) rounds."""
    n = req.n
    steps = []
    d = 1
    ranks = np.arange(n)
    while d < n:
        steps.append(step(ranks, (ranks + d) % n, np.zeros(n, dtype=np.int64)))
        d <<= 1
    return Schedule(req.nodes, steps)


def send_recv(src_node: int, dst_node: int, nbytes: int, chunks: int = 1) -> Schedule:
    """One message from rank 0 to rank 1 (optionally in `chunks` parallel pieces)."""
    return chunked(Schedule(np.array([src_node, dst_node]), [step([0], [1], [nbytes])]), chunks, in_order=False)

"""Ring algorithms: reduce-scatter, all-gather and all-reduce (= reduce-scatter then all-gather).

The buffer of S bytes is cut into n pieces; at step s rank r sends piece (r - s) mod n
to rank r + 1. Reduce-scatter and all-gather take n - 1 steps, all-reduce 2(n - 1).
With `chunks` > 1 every piece is cut again and each sub-piece runs as its own lane,
so a rank forwards the first sub-piece before the last has arrived (pipelining).
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.partition import split_bytes
from netsim.collectives.schedule import Schedule, Step


def ring_schedule(nodes: np.ndarray, nbytes: int, rounds: int, chunks: int = 1) -> Schedule:
    """`rounds` ring steps over `nodes` (in ring order) moving the pieces of an `nbytes` buffer."""
    n = len(nodes)
    if n < 2 or rounds == 0:
        return Schedule(np.tile(nodes, chunks), [])
    pieces = split_bytes(nbytes, n)
    lane_bytes = np.stack([split_bytes(int(p), chunks) for p in pieces])  # piece x lane
    ranks = np.arange(n)
    src = (np.arange(chunks)[:, None] * n + ranks[None, :]).reshape(-1)
    dst = (np.arange(chunks)[:, None] * n + ((ranks + 1) % n)[None, :]).reshape(-1)
    uniform = bool((lane_bytes == lane_bytes[0, 0]).all())
    steps: list[Step] = []
    for s in range(rounds):
        if uniform and steps:
            steps.append(steps[0])
            continue
        piece = (ranks - s) % n
        sizes = lane_bytes[piece, :].T.reshape(-1)  # lane-major, like src
        steps.append(Step(src, dst, sizes))
    return Schedule(np.tile(nodes, chunks), steps)


def ring_reduce_scatter(nodes: np.ndarray, nbytes: int, chunks: int = 1) -> Schedule:
    return ring_schedule(nodes, nbytes, len(nodes) - 1, chunks)


def ring_all_gather(nodes: np.ndarray, nbytes: int, chunks: int = 1) -> Schedule:
    return ring_schedule(nodes, nbytes, len(nodes) - 1, chunks)


def ring_all_reduce(nodes: np.ndarray, nbytes: int, chunks: int = 1) -> Schedule:
    return ring_schedule(nodes, nbytes, 2 * (len(nodes) - 1), chunks)

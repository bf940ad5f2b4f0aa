"""Direct algorithms: all-to-all (every rank to every other at once) and point-to-point send/recv."""

from __future__ import annotations

import numpy as np

from netsim.collectives.partition import split_bytes
from netsim.collectives.schedule import Schedule, Step


def direct_all_to_all(nodes: np.ndarray, nbytes: int, chunks: int = 1) -> Schedule:
    """Each rank's `nbytes` buffer holds n blocks; block j goes to rank j, all in one step."""
    n = len(nodes)
    if n < 2:
        return Schedule(nodes, [])
    block = split_bytes(nbytes, n)
    src, dst = np.nonzero(~np.eye(n, dtype=bool))
    lanes = [Step(src + c * n, dst + c * n, split_bytes_each(block[dst], chunks, c)) for c in range(chunks)]
    merged = Step(np.concatenate([s.src for s in lanes]), np.concatenate([s.dst for s in lanes]),
                  np.concatenate([s.nbytes for s in lanes]))
    return Schedule(np.tile(nodes, chunks), [merged])


def split_bytes_each(sizes: np.ndarray, chunks: int, lane: int) -> np.ndarray:
    """Lane `lane`'s share when each of `sizes` is split into `chunks` near-equal parts."""
    base, extra = np.divmod(sizes, chunks)
    return base + (lane < extra)


def send_recv(src_node: int, dst_node: int, nbytes: int, chunks: int = 1) -> Schedule:
    """One message from rank 0 to rank 1 (optionally in `chunks` parallel pieces)."""
    sizes = split_bytes(nbytes, chunks)
    lanes = np.arange(chunks)
    step = Step(2 * lanes, 2 * lanes + 1, sizes)
    return Schedule(np.tile(np.array([src_node, dst_node]), chunks), [step])

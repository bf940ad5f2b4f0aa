"""Recursive halving-doubling (Rabenseifner): reduce-scatter by halving, all-gather by doubling.

For a power-of-two n, step i pairs rank r with r XOR (n >> (i + 1)) and they swap half of
the block range they still hold: log2(n) steps each way and (n-1)/n of the buffer sent per
rank per phase. All-reduce with another n folds the extra ranks in first: of the first
2q ranks (q = n - 2^floor(log2 n)), each odd one sends its whole buffer to its even
neighbour, the 2^k remaining ranks run halving-doubling, and the result goes back.
Each step is a blocking send-receive: a rank moves on once its own send has arrived too.
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.compose import chunked, step
from netsim.network.partition import split_bytes
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule, Step


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _halving(active: np.ndarray, blocks: np.ndarray) -> list[Step]:
    """Reduce-scatter steps among `active` virtual ranks (a power of two) over `blocks` byte sizes."""
    m = len(active)
    lo, length = np.zeros(m, dtype=np.int64), np.full(m, m, dtype=np.int64)
    prefix = np.concatenate([[0], np.cumsum(blocks)])
    steps = []
    d = m >> 1
    while d:
        me = np.arange(m)
        partner = me ^ d
        half = length // 2
        upper = (me & d) != 0  # keeps the upper half, sends the lower one
        send_lo = np.where(upper, lo, lo + half)
        steps.append(step(active[me], active[partner], prefix[send_lo + half] - prefix[send_lo]))
        lo = np.where(upper, lo + half, lo)
        length = half
        d >>= 1
    return steps


def _doubling(active: np.ndarray, blocks: np.ndarray) -> list[Step]:
    """All-gather steps: the halving steps in reverse, each rank sending what it holds."""
    m = len(active)
    prefix = np.concatenate([[0], np.cumsum(blocks)])
    steps = []
    d = 1
    me = np.arange(m)
    length = 1
    lo = me.copy()  # rank r starts holding block r
    while d < m:
        partner = me ^ d
        steps.append(step(active[me], active[partner], prefix[lo + length] - prefix[lo]))
        lo = np.minimum(lo, lo[partner])
        length *= 2
        d <<= 1
    return steps


def halving_doubling(op: str):
    def build(req: Request) -> Schedule:
        n = req.n
        if n == 1:
            return Schedule(req.nodes, [])
        if op != "all_reduce":
            req.require(_is_power_of_two(n), "halving_doubling", f"{op} needs a power-of-two rank count, got {n}")
        m = 1 << (n.bit_length() - 1)
        q = n - m
        folded = np.arange(1, 2 * q, 2)  # odd ranks among the first 2q sit out the middle
        active = np.setdiff1d(np.arange(n), folded)
        blocks = split_bytes(req.nbytes, m)
        middle = []
        if op in ("all_reduce", "reduce_scatter"):
            middle += _halving(active, blocks)
        if op in ("all_reduce", "all_gather"):
            middle += _doubling(active, blocks)
        steps = middle
        if q:
            whole = np.full(q, req.nbytes)
            steps = [step(folded, folded - 1, whole)] + middle + [step(folded - 1, folded, whole)]
        return chunked(Schedule(req.nodes, steps, wait_sends=True), req.chunks, in_order=False)

    return build


"""Ring algorithms: reduce-scatter, all-gather, all-reduce, one or two directions, and NCCL-like
multi-channel rings (one ring per NIC rail), plus the pipelined chain for broadcast and reduce.

The buffer of S bytes is cut into n pieces; at step s rank r sends piece (r - s) mod n to
its successor. Reduce-scatter and all-gather take n - 1 steps, all-reduce 2(n - 1).
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.compose import chunked, parallel, step
from netsim.errors import ConfigError
from netsim.network.partition import split_bytes
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule, Step


MAX_BUILT = 50_000_000  # transfers a schedule of distinct ring steps may hold (24 bytes each)


def ring_steps(rings: list[np.ndarray], sizes: list[int], rounds: int) -> list[Step]:
    """`rounds` steps of several disjoint rings at once; ring g (virtual ranks in ring order) moves the
    pieces of a `sizes[g]`-byte buffer. Steps repeat as one object when every piece is equal."""
    src = np.concatenate(rings)
    dst = np.concatenate([np.roll(r, -1) for r in rings])
    pieces = [split_bytes(size, len(r)) for r, size in zip(rings, sizes)]
    uniform = all((p == p[0]).all() for p in pieces) and len({int(p[0]) for p in pieces}) == 1
    if not uniform and rounds * len(src) > MAX_BUILT:
        raise ConfigError(f"a ring of {len(src):,} ranks over {rounds:,} steps would build {rounds * len(src):,} "
                          f"transfers ({rounds * len(src) * 24 / 2**30:.0f} GiB), and its steps do not repeat (the "
                          f"buffer does not split evenly, {min(int(p.min()) for p in pieces)}-"
                          f"{max(int(p.max()) for p in pieces)} bytes a piece): use a size that splits evenly "
                          f"or fewer ranks", field="size")
    steps: list[Step] = []
    for s in range(rounds):
        if uniform and steps:
            steps.append(steps[0])
            continue
        nbytes = np.concatenate([p[(np.arange(len(p)) - s) % len(p)] for p in pieces])
        steps.append(step(src, dst, nbytes))
    return steps


def _ring(order: np.ndarray, nbytes: int, rounds: int) -> Schedule:
    """One ring through `order` (node ids); virtual rank i is the i-th node of the ring."""
    n = len(order)
    return Schedule(order, ring_steps([np.arange(n)], [nbytes], rounds) if n > 1 else [])


def ring_rounds(op: str, n: int) -> int:
    """Steps of a ring: 2(n - 1) for all-reduce, n - 1 for reduce-scatter and all-gather."""
    return 2 * (n - 1) if op == "all_reduce" else n - 1


def ring(op: str):
    def build(req: Request) -> Schedule:
        return chunked(_ring(req.nodes, req.nbytes, ring_rounds(op, req.n)), req.chunks, in_order=False)

    return build


def ring_bidirectional(op: str):
    """Half the buffer clockwise, half counter-clockwise: uses both directions of every link."""

    def build(req: Request) -> Schedule:
        half = split_bytes(req.nbytes, 2)
        rounds = ring_rounds(op, req.n)
        both = parallel(_ring(req.nodes, int(half[0]), rounds), _ring(req.nodes[::-1], int(half[1]), rounds),
                        channels=True)
        return chunked(both, req.chunks, in_order=False)

    return build


def channel_orders(req: Request) -> list[np.ndarray]:
    """One ring order (rank ids) per NIC rail: inside each server the ring enters and leaves through
    GPUs of the channel's rail where it can (servers alternate direction), so channel c's server-to-
    server hops use NIC rail c and the channels spread over all rails."""
    hosts = req.hosts()
    rails = req.rail()
    channels = max(len(np.unique(rails[h])) for h in hosts)
    orders = []
    for c in range(channels):
        parts = []
        for i, h in enumerate(hosts):
            local = h[np.argsort(rails[h], kind="stable")]
            rotated = np.roll(local, -(c % len(local)))  # enter at local GPU c, leave at c - 1
            parts.append(rotated if i % 2 == 0 else rotated[::-1])  # odd servers: enter at c - 1, leave at c
        orders.append(np.concatenate(parts))
    return orders


def ring_channels(op: str):
    """NCCL-like rings: one ring per NIC rail, the buffer split evenly across them."""

    def build(req: Request) -> Schedule:
        orders = channel_orders(req)
        shares = split_bytes(req.nbytes, len(orders))
        rounds = ring_rounds(op, req.n)
        rings = [_ring(req.nodes[o], int(s), rounds) for o, s in zip(orders, shares)]
        return chunked(parallel(*rings, channels=True), req.chunks, in_order=False)

    return build


def chain(op: str):
    """Broadcast (root -> root+1 -> ...) or reduce (... -> root) along a pipelined chain of n - 1 hops."""

    def build(req: Request) -> Schedule:
        n = req.n
        order = np.roll(np.arange(n), -req.root)
        if op == "reduce":
            order = order[::-1]  # root - 1, ..., root + 1, root: ends at the root
        steps = [step([k], [k + 1], [req.nbytes]) for k in range(n - 1)]
        return chunked(Schedule(req.nodes[order], steps), req.chunks, in_order=True)

    return build

"""Building schedules from parts: steps from transfer lists, chunked lanes, parallel composition."""

from __future__ import annotations

import numpy as np

from netsim.collectives.schedule import Schedule, Step


def step(src, dst, nbytes) -> Step:
    return Step(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64),
                np.asarray(nbytes, dtype=np.int64))


def split_each(sizes: np.ndarray, parts: int, part: int) -> np.ndarray:
    """Part `part` of each size when every size is split into `parts` near-equal pieces."""
    base, extra = np.divmod(np.asarray(sizes, dtype=np.int64), parts)
    return base + (part < extra)


def chunked(base: Schedule, chunks: int, *, in_order: bool) -> Schedule:
    """`chunks` lanes of `base`, each moving a near-equal share of every transfer.

    Lane c uses virtual ranks c * n + v. With `in_order`, lane c sends a step only after
    lane c - 1's sends of that step arrived (a pipeline); otherwise lanes run side by side.
    """
    if chunks == 1:
        return base
    n = base.num_ranks
    offsets = np.arange(chunks)[:, None] * n
    steps = []
    seen: dict[int, Step] = {}
    for s in base.steps:
        if id(s) not in seen:  # repeated step objects stay shared (cheaper executor bookkeeping)
            seen[id(s)] = Step((s.src[None, :] + offsets).reshape(-1), (s.dst[None, :] + offsets).reshape(-1),
                               np.concatenate([split_each(s.nbytes, chunks, c) for c in range(chunks)]))
        steps.append(seen[id(s)])
    follower = None
    if in_order:
        follower = np.arange(n * chunks) + n
        follower[-n:] = -1
        if base.follower is not None:
            raise ValueError("cannot pipeline a schedule that is already pipelined")
    channel = None if base.channel_of is None else np.tile(base.channel_of, chunks)
    return Schedule(np.tile(base.node_of, chunks), steps, channel, follower, base.wait_sends)


def parallel(*parts: Schedule, channels: bool = False) -> Schedule:
    """Schedules side by side on disjoint virtual ranks (their step k run together).

    With `channels`, part i sends on connection i (its own ECMP key)."""
    sizes = [p.num_ranks for p in parts]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    depth = max(len(p.steps) for p in parts)
    steps = []
    seen: dict[tuple, Step] = {}
    for k in range(depth):
        present = [(p.steps[k], o) for p, o in zip(parts, offsets) if k < len(p.steps)]
        ident = tuple((id(s), o) for s, o in present)
        if ident not in seen:  # parts repeating their step objects together repeat the joint step too
            seen[ident] = Step(np.concatenate([s.src + o for s, o in present]),
                               np.concatenate([s.dst + o for s, o in present]),
                               np.concatenate([s.nbytes for s, _ in present]))
        steps.append(seen[ident])
    follower = None
    if any(p.follower is not None for p in parts):
        follower = np.concatenate([
            np.full(p.num_ranks, -1) if p.follower is None else np.where(p.follower >= 0, p.follower + o, -1)
            for p, o in zip(parts, offsets)
        ])
    channel = None
    if channels:
        channel = np.concatenate([np.full(p.num_ranks, i) for i, p in enumerate(parts)])
    elif any(p.channel_of is not None for p in parts):
        channel = np.concatenate([np.zeros(p.num_ranks, dtype=np.int64) if p.channel_of is None else p.channel_of
                                  for p in parts])
    return Schedule(np.concatenate([p.node_of for p in parts]), steps, channel, follower,
                    any(p.wait_sends for p in parts))

"""NVLS: an all-reduce summed inside the NVSwitch (NVLink SHARP, Hopper and later GPUs).

Every GPU streams its buffer up to the switch, which adds the n buffers as they arrive and streams the
sum back down to every GPU (multicast)::

    gpu0 ──S──►┐                     ┌──S──► gpu0
    gpu1 ──S──►┤  NVSwitch: sum of   ├──S──► gpu1
     ...       │  the n buffers      │        ...
    gpu7 ──S──►┘                     └──S──► gpu7
      step 0 (up)                      step 1 (down)

Pipelined in C chunks (in order on each connection): chunk c travels down while chunk c + 1 travels up,
on the two directions of each GPU's link, so a call takes about (C + 1) / C x S / B where a ring takes
2 (n - 1) / n x S / B: NVLS's bus bandwidth reaches 2 (n - 1) / n of the link. Every rank must be cabled to
one NVSwitch (a server's GPUs); the switch is the schedule's extra virtual rank.
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.compose import chunked, step
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule


def nvswitch_of(req: Request) -> int:
    """The NVSwitch node every rank's GPU is cabled to (a one-line `ConfigError` where there is none)."""
    topo = req.topology
    kinds = np.asarray(topo.node_kind)
    shared = None
    for g in req.nodes.tolist():
        mine = {int(d) for d in topo.link_dst[topo.link_src == g] if kinds[d] == "nvswitch"}
        shared = mine if shared is None else shared & mine
    req.require(bool(shared), "nvls", "every rank must be cabled to one NVSwitch (the GPUs of one server)")
    return min(shared)


def nvls(req: Request) -> Schedule:
    n = req.n
    if n < 2:
        return Schedule(req.nodes, [])
    switch = nvswitch_of(req)
    ranks = np.arange(n)
    up = step(ranks, np.full(n, n), np.full(n, req.nbytes))
    down = step(np.full(n, n), ranks, np.full(n, req.nbytes))
    return chunked(Schedule(np.append(req.nodes, switch), [up, down]), req.chunks, in_order=True)


def nvls_count(req: Request) -> int:
    """Transfers of one chunk: n up and n down (refused where `nvls` is)."""
    if req.n < 2:
        return 0
    nvswitch_of(req)
    return 2 * req.n


__all__ = ["nvls", "nvls_count", "nvswitch_of"]

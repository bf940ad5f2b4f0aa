"""Hierarchical two-level all-reduce: ring reduce-scatter inside each server (NVLink), ring
all-reduce across servers per rail on the reduced shards (NIC), ring all-gather inside the server.

Needs the same number of ranks on every server. Local rank j of every server owns shard j
after the first phase, so the cross-server rings are one per local index (a rail when GPU j
uses NIC j).
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.compose import chunked
from netsim.network.partition import split_bytes
from netsim.collectives.request import Request
from netsim.collectives.ring import ring_steps
from netsim.collectives.schedule import Schedule


def hierarchical(op: str):
    def build(req: Request) -> Schedule:
        hosts = req.hosts()
        g = len(hosts[0])
        req.require(all(len(h) == g for h in hosts), "hierarchical", "every server needs the same number of ranks")
        shards = split_bytes(req.nbytes, g)
        steps = []
        if g > 1:
            steps += ring_steps(hosts, [req.nbytes] * len(hosts), g - 1)
        rails = [np.array([h[j] for h in hosts], dtype=np.int64) for j in range(g)]
        if len(hosts) > 1:
            # after a ring reduce-scatter the rank at ring position i holds piece (i + 1) mod g
            sizes = [int(shards[(j + 1) % g]) for j in range(g)]
            steps += ring_steps(rails, sizes, 2 * (len(hosts) - 1))
        if g > 1:
            steps += ring_steps(hosts, [req.nbytes] * len(hosts), g - 1)
        return chunked(Schedule(req.nodes, steps), req.chunks, in_order=False)

    return build

"""CollNet: an all-reduce summed inside the network's switches (SHARP), one rail at a time.

Inside each server a ring reduce-scatter leaves local rank j with shard j; every server's rank j sends its
shard up through its NIC to the switch its rail shares (rail-optimized: rail j's leaf), which adds the
shards as they arrive and sends the sum back down to each; a ring all-gather inside each server ends it::

    server A: gpu0 gpu1 ──ring RS──► shard 0 @ gpu0, shard 1 @ gpu1 ──ring AG──► (all)
                 │    │                         ▲          ▲
                 ▼    ▼                         │          │
             leaf 0  leaf 1   sum of rail j's shards, sent back down to every server
                 ▲    ▲
    server B: gpu0 gpu1 (the same)

Every server needs the same number of ranks, rank j of each on rail j, and the fabric's switches must
reduce (``switch_reduction: true`` on the topology: InfiniBand SHARP, or Spectrum-X's in-network
reduction). The rail's switch is the one switch all its NICs are cabled to.
"""

from __future__ import annotations

import numpy as np

from netsim.collectives.compose import chunked, step
from netsim.collectives.request import Request
from netsim.collectives.ring import ring_steps
from netsim.collectives.schedule import Schedule
from netsim.network.partition import split_bytes


def rail_switches(req: Request, rails: list[np.ndarray]) -> list[int]:
    """Per rail (ranks), the switch all its ranks' NICs are cabled to (one-line `ConfigError` where none)."""
    topo = req.topology
    kinds = np.asarray(topo.node_kind)
    req.require(bool(topo.meta.get("switch_reduction")), "collnet",
                "the fabric's switches do not reduce (switch_reduction: true on the topology, e.g. SHARP)")
    out = []
    for ranks in rails:
        shared = None
        for g in req.nodes[ranks].tolist():
            nics = {int(d) for d in topo.link_dst[topo.link_src == g] if kinds[d] == "nic"}
            mine = {int(d) for v in nics for d in topo.link_dst[topo.link_src == v]
                    if kinds[d] not in ("gpu", "nic", "nvswitch")}  # the NICs' switches (leaves)
            shared = mine if shared is None else shared & mine
        req.require(bool(shared), "collnet", "the NICs of a rail must share one switch (a rail-optimized fabric)")
        out.append(min(shared))
    return out


def collnet(req: Request) -> Schedule:
    hosts = req.hosts()
    g = len(hosts[0])
    req.require(all(len(h) == g for h in hosts), "collnet", "every server needs the same number of ranks")
    n = req.n
    shards = split_bytes(req.nbytes, g)
    steps = []
    if g > 1:
        steps += ring_steps(hosts, [req.nbytes] * len(hosts), g - 1)
    node_of = req.nodes
    if len(hosts) > 1:
        rails = [np.array([h[j] for h in hosts], dtype=np.int64) for j in range(g)]
        switches = rail_switches(req, rails)
        node_of = np.append(req.nodes, switches)  # virtual rank n + j: rail j's switch
        # after a ring reduce-scatter the rank at ring position j holds piece (j + 1) mod g
        sizes = [int(shards[(j + 1) % g]) for j in range(g)]
        up_src = np.concatenate(rails)
        up_dst = np.concatenate([np.full(len(r), n + j) for j, r in enumerate(rails)])
        up_bytes = np.concatenate([np.full(len(r), sizes[j]) for j, r in enumerate(rails)])
        steps += [step(up_src, up_dst, up_bytes), step(up_dst, up_src, up_bytes)]
    if g > 1:
        steps += ring_steps(hosts, [req.nbytes] * len(hosts), g - 1)
    return chunked(Schedule(node_of, steps), req.chunks, in_order=True)


def collnet_count(req: Request) -> int:
    """Transfers of one chunk: g - 1 rounds of each intra-server ring, and one up and one down per rank across
    servers (refused where `collnet` is)."""
    hosts = req.hosts()
    g = len(hosts[0])
    req.require(all(len(h) == g for h in hosts), "collnet", "every server needs the same number of ranks")
    if len(hosts) > 1:
        rail_switches(req, [np.array([h[j] for h in hosts], dtype=np.int64) for j in range(g)])
    return 2 * (g - 1) * req.n + (2 * req.n if len(hosts) > 1 else 0)


__all__ = ["collnet", "collnet_count", "rail_switches"]

"""Sharded groups: workers that are each a group of GPUs, whose collectives run as one per shard."""

from __future__ import annotations

import numpy as np
import simpy

from netsim.collectives import Communicator


class ShardedGroup:
    """Workers that are each a group of GPUs: worker w owns GPUs shards[j].nodes[w], j = 0..k-1. A
    collective on the group runs as k collectives at once, shard j over the j-th GPU of every worker,
    each on 1/k of the bytes (a sharded outer sync); it ends when the last shard ends."""

    def __init__(self, shards: list[Communicator]):
        if not shards or len({s.size for s in shards}) != 1:
            raise ValueError("shards need the same number of workers")
        self.shards = shards
        self.sim = shards[0].sim
        self.size = shards[0].size
        self.nodes = shards[0].nodes
        self.job, self.name = shards[0].job, "sharded"

    def run(self, op: str, nbytes: int, **kw) -> simpy.Event:
        parts = np.full(len(self.shards), nbytes // len(self.shards))
        parts[: nbytes % len(self.shards)] += 1
        events = [s.run(op, int(b), **kw) for s, b in zip(self.shards, parts)]
        done = self.sim.env.event()
        self.sim.env.all_of(events).callbacks.append(lambda e: done.succeed(max(ev.value for ev in events)))
        return done

    def send(self, sender: int, receiver: int, nbytes: int, tag: str) -> simpy.Event:
        """Worker `sender` sends `nbytes` to worker `receiver`, sharded over the GPU pairs."""
        parts = np.full(len(self.shards), nbytes // len(self.shards))
        parts[: nbytes % len(self.shards)] += 1
        net = self.sim.network
        events = [net.transfer(int(s.nodes[sender]), int(s.nodes[receiver]), int(b), key=(s.job, s.name, "p2p"),
                               tag=tag) for s, b in zip(self.shards, parts)]
        return self.sim.env.all_of(events)


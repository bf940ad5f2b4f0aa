"""`Communicator`: an ordered group of ranks on GPU nodes, and the collectives it runs."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import polars as pl
import simpy

from netsim.collectives.direct import direct_all_to_all, send_recv
from netsim.collectives.ring import ring_all_gather, ring_all_reduce, ring_reduce_scatter
from netsim.collectives.schedule import Schedule, execute
from netsim.errors import ConfigError
from netsim.sim import Simulation

COLLECTIVE_SCHEMA = {
    "id": pl.Int64, "label": pl.Utf8, "op": pl.Utf8, "algo": pl.Utf8, "comm": pl.Utf8, "ranks": pl.Int64,
    "bytes": pl.Int64, "start": pl.Float64, "end": pl.Float64,
}

Builder = Callable[[np.ndarray, int, int], Schedule]  # (nodes in rank order, bytes, chunks) -> Schedule

ALGORITHMS: dict[str, dict[str, Builder]] = {
    "all_reduce": {"ring": ring_all_reduce},
    "reduce_scatter": {"ring": ring_reduce_scatter},
    "all_gather": {"ring": ring_all_gather},
    "all_to_all": {"direct": direct_all_to_all},
}


def register_algorithm(op: str, algo: str, builder: Builder) -> None:
    """Make `algo` available for collective `op` (used by later algorithm modules)."""
    ALGORITHMS.setdefault(op, {})[algo] = builder


def algorithms(op: str) -> list[str]:
    return sorted(ALGORITHMS.get(op, {}))


class Communicator:
    """Ranks 0..n-1 placed on GPU nodes `nodes[r]`; collectives are SimPy events on its simulation."""

    def __init__(self, sim: Simulation, nodes: Sequence[int] | np.ndarray, name: str = "world"):
        self.sim = sim
        self.nodes = np.asarray(nodes, dtype=np.int64)
        if len(self.nodes) == 0:
            raise ConfigError("a communicator needs at least one rank", field="ranks")
        if len(np.unique(self.nodes)) != len(self.nodes):
            raise ConfigError("a communicator cannot hold one GPU twice", field="ranks")
        self.name = name
        self.table = sim.recorder.table("collectives", COLLECTIVE_SCHEMA)
        self._count = 0

    @property
    def size(self) -> int:
        return len(self.nodes)

    def schedule(self, op: str, nbytes: int, algo: str = "ring", chunks: int = 1) -> Schedule:
        if op not in ALGORITHMS:
            raise ConfigError(f"unknown collective {op!r} (known: {', '.join(sorted(ALGORITHMS))})", field="op")
        builder = ALGORITHMS[op].get(algo)
        if builder is None:
            raise ConfigError(f"no algorithm {algo!r} for {op} (known: {', '.join(algorithms(op))})", field="algo")
        if not isinstance(chunks, int) or chunks < 1:
            raise ConfigError(f"chunks must be an integer >= 1, got {chunks!r}", field="chunks")
        if nbytes < 0:
            raise ConfigError(f"size must be >= 0 bytes, got {nbytes}", field="size")
        return builder(self.nodes, int(nbytes), chunks)

    def run(self, op: str, nbytes: int, *, algo: str = "ring", chunks: int = 1, label: str = "") -> simpy.Event:
        """Start collective `op` on an `nbytes` buffer now; the event fires with its end time."""
        schedule = self.schedule(op, nbytes, algo, chunks)
        return self._execute(schedule, op, algo, nbytes, label)

    def all_reduce(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("all_reduce", nbytes, **kw)

    def reduce_scatter(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("reduce_scatter", nbytes, **kw)

    def all_gather(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("all_gather", nbytes, **kw)

    def all_to_all(self, nbytes: int, *, algo: str = "direct", **kw) -> simpy.Event:
        return self.run("all_to_all", nbytes, algo=algo, **kw)

    def send(self, src_rank: int, dst_rank: int, nbytes: int, *, chunks: int = 1, label: str = "") -> simpy.Event:
        """Point-to-point: rank `src_rank` sends `nbytes` to rank `dst_rank`."""
        for r in (src_rank, dst_rank):
            if not 0 <= r < self.size:
                raise ConfigError(f"rank {r} outside communicator {self.name!r} of {self.size}", field="rank")
        schedule = send_recv(int(self.nodes[src_rank]), int(self.nodes[dst_rank]), nbytes, chunks)
        return self._execute(schedule, "send_recv", "direct", nbytes, label)

    def _execute(self, schedule: Schedule, op: str, algo: str, nbytes: int, label: str) -> simpy.Event:
        cid = self._count
        self._count += 1
        start = self.sim.now
        tag = label or f"{self.name}:{op}#{cid}"
        done = execute(self.sim.network, schedule, key=(self.name,), tag=tag)
        result = self.sim.env.event()

        def finished(event: simpy.Event) -> None:
            self.table.append(id=len(self.table.columns["id"]), label=tag, op=op, algo=algo, comm=self.name,
                              ranks=self.size, bytes=int(nbytes), start=start, end=event.value)
            result.succeed(event.value)

        if done.triggered:
            finished(done)
        else:
            done.callbacks.append(finished)
        return result

"""`Communicator`: an ordered group of ranks on GPU nodes, and the collectives it runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import polars as pl
import simpy

from netsim.collectives import nccl
from netsim.collectives.algorithms import ALGORITHMS, OPS, algorithms, alpha_beta, choose
from netsim.collectives.direct import send_recv
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule, execute
from netsim.errors import ConfigError, UnitError
from netsim.network import ConnectionProfile
from netsim.units import parse_size
from netsim.sim import Simulation

COLLECTIVE_SCHEMA = {
    "id": pl.Int64, "job": pl.Utf8, "label": pl.Utf8, "op": pl.Utf8, "algo": pl.Utf8, "chunks": pl.Int64, "comm": pl.Utf8,
    "ranks": pl.Int64, "size_B": pl.Int64, "start_s": pl.Float64, "end_s": pl.Float64,
}


def whole_bytes(nbytes: int | str) -> int:
    """A byte count as an int: ints as they are, a size string (``"1GiB"``) or float parsed, a fractional
    byte count refused (one-line `UnitError` naming `size`)."""
    if isinstance(nbytes, (int, np.integer)) and not isinstance(nbytes, bool):
        return int(nbytes)
    if isinstance(nbytes, (float, np.floating)) and math.isfinite(nbytes) and not float(nbytes).is_integer():
        raise UnitError(f"size {float(nbytes)!r} is not a whole number of bytes", field="size")
    return parse_size(nbytes, field="size")


@dataclass(frozen=True)
class Decision:
    """How a call will run (`Communicator.decide`): netsim's algorithm, its chunks and request (bytes as they
    travel), the route key of its transfers, the delay before its first step, the algorithm as recorded."""

    algo: str
    chunks: int
    request: Request
    key: tuple  # the route key of its transfers (a `ConnectionProfile` in it under NCCL's model)
    delay: float  # seconds from the call's start to its first step
    shown: str  # as recorded: ``ring``, or under NCCL's model ``ring:ring/LL`` (netsim's algorithm:NCCL's pick)


@dataclass(frozen=True)
class Plan(Decision):
    """A call as it will run (`Communicator.plan`): its `Decision` and the schedule built from it."""

    schedule: Schedule


class Communicator:
    """Ranks 0..n-1 placed on GPU nodes `nodes[r]`; collectives are SimPy events on its simulation."""

    def __init__(self, sim: Simulation, nodes: Sequence[int] | np.ndarray, name: str = "world", job: str = ""):
        self.sim = sim
        self.nodes = np.asarray(nodes, dtype=np.int64)
        if len(self.nodes) == 0:
            raise ConfigError("a communicator needs at least one rank", field="ranks")
        if len(np.unique(self.nodes)) != len(self.nodes):
            raise ConfigError("a communicator cannot hold one GPU twice", field="ranks")
        self.name = name
        self.job = job
        self.table = sim.recorder.table("collectives", COLLECTIVE_SCHEMA)
        self._count = 0
        self._measured: tuple[float, float] | None = None
        self._nccl = None  # NCCL's view of this communicator (`nccl.NcclSystem`), found on the first NCCL call

    @property
    def size(self) -> int:
        return len(self.nodes)

    def request(self, nbytes: int | str, chunks: int = 1, root: int = 0) -> Request:
        """A call's request: `nbytes` in whole bytes, or a size string (``"1GiB"``); a fractional byte count
        is refused."""
        if not isinstance(chunks, int) or chunks < 1:
            raise ConfigError(f"chunks must be an integer >= 1, got {chunks!r}", field="chunks")
        nbytes = whole_bytes(nbytes)
        if nbytes < 0:
            raise ConfigError(f"size must be >= 0 bytes, got {nbytes}", field="size")
        if not 0 <= root < self.size:
            raise ConfigError(f"root {root} outside communicator {self.name!r} of {self.size}", field="root")
        return Request(self.nodes, int(nbytes), chunks, self.sim.topology, root)

    def resolve(self, op: str, nbytes: int, algo: str = "auto", chunks: int = 1, root: int = 0
                ) -> tuple[str, int, Request]:
        """The concrete (algorithm, chunks) for a call — `auto` decided here — and its request."""
        if op not in ALGORITHMS:
            raise ConfigError(f"unknown collective {op!r} (known: {', '.join(OPS)})", field="op")
        if algo != "auto" and algo not in ALGORITHMS[op]:
            raise ConfigError(f"no algorithm {algo!r} for {op} (known: {', '.join(algorithms(op))})", field="algo")
        req = self.request(nbytes, chunks, root)
        if algo == "auto":
            if self._measured is None:  # the ranks' alpha and bandwidth: measured once per communicator
                alpha, bw = alpha_beta(req)
                cap = self.sim.network.options.flow_rate_cap  # a connection gets no more (connection_bandwidth)
                self._measured = (alpha, min(bw, cap) if cap else bw)
            algo, chunks = choose(op, req, self.sim.network.options.overhead, self._measured)
            req = self.request(nbytes, chunks, root)
        return algo, chunks, req

    def schedule(self, op: str, nbytes: int, algo: str = "auto", chunks: int = 1, root: int = 0) -> Schedule:
        return self.plan(op, nbytes, algo, chunks, root).schedule

    def decide(self, op: str, nbytes: int, algo: str = "auto", chunks: int = 1, root: int = 0) -> Decision:
        """How a call will run, before its schedule is built (`plan` builds it; work estimates count from
        this). Under NCCL's model (``Simulation(collectives="nccl")``) NCCL's tuner picks the algorithm (an
        explicit ``ring`` or ``tree`` forces it, as ``NCCL_ALGO`` does) and the protocol, and the call carries
        the protocol's bytes, per-hop latency and channel cap (`netsim.collectives.nccl`); all-to-all,
        barriers and other algorithms run as netsim's ideal ones."""
        nbytes = whole_bytes(nbytes)
        key = (self.job, self.name)
        if self.sim.collectives == "nccl" and op in nccl.OPS and algo in ("auto", "ring", "tree") and \
                self.size > 1 and nbytes > 0:
            if self._nccl is None:
                self._nccl = nccl.nccl_system(self.sim.topology, self.nodes, arch=self.sim.sm)
            call = nccl.nccl_call(self._nccl, op, nbytes, only=None if algo == "auto" else algo)
            req = self.request(int(math.ceil(nbytes * call.wire)), call.chunks, root)
            profile = ConnectionProfile(call.step_latency_s, call.net_latency_s, call.connection_Bps)
            return Decision(call.algo, call.chunks, req, key + (profile,), call.base_latency_s,
                            f"{call.algo}:{call.choice.name}")
        algo, chunks, req = self.resolve(op, nbytes, algo, chunks, root)
        return Decision(algo, chunks, req, key, 0.0, algo)

    def plan(self, op: str, nbytes: int, algo: str = "auto", chunks: int = 1, root: int = 0) -> Plan:
        """How a call runs (`decide`), its schedule built: the schedule, the route key of its transfers, a
        delay before its first step and the algorithm as recorded."""
        d = self.decide(op, nbytes, algo, chunks, root)
        return Plan(**{f.name: getattr(d, f.name) for f in fields(d)},
                    schedule=ALGORITHMS[op][d.algo].build(d.request))

    def run(self, op: str, nbytes: int | str, *, algo: str = "auto", chunks: int = 1, root: int = 0,
            label: str = "") -> simpy.Event:
        """Start collective `op` on an `nbytes` buffer (bytes, or a size string such as ``"1GiB"``) now; the
        event fires with its end time."""
        nbytes = whole_bytes(nbytes)
        return self.run_plan(self.plan(op, nbytes, algo, chunks, root), op, nbytes, label)

    def run_plan(self, plan: Plan, op: str, nbytes: int, label: str = "") -> simpy.Event:
        """Start a call planned by `plan` now (what `run` does after planning)."""
        return self._execute(plan.schedule, op, plan.shown, plan.chunks, nbytes, label, key=plan.key, delay=plan.delay)

    def all_reduce(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("all_reduce", nbytes, **kw)

    def reduce_scatter(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("reduce_scatter", nbytes, **kw)

    def all_gather(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("all_gather", nbytes, **kw)

    def all_to_all(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("all_to_all", nbytes, **kw)

    def broadcast(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("broadcast", nbytes, **kw)

    def reduce(self, nbytes: int, **kw) -> simpy.Event:
        return self.run("reduce", nbytes, **kw)

    def barrier(self, **kw) -> simpy.Event:
        return self.run("barrier", 0, **kw)

    def send(self, src_rank: int, dst_rank: int, nbytes: int, *, chunks: int = 1, label: str = "") -> simpy.Event:
        """Point-to-point: rank `src_rank` sends `nbytes` (bytes, or a size string) to rank `dst_rank`."""
        nbytes = whole_bytes(nbytes)
        for r in (src_rank, dst_rank):
            if not 0 <= r < self.size:
                raise ConfigError(f"rank {r} outside communicator {self.name!r} of {self.size}", field="rank")
        schedule = send_recv(int(self.nodes[src_rank]), int(self.nodes[dst_rank]), nbytes, chunks)
        return self._execute(schedule, "send_recv", "direct", chunks, nbytes, label)

    def _execute(self, schedule: Schedule, op: str, algo: str, chunks: int, nbytes: int, label: str, *,
                 key: tuple | None = None, delay: float = 0.0) -> simpy.Event:
        cid = self._count
        self._count += 1
        start = self.sim.now
        tag = label or f"{self.name}:{op}#{cid}"
        tag = f"{self.job}/{tag}" if self.job else tag
        key = (self.job, self.name) if key is None else key
        if delay > 0:  # the call's first step waits (NCCL's base latency)
            done = self.sim.env.event()

            def begin():
                yield self.sim.env.timeout(delay)
                execute(self.sim.network, schedule, key=key, tag=tag, compress=self.sim.compress,
                        note=self.sim.note_compressed).callbacks.append(
                    lambda e: done.succeed(e.value))

            self.sim.env.process(begin())
        else:
            done = execute(self.sim.network, schedule, key=key, tag=tag, compress=self.sim.compress,
                           note=self.sim.note_compressed)
        result = self.sim.env.event()

        def finished(event: simpy.Event) -> None:
            self.table.append(id=len(self.table.columns["id"]), job=self.job, label=label or tag, op=op, algo=algo, chunks=chunks,
                              comm=self.name,
                              ranks=self.size, size_B=int(nbytes), start_s=start, end_s=event.value)
            result.succeed(event.value)

        if done.triggered:
            finished(done)
        else:
            done.callbacks.append(finished)
        return result

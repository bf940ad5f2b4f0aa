"""What every network model shares: the `transfer` interface, ids, records, completion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import simpy

from netsim.errors import ConfigError
from netsim.routing import Route, Router
from netsim.telemetry import LinkMeter, Recorder
from netsim.topology import Topology

TRANSFER_SCHEMA = {
    "id": pl.Int64, "src": pl.Int64, "dst": pl.Int64, "bytes": pl.Int64,
    "start": pl.Float64, "end": pl.Float64, "tag": pl.Utf8,
}


@dataclass(frozen=True)
class TransferRecord:
    """A finished transfer: what moved, between which nodes, when (seconds)."""

    id: int
    src: int
    dst: int
    nbytes: int
    start: float
    end: float
    tag: str


@dataclass(frozen=True)
class NetworkOptions:
    """Model parameters shared by all network models.

    overhead: fixed per-transfer latency added to the path latency (the alpha of a
    software stack), seconds. flow_rate_cap: the most one transfer may get, bytes/s.
    endpoint_rate_cap: the most one sending node (GPU/NIC) may inject in total, bytes/s.
    """

    overhead: float = 0.0
    flow_rate_cap: float | None = None
    endpoint_rate_cap: float | None = None

    def __post_init__(self) -> None:
        if self.overhead < 0:
            raise ConfigError(f"must be >= 0, got {self.overhead!r}", field="network.overhead")
        for name in ("flow_rate_cap", "endpoint_rate_cap"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"must be > 0, got {value!r}", field=f"network.{name}")


class NetworkModel:
    """Base of every model: `transfer(src, dst, nbytes, *, key=None, tag='') -> simpy.Event`.

    The event's value is the `TransferRecord`. Subclasses decide when the bytes have
    moved and call `_finish`.
    """

    name = "base"

    def __init__(self, env: simpy.Environment, topo: Topology, router: Router, recorder: Recorder,
                 meter: LinkMeter | None = None, options: NetworkOptions | None = None):
        self.env, self.topo, self.router, self.meter = env, topo, router, meter
        self.options = options or NetworkOptions()
        self.table = recorder.table("transfers", TRANSFER_SCHEMA)
        self._next_id = 0
        self.bytes_sent = 0

    def transfer(self, src: int, dst: int, nbytes: int, *, key: tuple | None = None, tag: str = "") -> simpy.Event:
        if nbytes < 0:
            raise ValueError(f"transfer of {nbytes} bytes")
        route = self.router.route(src, dst, () if key is None else key)
        event = self.env.event()
        tid = self._next_id
        self._next_id += 1
        self.bytes_sent += nbytes
        self._start(tid, src, dst, int(nbytes), route, event, tag)
        return event

    def _start(self, tid: int, src: int, dst: int, nbytes: int, route: Route, event: simpy.Event, tag: str) -> None:
        raise NotImplementedError

    def _solo_rate(self, route: Route) -> float:
        """The rate a transfer gets alone on the fabric: its bottleneck, after the caps."""
        rate = float(np.min(self.topo.capacity[route.links] / route.coef))
        for cap in (self.options.flow_rate_cap, self.options.endpoint_rate_cap):
            if cap is not None:
                rate = min(rate, cap)
        return rate

    def _finish(self, tid: int, src: int, dst: int, nbytes: int, start: float, drained: float,
                route: Route, event: simpy.Event, tag: str) -> None:
        """The last byte left the sender at `drained`; it arrives one path latency (+ overhead) later."""
        delay = route.latency + self.options.overhead
        end = drained + delay
        record = TransferRecord(tid, src, dst, nbytes, start, end, tag)
        self.table.append(id=tid, src=src, dst=dst, bytes=nbytes, start=start, end=end, tag=tag)
        wait = end - self.env.now
        if wait <= 0:
            event.succeed(record)
        else:
            timer = self.env.timeout(wait)
            timer.callbacks.append(lambda _t, ev=event, rec=record: ev.succeed(rec))

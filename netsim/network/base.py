"""What every network model shares: the batch and single `transfer` interface, ids, records, arrival.

The core call is `send_batch`: many transfers issued at one instant (a collective step)
with one callback told, per arrival instant, which of them have arrived. `transfer` is a
batch of one that returns a `simpy.Event` whose value is the `TransferRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import polars as pl
import simpy

from netsim.errors import ConfigError
from netsim.routing import Router
from netsim.telemetry import LinkMeter, Recorder
from netsim.topology import Topology

STEP_SCHEMA = {
    "batch": pl.Int64, "tag": pl.Utf8, "time": pl.Float64, "transfers": pl.Int64, "bytes": pl.Int64,
    "max_load": pl.Float64, "lower_bound": pl.Float64,
}

TRANSFER_SCHEMA = {
    "id": pl.Int64, "src": pl.Int64, "dst": pl.Int64, "bytes": pl.Int64,
    "start": pl.Float64, "end": pl.Float64, "tag": pl.Utf8,
}

ROUTE_BLOCKS = 4096  # cached route blocks (see `_routes`) before the cache starts afresh
ARRIVAL_TOLERANCE = 1e-12  # relative: arrival times closer than this are one instant

OnArrival = Callable[[np.ndarray, float], None]  # (indices within the batch, arrival time)


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
        if not self.overhead >= 0:
            raise ConfigError(f"must be >= 0, got {self.overhead!r}", field="network.overhead")
        for name in ("flow_rate_cap", "endpoint_rate_cap"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"must be > 0, got {value!r}", field=f"network.{name}")


@dataclass(frozen=True)
class Batch:
    """Transfers issued together; `routes` are the router's answers, one per transfer."""

    first_id: int
    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    start: float
    tag: str
    on_arrival: OnArrival
    links: np.ndarray  # concatenated route links
    coef: np.ndarray
    counts: np.ndarray  # route entries per transfer
    latency: np.ndarray  # path latency + overhead per transfer


class NetworkModel:
    """Base of every model. Subclasses decide when bytes have drained and call `_drained`."""

    name = "base"

    def __init__(self, env: simpy.Environment, topo: Topology, router: Router, recorder: Recorder,
                 meter: LinkMeter | None = None, options: NetworkOptions | None = None):
        self.env, self.topo, self.router, self.meter = env, topo, router, meter
        self.options = options or NetworkOptions()
        self.table = recorder.table("transfers", TRANSFER_SCHEMA)
        self._next_id = 0
        self._blocks: dict[tuple, tuple[np.ndarray, ...]] = {}
        self.bytes_sent = 0
        self.transfers_started = 0
        self._recorder = recorder
        self._reference: Router | None = None
        self._fabric = None

    def record_steps(self, reference: Router) -> None:
        """Record, per batch (a collective step), the most bytes any fabric link must carry and the
        same under `reference` routing (ideal spraying: the lower bound of REFERENCE.md section 2)."""
        self._reference = reference
        kinds = np.asarray(self.topo.node_kind)
        endpoint = np.isin(kinds, ["gpu", "nic", "nvswitch"])
        self._fabric = ~(endpoint[self.topo.link_src] | endpoint[self.topo.link_dst])
        self._steps = self._recorder.table("steps", STEP_SCHEMA)

    def _fabric_max_load(self, links: np.ndarray, coef: np.ndarray, counts: np.ndarray, sizes: np.ndarray) -> float:
        load = np.bincount(links, weights=coef * np.repeat(sizes, counts), minlength=self.topo.num_links)
        return float(load[self._fabric].max()) if self._fabric.any() else 0.0

    def send_batch(self, src: Sequence[int] | np.ndarray, dst: Sequence[int] | np.ndarray,
                   nbytes: Sequence[int] | np.ndarray | int, on_arrival: OnArrival, *,
                   key: tuple = (), tag: str = "") -> None:
        """Start transfers src[i] -> dst[i] of nbytes[i] now; `on_arrival(indices, t)` reports arrivals."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        sizes = np.broadcast_to(np.asarray(nbytes, dtype=np.int64), src.shape).copy()
        if len(src) == 0:
            return
        if (sizes < 0).any():
            raise ValueError("negative transfer size")
        links, coef, counts, latency = self._routes(src, dst, key)
        batch = Batch(
            first_id=self._next_id, src=src, dst=dst, nbytes=sizes, start=self.env.now, tag=tag,
            on_arrival=on_arrival, links=links, coef=coef, counts=counts, latency=latency,
        )
        if self._reference is not None:
            ref = self._reference.route_batch(src.tolist(), dst.tolist(), key)
            ref_counts = np.fromiter((len(r.links) for r in ref), dtype=np.int64, count=len(ref))
            bound = self._fabric_max_load(np.concatenate([r.links for r in ref]),
                                          np.concatenate([r.coef for r in ref]), ref_counts, sizes)
            self._steps.append(batch=batch.first_id, tag=tag, time=self.env.now, transfers=len(src),
                               bytes=int(sizes.sum()), max_load=self._fabric_max_load(links, coef, counts, sizes),
                               lower_bound=bound)
        self._next_id += len(src)
        self.transfers_started += len(src)
        self.bytes_sent += int(sizes.sum())
        self._start(batch)

    def _routes(self, src: np.ndarray, dst: np.ndarray, key: tuple) -> tuple[np.ndarray, ...]:
        """Concatenated routes of a batch: (links, coef, entries per transfer, latency + overhead).

        Collective steps repeat the same (src, dst) lists over and over, so whole blocks are cached.
        """
        block_key = (src.tobytes(), dst.tobytes(), key)
        block = self._blocks.get(block_key)
        if block is None:
            routes = self.router.route_batch(src.tolist(), dst.tolist(), key)
            counts = np.fromiter((len(r.links) for r in routes), dtype=np.int64, count=len(routes))
            latency = np.fromiter((r.latency for r in routes), dtype=np.float64, count=len(routes))
            block = (np.concatenate([r.links for r in routes]), np.concatenate([r.coef for r in routes]),
                     counts, latency + self.options.overhead)
            if len(self._blocks) >= ROUTE_BLOCKS:
                self._blocks.clear()
            self._blocks[block_key] = block
        return block

    def transfer(self, src: int, dst: int, nbytes: int, *, key: tuple | None = None, tag: str = "") -> simpy.Event:
        """One transfer; the returned event fires on arrival with its `TransferRecord`."""
        event = self.env.event()
        first = self._next_id
        start = self.env.now

        def arrived(_idx: np.ndarray, t: float) -> None:
            event.succeed(TransferRecord(first, src, dst, int(nbytes), start, t, tag))

        self.send_batch([src], [dst], [nbytes], arrived, key=() if key is None else key, tag=tag)
        return event

    def _start(self, batch: Batch) -> None:
        raise NotImplementedError

    def _solo_rates(self, batch: Batch) -> np.ndarray:
        """The rate each transfer would get alone on the fabric: its bottleneck, after the caps."""
        owner = np.repeat(np.arange(len(batch.src)), batch.counts)
        per_entry = self.topo.capacity[batch.links] / batch.coef
        rate = np.full(len(batch.src), np.inf)
        np.minimum.at(rate, owner, per_entry)
        for cap in (self.options.flow_rate_cap, self.options.endpoint_rate_cap):
            if cap is not None:
                rate = np.minimum(rate, cap)
        return rate

    def _drained(self, batch: Batch, idx: np.ndarray, drained: np.ndarray | float) -> None:
        """Transfers `idx` of `batch` sent their last byte at `drained`; they arrive a latency later."""
        end = drained + batch.latency[idx]
        self.table.extend(id=batch.first_id + idx, src=batch.src[idx], dst=batch.dst[idx],
                          bytes=batch.nbytes[idx], start=np.full(len(idx), batch.start), end=end, tag=batch.tag)
        # Arrivals within a whisker of each other (float noise from summing the same latencies in
        # another order) are delivered together, at the latest of their times, so collective
        # steps stay in one batch instead of splitting into many nearly simultaneous ones.
        now = self.env.now
        if len(idx) == 1 or end.min() == end.max():
            self._deliver(batch, idx, float(end.max()), now)
            return
        order = np.argsort(end, kind="stable")
        ends = end[order]
        cuts = np.flatnonzero(np.diff(ends) > ARRIVAL_TOLERANCE * max(abs(float(ends[-1])), 1e-9)) + 1
        for part in np.split(order, cuts):
            self._deliver(batch, np.sort(idx[part]), float(end[part].max()), now)

    def _deliver(self, batch: Batch, members: np.ndarray, t: float, now: float) -> None:
        timer = self.env.timeout(max(t - now, 0.0))
        timer.callbacks.append(lambda _e: batch.on_arrival(members, t))

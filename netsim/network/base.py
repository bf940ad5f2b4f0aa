"""What every network model shares: the batch and single `transfer` interface, ids, records, arrival.

The core call is `send_batch`: many transfers issued at one instant (a collective step)
with one callback told, per arrival instant, which of them have arrived. `transfer` is a
batch of one that returns a `simpy.Event` whose value is the `TransferRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import polars as pl
import simpy

from netsim.errors import ConfigError
from netsim.network.dataflow import Dataflow, DataflowRun, run_python
from netsim.routing import Router
from netsim.telemetry import LinkMeter, Recorder
from netsim.topology import Topology

STEP_SCHEMA = {
    "batch": pl.Int64, "tag": pl.Utf8, "time_s": pl.Float64, "transfers": pl.Int64, "size_B": pl.Int64,
    "max_load_B": pl.Float64, "lower_bound_B": pl.Float64,
}

TRANSFER_SCHEMA = {
    "id": pl.Int64, "src": pl.Int64, "dst": pl.Int64, "size_B": pl.Int64,
    "start_s": pl.Float64, "end_s": pl.Float64, "tag": pl.Utf8,
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
    software stack), seconds. flow_rate_cap: the most one transfer may get, bytes/s. tcp_window and
    streams: a TCP-like cap of streams x window / round-trip time per flow (round trip = twice the path
    latency), the limit of long-distance links.
    endpoint_rate_cap: the most one sending node (GPU/NIC) may inject in total, bytes/s.
    """

    overhead: float = 0.0
    flow_rate_cap: float | None = None
    endpoint_rate_cap: float | None = None
    tcp_window: float | None = None  # bytes in flight per stream: caps a flow at streams x window / RTT
    streams: int = 1  # parallel streams per transfer (each with its own window)

    def flow_cap(self, path_latency: float | np.ndarray, share: float = 1.0) -> float | np.ndarray:
        """The most one flow on a path of this one-way latency may get (inf: no cap); elementwise for
        an array of latencies. A flow carrying `share` of its transfer's bytes (one of its independent
        subflows) gets that share of `flow_rate_cap`: the cap is the transfer's, however it is split."""
        latency = np.asarray(path_latency, dtype=np.float64)
        cap = np.full(latency.shape, np.inf if self.flow_rate_cap is None else self.flow_rate_cap * share)
        if self.tcp_window is not None:
            with np.errstate(divide="ignore"):
                window = self.streams * self.tcp_window / (2 * latency)
            cap = np.where(latency > 0, np.minimum(cap, window), cap)
        return cap if latency.ndim else float(cap)

    def __post_init__(self) -> None:
        if not self.overhead >= 0:
            raise ConfigError(f"must be >= 0, got {self.overhead!r}", field="network.overhead")
        if self.streams < 1:
            raise ConfigError(f"must be >= 1, got {self.streams!r}", field="network.streams")
        for name in ("flow_rate_cap", "endpoint_rate_cap", "tcp_window"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"must be > 0, got {value!r}", field=f"network.{name}")


SERVER_TIERS = ("nvlink", "pcie")  # links inside a server: a transfer using only these stays in its node


@dataclass(frozen=True)
class ConnectionProfile:
    """What a connection's transport adds to its route, carried in the route key of its transfers (anywhere
    in the key tuple). Each transfer's latency becomes at least its transport's per-hop latency — `floor`
    for a transfer inside a server (links of `SERVER_TIERS` only), `net_floor` for one that crosses the
    network — plus the network's own overhead, however short its path (a path slower than that keeps its
    own latency: a long cable still counts). The connection gets at most `cap` bytes/s, shared by its
    subflows in proportion to their bytes. The profile is not part of the route: ECMP hashes the key without
    it, so a connection keeps its paths whatever its transport does (NCCL's protocols on one channel,
    `netsim.collectives.nccl`)."""

    floor: float = 0.0
    net_floor: float = 0.0
    cap: float = float("inf")

    def apply(self, block: "RouteBlock", topo: Topology, overhead: float = 0.0) -> "RouteBlock":
        floor = np.full(len(block.latency), self.floor)
        if self.net_floor != self.floor and len(block.links):
            outside = np.concatenate([[0], np.cumsum(~np.isin(np.asarray(topo.link_tier, dtype=object)[block.links],
                                                              SERVER_TIERS))])
            ends = np.cumsum(block.counts)
            crosses = np.zeros(len(block.latency), dtype=bool)
            np.logical_or.at(crosses, block.owner, outside[ends] > outside[ends - block.counts])  # any link outside
            floor = np.where(crosses, self.net_floor, self.floor)
        return replace(block, latency=np.maximum(block.latency, floor + overhead),
                       cap=np.minimum(block.cap, self.cap * block.weight))


def split_profile(key: tuple) -> tuple[tuple, ConnectionProfile | None]:
    """(the route key without its `ConnectionProfile`, the profile or None)."""
    for i, part in enumerate(key):
        if isinstance(part, ConnectionProfile):
            return key[:i] + key[i + 1:], part
    return key, None


@dataclass(frozen=True, eq=False)
class RouteBlock:
    """The routes of a batch, flattened into flows (one per transfer, or one per independent subflow)."""

    routes: list  # one `Route` per transfer (empty when the policy routed the batch as arrays)
    owner: np.ndarray  # transfer of each flow
    weight: np.ndarray  # share of its transfer's bytes
    path: np.ndarray  # path index within the route (-1: fixed split over all its paths)
    links: np.ndarray  # concatenated flow links
    coef: np.ndarray
    counts: np.ndarray  # entries per flow
    latency: np.ndarray  # per transfer: path latency + overhead
    first_flow: np.ndarray  # per transfer: index of its first flow
    cap: np.ndarray  # per flow: the most it may get (inf: none)


@dataclass(frozen=True, eq=False)
class Batch:
    """Transfers issued together, and the flows that carry them."""

    first_id: int
    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    start: float
    tag: str
    key: tuple
    on_arrival: OnArrival
    block: RouteBlock
    flow_bytes: np.ndarray  # whole bytes per flow, summing to each transfer's size
    all_live: bool  # every flow has bytes to move

    @property
    def latency(self) -> np.ndarray:
        return self.block.latency


def _one_flow_each(routes: list, links: np.ndarray, coef: np.ndarray, counts: np.ndarray, latency: np.ndarray,
                   options: NetworkOptions) -> RouteBlock:
    """The block of transfers that are one flow each: flow i is transfer i, on links given as whole arrays."""
    n = len(counts)
    index = np.arange(n, dtype=np.int64)
    return RouteBlock(routes, index, np.ones(n), np.full(n, -1, dtype=np.int64), links, coef, counts,
                      latency + options.overhead, index, options.flow_cap(latency))


def _flatten(routes: list, options: NetworkOptions, link_latency: np.ndarray) -> RouteBlock:
    if not any(r.independent for r in routes):  # one flow per transfer: whole arrays at once
        n = len(routes)
        return _one_flow_each(routes, np.concatenate([r.links for r in routes]).astype(np.int64, copy=False),
                              np.concatenate([r.coef for r in routes]).astype(np.float64, copy=False),
                              np.fromiter((len(r.links) for r in routes), dtype=np.int64, count=n),
                              np.fromiter((r.latency for r in routes), dtype=np.float64, count=n), options)
    owner, weight, path, links, coef, counts, cap = [], [], [], [], [], [], []
    for i, r in enumerate(routes):
        if r.independent:
            for j, (p, w) in enumerate(zip(r.paths, r.weights)):
                owner.append(i), weight.append(w), path.append(j)
                links.append(np.asarray(p, dtype=np.int64)), coef.append(np.ones(len(p))), counts.append(len(p))
                cap.append(options.flow_cap(float(link_latency[list(p)].sum()), w))
        else:
            owner.append(i), weight.append(1.0), path.append(-1)
            links.append(r.links), coef.append(r.coef), counts.append(len(r.links))
            cap.append(options.flow_cap(r.latency))
    owner_a = np.asarray(owner, dtype=np.int64)
    first = np.searchsorted(owner_a, np.arange(len(routes)))
    latency = np.fromiter((r.latency for r in routes), dtype=np.float64, count=len(routes)) + options.overhead
    return RouteBlock(routes, owner_a, np.asarray(weight), np.asarray(path, dtype=np.int64), np.concatenate(links),
                      np.concatenate(coef), np.asarray(counts, dtype=np.int64), latency, first, np.asarray(cap))


def _flow_bytes(block: RouteBlock, sizes: np.ndarray) -> np.ndarray:
    """Each transfer's bytes dealt to its flows by weight, in whole bytes (remainder to the first flow)."""
    if len(block.owner) == len(sizes):
        return sizes.copy()
    share = np.floor(sizes[block.owner] * block.weight).astype(np.int64)
    short = sizes - np.bincount(block.owner, weights=share, minlength=len(sizes)).astype(np.int64)
    share[block.first_flow] += short
    return share


class NetworkModel:
    """Base class of network models: moves the bytes of transfers over their routes in simulated time.

    The shared part routes a batch (through the `Router`, caching the routes of batches it has
    seen), splits it into flows (one per transfer, or one per subflow of an `independent`
    route), records every transfer, and delivers arrivals a path latency + overhead after the
    last byte left. Subclasses set `name` and `help` (listed in `netsim.network.MODELS`) and
    implement `_start`: given a `Batch`, decide when each flow's bytes have drained and call
    `_flows_drained` for them (possibly in several calls, at the instants they drain), which
    tells learning routing policies and then `_drained` once a transfer's last flow is done.
    They may extend `fail_links` / `degrade_links` (calling these) to act on flows in flight.
    """

    name = "base"
    help = ""  # one line for `--help` and error messages

    def __init__(self, env: simpy.Environment, topo: Topology, router: Router, recorder: Recorder,
                 meter: LinkMeter | None = None, options: NetworkOptions | None = None):
        self.env, self.topo, self.router, self.meter = env, topo, router, meter
        self.options = options or NetworkOptions()
        self.table = recorder.table("transfers", TRANSFER_SCHEMA)
        self._next_id = 0
        self._blocks: dict[tuple, tuple[np.ndarray, ...]] = {}
        self.transfers_started = 0
        self._recorder = recorder
        self._capacity = topo.capacity  # replaced by a copy when links fail or degrade
        self._reference: Router | None = None
        self._fabric = None
        self._due: dict[float, list] = {}  # arrival instant -> [(batch, members)] due then
        self._delivering = False
        self._deferred: list[Callable[[], None]] = []

    def record_steps(self, reference: Router) -> None:
        """Record, per batch (a collective step), the most bytes any fabric link must carry and the
        same under `reference` routing (ideal spraying: on a leaf-spine the least any routing can put
        on the busiest link, as a leaf's uplinks carry all the bytes leaving it and spraying spreads
        them evenly)."""
        self._reference = reference
        kinds = np.asarray(self.topo.node_kind)
        endpoint = np.isin(kinds, ["gpu", "nic", "nvswitch"])
        self._fabric = ~(endpoint[self.topo.link_src] | endpoint[self.topo.link_dst])
        self._steps = self._recorder.table("steps", STEP_SCHEMA)

    def step_loads(self, src: np.ndarray, dst: np.ndarray, sizes: np.ndarray, key: tuple, block: RouteBlock,
                   flow_bytes: np.ndarray) -> dict[str, float]:
        """For a step's transfers routed as `block`: the most bytes a fabric link carries (`max_load`) and the
        same under the reference routing (`lower_bound`); see `record_steps`."""
        ref = _flatten(self._reference.route_batch(src.tolist(), dst.tolist(), key), NetworkOptions(),
                       self.topo.latency)
        return dict(max_load_B=self._fabric_max_load(block.links, block.coef, block.counts, flow_bytes),
                    lower_bound_B=self._fabric_max_load(ref.links, ref.coef, ref.counts, _flow_bytes(ref, sizes)))

    def _fabric_max_load(self, links: np.ndarray, coef: np.ndarray, counts: np.ndarray, sizes: np.ndarray) -> float:
        load = np.bincount(links, weights=coef * np.repeat(sizes, counts), minlength=self.topo.num_links)
        return float(load[self._fabric].max()) if self._fabric.any() else 0.0

    def send_batch(self, src: Sequence[int] | np.ndarray, dst: Sequence[int] | np.ndarray,
                   nbytes: Sequence[int] | np.ndarray | int, on_arrival: OnArrival, *,
                   key: tuple = (), tag: str = "") -> None:
        """Start transfers src[i] -> dst[i] of nbytes[i] now; `on_arrival(indices, t)` reports arrivals."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        sizes = np.asarray(nbytes, dtype=np.int64)
        sizes = sizes.copy() if sizes.shape == src.shape else np.broadcast_to(sizes, src.shape).copy()
        if len(src) == 0:
            return
        if sizes.min() < 0:
            raise ValueError("negative transfer size")
        block = self._routes(src, dst, key)
        flow_bytes = _flow_bytes(block, sizes)
        key = split_profile(key)[0]  # the batch keeps its route key: what re-routing and learning policies hash
        batch = Batch(self._next_id, src, dst, sizes, self.env.now, tag, key, on_arrival, block, flow_bytes,
                      bool(flow_bytes.min() > 0))
        if self._reference is not None:
            self._steps.append(batch=batch.first_id, tag=tag, time_s=self.env.now, transfers=len(src),
                               size_B=int(sizes.sum()), **self.step_loads(src, dst, sizes, key, block, flow_bytes))
        self._next_id += len(src)
        self.transfers_started += len(src)
        self._start(batch)

    def _routes(self, src: np.ndarray, dst: np.ndarray, key: tuple) -> RouteBlock:
        """The batch's routes as flows. Collective steps repeat the same (src, dst) lists over and
        over, so whole blocks are cached (policies that learn as they go are asked every time). A
        `ConnectionProfile` in the key is applied to the routes of the key without it."""
        route_key, profile = split_profile(key)
        if profile is not None:
            block_key = (src.tobytes(), dst.tobytes(), key)
            block = None if self.router.learns else self._blocks.get(block_key)
            if block is None:
                block = profile.apply(self._routes(src, dst, route_key), self.topo, self.options.overhead)
                if not self.router.learns:
                    if len(self._blocks) >= ROUTE_BLOCKS:
                        self._blocks.clear()
                    self._blocks[block_key] = block
            return block
        if self.router.learns:
            return _flatten(self.router.route_batch(src.tolist(), dst.tolist(), key), self.options, self.topo.latency)
        block_key = (src.tobytes(), dst.tobytes(), key)
        block = self._blocks.get(block_key)
        if block is None:
            paths = self.router.single_paths(src, dst, key)
            if paths is not None:  # routed as arrays (no Route objects: `routes` stays empty)
                links, counts, latency = paths
                block = _one_flow_each([], links, np.ones(len(links)), counts, latency, self.options)
            else:
                block = _flatten(self.router.route_batch(src.tolist(), dst.tolist(), key), self.options,
                                 self.topo.latency)
            if len(self._blocks) >= ROUTE_BLOCKS:
                self._blocks.clear()
            self._blocks[block_key] = block
        return block

    contended = True  # transfers sharing a link share its capacity (`step_times` counts the busiest link)

    def step_times(self, parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, tuple]]
                   ) -> tuple[float, np.ndarray]:
        """What transfers `parts` — (src, dst, nbytes, route key) each, routed as `send_batch` would route them
        now — cost at the least: (the least time in which the network carries them all however they are
        timed: the busiest link's bytes over its capacity, or a capped flow's bytes over its cap; 0 for a
        model without contention), and each transfer's time alone (latency and overhead plus its bytes at its
        bottleneck rate), in the parts' order. What a repeated step costs once it repeats back to back
        (`netsim.collectives.repeats`)."""
        capacity = self._capacity[:self.topo.num_links]
        load = np.zeros(self.topo.num_links)
        worst = 0.0
        alone = []
        for src, dst, sizes, key in parts:
            src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
            if not len(src):
                continue
            block = self._routes(src, dst, key)
            flow_bytes = _flow_bytes(block, np.asarray(sizes, dtype=np.int64))
            load += np.bincount(block.links, weights=block.coef * np.repeat(flow_bytes, block.counts),
                                minlength=self.topo.num_links)
            capped = np.isfinite(block.cap) & (block.cap > 0)
            if capped.any():
                worst = max(worst, float((flow_bytes[capped] / block.cap[capped]).max()))
            drain = np.zeros(len(src))
            with np.errstate(divide="ignore"):
                np.maximum.at(drain, block.owner, flow_bytes / self._block_solo_rates(block))
            alone.append(block.latency + drain)
        used = (load > 0) & (capacity > 0)
        least = max(worst, float((load[used] / capacity[used]).max()) if used.any() else 0.0)
        return (least if self.contended else 0.0), (np.concatenate(alone) if alone else np.zeros(0))

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
        """Start moving `batch` now (``env.now`` is ``batch.start``).

        This method needs to be implemented by subclasses. Per flow of ``batch.block`` it has
        ``batch.flow_bytes`` to move over the flow's links; it must eventually pass every flow
        to `_flows_drained` at the instant its last byte leaves (zero-byte flows included).
        Called by `send_batch` once per batch, after the batch is recorded and routed.
        """
        raise NotImplementedError(self)

    def run_dataflow(self, flow: Dataflow, on_fire: Callable[[int], None] | None = None) -> DataflowRun:
        """Start a dataflow now (gates and transfers: `netsim.network.dataflow`); returns its run, whose
        `done` event fires (value: end time) when the done gate fires, with every gate's firing instant
        and every transfer's interval recorded on it by then. `on_fire(g)` is called at the instant hook gate g
        (`DataflowBuilder.hook`) fires; `run.count_down(g)` counts gate g down from outside.

        The default is the reference executor (`dataflow.run_python`): each instant's transfers go
        through `send_batch`. A model may override this to run the dataflow itself, faster and with the
        same results, as long as it records every transfer in the transfers table as `send_batch` would
        (and a row per batch in the steps table when `record_steps` is on); the fluid model runs any
        number of dataflows at once in its compiled loop and calls this default where it cannot."""
        return run_python(self, flow, on_fire)

    def close_meter(self) -> None:
        """Hook: bring the link meter up to the present before results are read. A model that meters
        lazily (as `fluid` does, adding a link's load when it changes) adds what it has not yet
        recorded; the default does nothing (models that record eagerly)."""

    def fail_links(self, links: list[int]) -> None:
        """Links stop carrying traffic now: routing avoids them from here on."""
        self.router.set_down(self.router.cache.down | set(int(l) for l in links))
        self._blocks.clear()
        self._capacity = self._capacity.copy()
        self._capacity[list(links)] = 0.0

    def degrade_links(self, links: list[int], factor: float) -> None:
        """Links keep working at `factor` of their capacity from now on."""
        if not 0 < factor:
            raise ValueError(f"degradation factor must be > 0, got {factor}")
        self._capacity = self._capacity.copy()
        self._capacity[list(links)] *= factor

    def _solo_rates(self, batch: Batch) -> np.ndarray:
        """The rate each flow would get alone on the fabric: its bottleneck, after the caps."""
        return self._block_solo_rates(batch.block)

    def _block_solo_rates(self, block: RouteBlock) -> np.ndarray:
        owner = np.repeat(np.arange(len(block.counts)), block.counts)
        per_entry = self._capacity[block.links] / block.coef
        rate = np.full(len(block.counts), np.inf)
        np.minimum.at(rate, owner, per_entry)
        rate = np.minimum(rate, block.cap)
        if self.options.endpoint_rate_cap is not None:
            rate = np.minimum(rate, self.options.endpoint_rate_cap)
        return rate

    def _flows_drained(self, batch: Batch, flows: np.ndarray, drained: np.ndarray | float,
                       parts_left: np.ndarray) -> None:
        """Flows `flows` of `batch` drained at `drained`; a transfer has drained with its last flow.
        `parts_left` counts each transfer's flows still going (updated here)."""
        block = batch.block
        if self.router.learns:
            at = np.broadcast_to(np.asarray(drained, dtype=np.float64), flows.shape)
            for f, t in zip(flows.tolist(), at.tolist()):
                i = int(block.owner[f])
                self.router.observe(int(batch.src[i]), int(batch.dst[i]), batch.key, block.routes[i],
                                    int(block.path[f]), t - batch.start, int(batch.flow_bytes[f]))
        owners = block.owner[flows]
        if len(flows) == 1:  # the common case when transfers drift apart: one flow at a time
            i = int(owners[0])
            parts_left[i] -= 1
            if parts_left[i] == 0:
                self._drained(batch, owners, float(drained[0]) if isinstance(drained, np.ndarray) else drained)
            return
        np.subtract.at(parts_left, owners, 1)
        done = np.unique(owners)
        done = done[parts_left[done] == 0]
        if len(done):
            if np.ndim(drained):
                last = np.full(len(batch.src), -np.inf)
                np.maximum.at(last, owners, drained)
                self._drained(batch, done, last[done])
            else:
                self._drained(batch, done, drained)

    def _drained(self, batch: Batch, idx: np.ndarray, drained: np.ndarray | float) -> None:
        """Transfers `idx` of `batch` sent their last byte at `drained`; they arrive a latency later."""
        if len(idx) == 1:  # one transfer: plain numbers, one row
            i = int(idx[0])
            t = float(drained[0] if isinstance(drained, np.ndarray) else drained) + float(batch.latency[i])
            if self.table.keep:
                self.table.append(id=batch.first_id + i, src=int(batch.src[i]), dst=int(batch.dst[i]),
                                  size_B=int(batch.nbytes[i]), start_s=batch.start, end_s=t, tag=batch.tag)
            self._deliver(batch, idx, t, self.env.now)
            return
        end = drained + batch.latency[idx]
        if self.table.keep:
            self.table.extend(id=batch.first_id + idx, src=batch.src[idx], dst=batch.dst[idx], size_B=batch.nbytes[idx],
                              start_s=np.full(len(idx), batch.start), end_s=end, tag=batch.tag)
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
        """Arrange for `members` of `batch` to arrive at `t`: all arrivals due at one instant share one
        timer and are delivered together, in the order they were arranged (see `defer`)."""
        due = self._due.get(t)
        if due is None:
            self._due[t] = due = []
            timer = self.env.timeout(max(t - now, 0.0), value=t)
            timer.callbacks.append(self._arrive)
        due.append((batch, members))

    def _arrive(self, event: simpy.Event) -> None:
        t = event.value
        self._delivering = True
        try:
            for batch, members in self._due.pop(t):
                batch.on_arrival(members, t)
            while self._deferred:  # what the arrivals deferred, in order (it may defer more)
                deferred, self._deferred = self._deferred, []
                for fn in deferred:
                    fn()
        finally:
            self._delivering = False
        self._delivered()

    def defer(self, fn: Callable[[], None]) -> None:
        """Call `fn` once every arrival of this instant has been delivered: at the end of the current
        delivery round when called from an `on_arrival` callback, else from an event at this instant.
        Executors use it to handle all the arrivals of one instant together (one batch of sends)."""
        if self._delivering:
            self._deferred.append(fn)
        else:
            event = self.env.event()
            event.callbacks.append(lambda _e: fn())
            event.succeed()

    def _delivered(self) -> None:
        """Hook: called after a delivery round (arrivals and what they deferred) at the current instant; a
        model may act at once on the transfers the round started (`fluid` settles its rates here)."""

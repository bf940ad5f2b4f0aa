"""The `Simulation`: SimPy environment, topology, router, network, seeded RNG and recorder."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Generator, Sequence

import numpy as np
import polars as pl
import simpy

from netsim.errors import ConfigError
from netsim.network import NetworkOptions, model_class
from netsim.routing import Router
from netsim.sim.results import Results
from netsim.telemetry import LinkMeter, Recorder
from netsim.topology import Topology

TIMELINE_LINKS = 40  # hottest links kept in the utilisation timeline
LOCAL_TIERS = ("host", "nvlink", "pcie")  # links inside a server; the others are the fabric's


def hottest_links(tiers, busy: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` links that carried traffic, the hottest first by `busy` (bytes over capacity: the time
    they were busy), fabric links before links inside a server — a heat map of them shows where the fabric is
    loaded, not the NVLink or NVSwitch links that carry the most bytes at a fraction of their capacity."""
    local = np.isin(np.asarray(tiers), LOCAL_TIERS)
    order = np.lexsort((-busy, local))  # fabric first, then by heat
    order = order[busy[order] > 0]
    return order[:count]


# "ideal": netsim's algorithms, links at line rate; "nccl": NCCL's tuner picks algorithm and protocol, run with
# the protocol's lines, per-hop latencies and channel caps (`netsim.collectives.nccl`)
COLLECTIVE_MODELS = ("ideal", "nccl")
# "keep": one row per transfer in `Results.transfers`; "drop": none kept (a run that needs only the per-collective,
# per-link and per-step results: a row costs ~50 bytes while the run lasts and ~200 at its end, when the frame is
# built); a directory (a `pathlib.Path`): streamed there as Parquet parts of at most PART_ROWS rows
TRANSFER_RECORDS = ("keep", "drop")
PART_ROWS = 1 << 16
MIN_COMPRESS = 4  # the fewest steps `compress` simulates of a run of identical steps (half measure the period)


def named_transfers(frame: pl.DataFrame, names: pl.Series) -> pl.DataFrame:
    """Transfer rows in id order, their nodes by name (sorted first: the integer columns are cheaper to move)."""
    frame = frame if frame["id"].is_sorted() else frame.sort("id")
    return frame.with_columns(names.gather(frame["src"]).alias("src"), names.gather(frame["dst"]).alias("dst"))


class TransferParts:
    """Sink of a streamed transfers table: each frame it is given becomes the next part-NNNNN.parquet of
    `directory` (its rows in id order; `Results.read` of a folder reads a `transfers/` in it back as one frame)."""

    def __init__(self, directory: Path, names: Sequence[str]):
        self.directory, self.names, self.parts = directory, pl.Series(names, dtype=pl.Utf8), 0

    def __call__(self, frame: pl.DataFrame) -> None:
        path = self.directory / f"part-{self.parts:05d}.parquet"
        named_transfers(frame, self.names).write_parquet(path, compression="zstd", statistics=False)
        self.parts += 1


class Simulation:
    """Everything one run needs. Workloads add SimPy processes (or just start collectives);
    `run()`, or `run(events)` to stop once those have happened, returns `Results`. `transfers="drop"` keeps
    no per-transfer rows, `transfers=Path(directory)` (new or empty) streams them there as Parquet parts
    (`TRANSFER_RECORDS`); everything else the run returns is the same. `compress=M` (0: off, else at least
    `MIN_COMPRESS`) simulates the first M steps of every long run of identical collective steps and skips
    the rest by their measured period (`netsim.collectives.repeats`); each such run is noted in
    `meta["compressed"]`."""

    def __init__(self, topology: Topology, *, network: str = "fluid", routing: str = "ecmp", seed: int = 0,
                 options: NetworkOptions | None = None, record_links: bool = True, record_steps: bool = False,
                 collectives: str = "ideal", sm: int = 90, transfers: str | os.PathLike = "keep",
                 compress: int = 0):
        sinks = {}
        if isinstance(transfers, os.PathLike):
            directory = Path(transfers)
            if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
                raise ConfigError(f"{directory} must be a new or empty directory", field="transfers")
            directory.mkdir(parents=True, exist_ok=True)
            sinks["transfers"] = TransferParts(directory, topology.node_names)
        elif transfers not in TRANSFER_RECORDS:
            raise ConfigError(f"unknown transfer records {transfers!r} (known: {', '.join(TRANSFER_RECORDS)}, "
                              f"or a directory as a pathlib.Path)", field="transfers")
        if collectives not in COLLECTIVE_MODELS:
            raise ConfigError(f"unknown collectives model {collectives!r} (known: {', '.join(COLLECTIVE_MODELS)})",
                              field="network.collectives")
        if isinstance(compress, bool) or not isinstance(compress, (int, np.integer)) or \
                not (compress == 0 or compress >= MIN_COMPRESS):
            raise ConfigError(f"compress must be 0 (off) or a whole number of steps >= {MIN_COMPRESS}, got "
                              f"{compress!r}", field="compress")
        self.compress = int(compress)  # steps simulated of each long run of identical collective steps
        self.topology = topology
        self.collectives = collectives  # how communicators run collectives: "ideal" or NCCL's model ("nccl")
        self.sm = sm  # the GPUs' compute capability x 10, for the NCCL model
        self.seed = seed
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(seed)
        self.recorder = Recorder(drop=("transfers",) if transfers == "drop" else (), sinks=sinks, rows=PART_ROWS)
        self.router = Router(topology, routing, seed)
        self.meter = LinkMeter(topology.num_links) if record_links else None
        cap, latency = topology.meta.get("connection_bandwidth"), topology.meta.get("connection_latency")
        if cap is not None and (options is None or options.flow_rate_cap is None):  # the fabric's, unless overridden
            options = replace(options or NetworkOptions(), flow_rate_cap=cap)
        if latency and (options is None or not options.overhead):
            options = replace(options or NetworkOptions(), overhead=latency)
        self.network = model_class(network)(self.env, topology, self.router, self.recorder, self.meter, options)
        if record_steps:
            self.network.record_steps(Router(topology, "spray", seed, cache=self.router.cache))
        self.meta = {"topology": topology.name, "network": network, "routing": routing, "seed": seed,
                     "collectives": collectives}
        if transfers == "drop":
            self.meta["dropped"] = ["transfers"]
        elif sinks:
            self.meta["streamed"] = {"transfers": str(transfers)}

    def note_compressed(self, note: dict) -> None:
        """A compressed run of collective steps (see `compress`): noted in `meta["compressed"]`."""
        self.meta.setdefault("compressed", []).append(note)

    @property
    def now(self) -> float:
        return self.env.now

    def process(self, generator: Generator) -> simpy.Process:
        return self.env.process(generator)

    def schedule_fault(self, at: float, links: list[int], kind: str = "fail", factor: float = 0.0) -> None:
        """At simulated time `at`, fail the links or degrade them to `factor` of their capacity."""
        if kind not in ("fail", "degrade"):
            raise ValueError(f"fault kind {kind!r}")

        def fault():
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            if kind == "fail":
                self.network.fail_links(links)
            else:
                self.network.degrade_links(links, factor)
            self.recorder.table("faults", {"time_s": pl.Float64, "kind": pl.Utf8, "links": pl.Utf8}).append(
                time_s=self.env.now, kind=kind, links=",".join(self.topology.link_names[l] for l in links))

        self.env.process(fault())

    def run(self, events: simpy.Event | Sequence[simpy.Event] | None = None, *, until: float | None = None
            ) -> Results:
        """Run the simulation and return its `Results`.

        With `events` (one event, or a list of them, such as ``comm.all_reduce(2**30)``), run until
        all of them have happened; a failed one raises its exception here, and one that can never
        happen (nothing left to simulate) is a `RuntimeError`. With `until`, run to that simulated
        time. With neither, run until nothing is left to simulate.
        """
        if events is not None and until is not None:
            raise ValueError("give run() events or until=, not both")
        if isinstance(events, (list, tuple)):
            events = self.env.all_of(list(events))
        elif events is not None and not isinstance(events, simpy.Event):
            raise TypeError(f"run() takes an event or a list of events, got {type(events).__name__}")
        self.env.run(until=events if events is not None else until)
        self.network.close_meter()
        frames = self.recorder.frames()
        names = pl.Series(self.topology.node_names, dtype=pl.Utf8)
        if "transfers" in frames:
            frames["transfers"] = named_transfers(frames["transfers"], names)
        if self.meter is not None:
            frames["links"] = self._links_frame()
            frames["link_timeline"] = self._timeline_frame()
        meta = dict(self.meta, end_time=float(self.env.now))
        return Results(frames, meta)

    def _links_frame(self) -> pl.DataFrame:
        topo, meter = self.topology, self.meter
        end = max(float(self.env.now), 1e-300)
        return pl.DataFrame({
            "link": np.arange(topo.num_links),
            "name": list(topo.link_names),
            "tier": list(topo.link_tier),
            "capacity_Bps": topo.capacity,
            "latency_s": topo.latency,
            "carried_B": meter.total,
            "mean_utilization": meter.total / (topo.capacity * end),
            "peak_utilization": meter.peak / topo.capacity,
        })

    def _timeline_frame(self) -> pl.DataFrame:
        topo, meter = self.topology, self.meter
        busiest = hottest_links(topo.link_tier, meter.total / topo.capacity, TIMELINE_LINKS)
        starts, bins, width = meter.timeline(busiest)
        nb = len(starts)
        util = (bins / (topo.capacity[busiest] * width)).T.reshape(-1) if nb else np.zeros(0)
        return pl.DataFrame({
            "link": np.repeat(busiest, nb),
            "name": [topo.link_names[l] for l in busiest for _ in range(nb)],
            "time_s": np.tile(starts, len(busiest)),
            "width_s": np.full(nb * len(busiest), width),
            "utilization": util,
        })

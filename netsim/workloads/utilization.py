"""Compute utilisation of a low-communication training method on a simulated network.

Every method runs as a per-layer training DAG (`netsim.workloads.dag`). One worker per datacenter; only the inter-datacenter network is modelled (a full mesh of links of
the given bandwidth and latency). Methods: those of `netsim.workloads.methods` — `ddp`, `diloco`,
`streaming_diloco`, `co2` (tau = H local steps, then an all-reduce of the parameters needed only H steps
later), `noloco` (every H steps a random pairwise exchange of the outer gradient and the slow weights, no
barrier) and `gossip` (D-SGD over `graph` every H steps, optionally one global merge at the end).

On the default full mesh, the methods whose syncs are ring all-reduces of all workers run them on
`RingMesh`, the exact shortcut of the fluid model for that case (see `netsim.network.ring_mesh`);
`full_network=True` simulates every transfer instead (the tests compare the two).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.network import NetworkOptions
from netsim.sim import Simulation
from netsim.topology import full_mesh, ring
from netsim.workloads.compute import ComputeModel, check_jitter
from netsim.workloads.dag import TrainingDag, TrainingRun, check_bits, run_dag
from netsim.workloads.ddp import check_bucket_bytes, ddp
from netsim.workloads.diloco import StreamingConfig, streaming_diloco
from netsim.workloads.gossip import GRAPHS, gossip, neighbours
from netsim.workloads.limits import MAX_SECONDS, factors, integer, number
from netsim.workloads.methods import check_method
from netsim.network.ring_mesh import RingMesh
from netsim.workloads.sharded import ShardedGroup

RING_METHODS = ("ddp", "diloco", "streaming_diloco", "co2")  # their syncs are ring all-reduces of all workers


@dataclass(frozen=True, eq=False)
class UtilizationConfig:
    """One utilisation run: the method, the model, the workers and their network.

    By default the workers sit on a full mesh of `bandwidth` (bytes/s) / `latency` (s) links; give
    `topology` (e.g. an internet topology) and `worker_gpus` (one GPU name per worker; default: the first
    GPU of each datacenter) to run them on a real fabric instead (then `bandwidth` and `latency` are
    ignored). With `gpus_per_worker` = k > 1 (on a topology), each worker is the first k GPUs of its
    datacenter and every sync is sharded: GPU j of each worker syncs 1/k of the bytes with GPU j of the
    others. `outer_steps` outer periods are simulated (for ddp an outer period is one step). `per_layer`:
    gossip and NoLoCo send per layer instead of the whole model at once. `bucket_bytes`: the all-reduce
    methods fuse consecutive layers (of one fragment) into buckets of about this size (default: one
    reduction per layer; float("inf"): one per fragment, or per step for ddp). Every field is checked (finite,
    in range) and a bad one is a ConfigError naming it.
    """

    method: str
    model: ComputeModel
    workers: int = 2
    bandwidth: float = 10e9 / 8
    latency: float = 0.0
    inner_steps: int = 100
    fragments: int = 1
    overlap: int = 0
    bits: int = 16
    outer_steps: int = 3
    speeds: tuple[float, ...] | None = None
    jitter: float = 0.0
    seed: int = 0
    bucket_bytes: float | None = None
    graph: str = "ring"
    final_merge: bool = False
    per_layer: bool = False
    tcp_window: float | None = None
    streams: int = 1
    topology: object = None
    worker_gpus: tuple[str, ...] | None = None
    gpus_per_worker: int = 1
    full_network: bool = False

    def __post_init__(self) -> None:
        check_method(self.method)
        if not isinstance(self.model, ComputeModel):
            raise ConfigError(f"expected a ComputeModel, got {self.model!r}", field="model")
        integer(self.workers, "workers", lo=2)
        if self.topology is None:
            number(self.bandwidth, "bandwidth", lo=0, lo_open=True)
            number(self.latency, "latency", lo=0, hi=MAX_SECONDS)
        for name in ("inner_steps", "fragments", "outer_steps", "streams", "gpus_per_worker"):
            integer(getattr(self, name), name, lo=1)
        integer(self.overlap, "overlap", lo=0)
        integer(self.seed, "seed", lo=0)
        check_bits(self.bits)
        check_jitter(self.jitter)
        if self.speeds is not None:
            object.__setattr__(self, "speeds", tuple(float(x) for x in factors(self.speeds, self.workers)))
        if self.tcp_window is not None:
            number(self.tcp_window, "tcp_window", lo=0, lo_open=True)
        if self.bucket_bytes is not None:
            check_bucket_bytes(self.bucket_bytes)
        if self.graph not in GRAPHS:
            raise ConfigError(f"unknown graph {self.graph!r} (known: {', '.join(GRAPHS)})", field="graph")


@dataclass(frozen=True)
class Utilization:
    method: str
    utilization: float  # mean over workers of compute time / wall time (syncs drained)
    wall_s: float
    exposed_comm_s: float  # mean over workers of wall - compute
    sent_per_worker_B: float
    sent_total_B: int
    peak_demand_Bps: float  # per-worker send rate at which the largest sync (one step's release) fits in a step
    outer_step_s: float
    straggler_wait_s: float  # mean per worker: how much later the slowest partner released each sync, summed
    events_per_step: float  # program nodes of one worker per simulated step (the run's cost)
    run: TrainingRun = field(repr=False, compare=False)  # the whole record: per worker, per sync

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "run"}


def schedule(config: UtilizationConfig, rng: np.random.Generator) -> TrainingDag:
    """The `TrainingDag` of `config`'s method (partners of gossip and NoLoCo drawn from `rng`)."""
    model, method = config.model, config.method
    if method == "ddp":
        return ddp(model, config.outer_steps, bits=config.bits, bucket_bytes=config.bucket_bytes)
    steps = config.inner_steps * config.outer_steps
    if method in ("noloco", "gossip"):
        values = int(round(model.params * config.bits / 8))
        payload = 2 * values if method == "noloco" else values  # NoLoCo: outer gradient and slow weights
        graph = "random" if method == "noloco" else config.graph
        plan = neighbours(graph, config.workers, config.outer_steps, rng)
        return gossip(model, every=config.inner_steps, steps=steps, payload=payload, plan=plan,
                      final_merge=config.final_merge, per_layer=config.per_layer, method=method)
    fragments, overlap = config.fragments, config.overlap
    if method == "diloco":
        fragments, overlap = 1, 0
    elif method == "co2":
        fragments, overlap = 1, config.inner_steps - 1  # the all-reduce hides behind the next tau = H steps
    streaming = StreamingConfig(config.inner_steps, fragments, overlap, config.bits, config.outer_steps)
    return streaming_diloco(model, streaming, bucket_bytes=config.bucket_bytes, method=method)


def utilization(config: UtilizationConfig) -> Utilization:
    """Run `config.method` on its DAG for `config.outer_steps` outer periods and measure it.

    >>> from netsim.workloads.compute import ComputeModel
    >>> model = ComputeModel(layers=24, step_time=0.1, params=1e9)
    >>> r = utilization(UtilizationConfig("diloco", model, workers=2, bandwidth=1.25e9, inner_steps=100))
    >>> round(r.utilization, 3), r.sent_per_worker_B / 1e9
    (0.867, 6.0)
    """
    method, model, workers = config.method, config.model, config.workers
    shortcut = (config.topology is None and method in RING_METHODS and config.gpus_per_worker == 1
                and not config.full_network)
    if config.topology is not None:
        topo = config.topology
    elif shortcut:  # the mesh's links the ring uses (RingMesh needs no others, and n of them build in O(n))
        topo = ring(workers, config.bandwidth, config.latency, name="datacenters")
    else:
        topo = full_mesh(workers, config.bandwidth, config.latency, name="datacenters")
    options = NetworkOptions(tcp_window=config.tcp_window, streams=config.streams)
    sim = Simulation(topo, seed=config.seed, record_links=False, options=options)
    if config.gpus_per_worker > 1:
        if config.topology is None or config.worker_gpus is not None:
            raise ConfigError("needs a topology (and no worker_gpus): the first GPUs of each datacenter",
                              field="gpus_per_worker")
        groups = _worker_groups(topo, workers, config.gpus_per_worker)
        comm = ShardedGroup([Communicator(sim, groups[:, j], name=f"shard{j}")
                             for j in range(config.gpus_per_worker)])
    elif shortcut:
        comm = RingMesh(sim, workers, config.bandwidth, config.latency, sim.network.options)
    else:
        nodes = topo.gpus if config.topology is None else _worker_nodes(topo, workers, config.worker_gpus)
        comm = Communicator(sim, nodes, name="workers")
    dag = schedule(config, sim.rng)
    result = run_dag(comm, model, dag, speeds=None if config.speeds is None else np.asarray(config.speeds),
                     jitter=config.jitter)
    results = sim.run()
    run = result()
    if isinstance(comm, RingMesh):
        total = comm.bytes_sent
    else:
        total = int(results.transfers["size_B"].sum()) if len(results.transfers) else 0
    if dag.exchange == "all_reduce":
        per_sync = 2 * (workers - 1) / workers * dag.step_bytes()  # ring all-reduce, per worker
    else:
        per_sync = dag.step_bytes() * max(len(p) for peers in dag.partners.values() for p in peers)
    compute = np.asarray(run.compute_s)
    wall = run.wall_s
    return Utilization(method, run.utilization, wall, float(np.mean(wall - compute)), total / workers, total,
                       per_sync / model.step_time, wall / config.outer_steps, float(np.mean(run.wait_s)),
                       run.events / dag.steps, run)


def _worker_groups(topo, workers: int, k: int) -> np.ndarray:
    """workers x k GPU ids: the first k GPUs of each of the first `workers` datacenters."""
    dcs = topo.gpu_attr("dc")
    rows = []
    for d in sorted(set(dcs.tolist()))[:workers]:
        gpus = topo.gpus[dcs == d]
        if len(gpus) < k:
            raise ConfigError(f"datacenter {d} has {len(gpus)} GPUs, fewer than {k}", field="gpus_per_worker")
        rows.append(gpus[:k])
    if len(rows) < workers:
        raise ConfigError(f"{workers} workers but the topology has {len(rows)} datacenters", field="workers")
    return np.array(rows, dtype=np.int64)


def _worker_nodes(topo, workers: int, names: list[str] | None) -> np.ndarray:
    if names is not None:
        if len(names) != workers:
            raise ConfigError(f"{len(names)} GPUs named for {workers} workers", field="worker_gpus")
        return np.array([topo.node(n) for n in names], dtype=np.int64)
    dcs = topo.gpu_attr("dc")
    firsts = [int(topo.gpus[np.flatnonzero(dcs == d)[0]]) for d in sorted(set(dcs.tolist()))]
    if len(firsts) < workers:
        raise ConfigError(f"{workers} workers but the topology has {len(firsts)} datacenters", field="workers")
    return np.array(firsts[:workers], dtype=np.int64)

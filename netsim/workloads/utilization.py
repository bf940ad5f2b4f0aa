"""Compute utilisation of a low-communication training method on a simulated network.

One worker per datacenter; only the inter-datacenter network is modelled (a full mesh of links of
the given bandwidth and latency). Methods: those of `netsim.workloads.methods` — `ddp`, `diloco`,
`streaming_diloco`, `co2` (tau = H local steps, then an all-reduce of the parameters needed only H steps
later), `noloco` (every H steps a random pairwise exchange of the outer gradient and the slow weights, no
barrier) and `gossip` (D-SGD over `graph` every H steps, optionally one global merge at the end).

On the default full mesh, the methods whose syncs are ring all-reduces of all workers run them on
`RingMesh`, the exact shortcut of the fluid model for that case (see `netsim.workloads.ring_mesh`);
`full_network=True` simulates every transfer instead (the tests compare the two).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.network import NetworkOptions
from netsim.sim import Simulation
from netsim.topology import full_mesh, ring
from netsim.workloads.compute import ComputeModel, check_jitter
from netsim.workloads.ddp import run_ddp
from netsim.workloads.diloco import StreamingConfig, run_streaming
from netsim.workloads.gossip import run_gossip
from netsim.workloads.limits import MAX_SECONDS, factors, integer, number
from netsim.workloads.methods import check_method
from netsim.workloads.ring_mesh import RingMesh
from netsim.workloads.syncs import ShardedGroup, barrier_wait

RING_METHODS = ("ddp", "diloco", "streaming_diloco", "co2")  # their syncs are ring all-reduces of all workers


@dataclass(frozen=True)
class Utilization:
    method: str
    utilization: float  # mean over workers of compute time / wall time (syncs drained)
    wall_s: float
    exposed_comm_s: float  # mean over workers of wall - compute
    bytes_per_worker: float
    bytes_total: int
    peak_demand_Bps: float  # per-worker send rate at which the largest sync fits in one inner step
    outer_step_s: float
    straggler_wait_s: float  # mean per worker: time at syncs spent waiting for slower workers to arrive

    def as_dict(self) -> dict:
        return asdict(self)


def utilization(method: str, model: ComputeModel, *, workers: int, bandwidth: float, latency: float = 0.0,
                inner_steps: int = 100, fragments: int = 1, overlap: int = 0, bits: int = 16,
                outer_steps: int = 3, speeds: np.ndarray | None = None, jitter: float = 0.0,
                seed: int = 0, bucket_bytes: float | None = None, graph: str = "ring",
                final_merge: bool = False, tcp_window: float | None = None, streams: int = 1,
                topology=None, worker_gpus: list[str] | None = None, gpus_per_worker: int = 1,
                full_network: bool = False) -> Utilization:
    """Run `method` for `outer_steps` outer periods (for ddp an outer period is one step). By default the
    workers sit on a full mesh of `bandwidth` / `latency` links; give `topology` (e.g. an internet
    topology) and `worker_gpus` (one GPU name per worker; default: the first GPU of each datacenter)
    to run them on a real fabric instead (then `bandwidth` and `latency` are ignored). With
    `gpus_per_worker` = k > 1 (on a topology), each worker is the first k GPUs of its datacenter and
    every sync is sharded: GPU j of each worker syncs 1/k of the bytes with GPU j of the others.
    Every input is checked (finite, in range) and a bad one is a ConfigError naming it."""
    check_method(method)
    integer(workers, "workers", lo=2)
    if topology is None:
        number(bandwidth, "bandwidth", lo=0, lo_open=True)
        number(latency, "latency", lo=0, hi=MAX_SECONDS)
    for name, value in (("inner_steps", inner_steps), ("fragments", fragments), ("outer_steps", outer_steps),
                        ("streams", streams), ("gpus_per_worker", gpus_per_worker)):
        integer(value, name, lo=1)
    integer(overlap, "overlap", lo=0)
    integer(seed, "seed", lo=0)
    check_jitter(jitter)
    if speeds is not None:
        speeds = factors(speeds, workers)
    if tcp_window is not None:
        number(tcp_window, "tcp_window", lo=0, lo_open=True)
    if method == "diloco":
        fragments, overlap = 1, 0
    elif method == "co2":
        fragments, overlap = 1, inner_steps - 1  # the all-reduce hides behind the next tau = H steps
    config = StreamingConfig(inner_steps, fragments, overlap, bits, outer_steps)
    shortcut = topology is None and method in RING_METHODS and gpus_per_worker == 1 and not full_network
    if topology is not None:
        topo = topology
    elif shortcut:  # the mesh's links the ring uses (RingMesh needs no others, and n of them build in O(n))
        topo = ring(workers, bandwidth, latency, name="datacenters")
    else:
        topo = full_mesh(workers, bandwidth, latency, name="datacenters")
    options = NetworkOptions(tcp_window=tcp_window, streams=streams)
    sim = Simulation(topo, seed=seed, record_links=False, options=options)
    if gpus_per_worker > 1:
        if topology is None or worker_gpus is not None:
            raise ConfigError("needs a topology (and no worker_gpus): the first GPUs of each datacenter",
                              field="gpus_per_worker")
        groups = _worker_groups(topo, workers, gpus_per_worker)
        comm = ShardedGroup([Communicator(sim, groups[:, j], name=f"shard{j}") for j in range(gpus_per_worker)])
    elif shortcut:
        comm = RingMesh(sim, workers, bandwidth, latency, sim.network.options)
    else:
        nodes = topo.gpus if topology is None else _worker_nodes(topo, workers, worker_gpus)
        comm = Communicator(sim, nodes, name="workers")
    if method == "ddp":
        state = run_ddp(comm, model, outer_steps, bits=bits, bucket_bytes=bucket_bytes, speeds=speeds, jitter=jitter)
        per_sync = 2 * (workers - 1) / workers * max(state["bucket_bytes"])  # ring all-reduce, per worker
    elif method in ("noloco", "gossip"):
        values = int(round(model.params * bits / 8))
        payload = 2 * values if method == "noloco" else values  # NoLoCo: outer gradient and slow weights
        state = run_gossip(comm, model, every=inner_steps, steps=inner_steps * outer_steps, payload=payload,
                           graph="random" if method == "noloco" else graph, final_merge=final_merge,
                           speeds=speeds, jitter=jitter)
        per_sync = payload * max(len(p) for rnd in state["plan"] for p in rnd)  # to every neighbour
    else:
        state = run_streaming(comm, model, config, speeds, jitter)
        per_sync = 2 * (workers - 1) / workers * max(state["fragment_bytes"])
    results = sim.run()
    wall = float(sim.now)
    compute = state["compute"]
    if isinstance(comm, RingMesh):
        total = comm.bytes_sent
    else:
        total = int(results.transfers["bytes"].sum()) if len(results.transfers) else 0
    demand = per_sync / model.step_time
    waits = state["waits"] if "waits" in state else barrier_wait(state["points"].values(), workers)
    return Utilization(method, float(np.mean(compute / wall)), wall, float(np.mean(wall - compute)),
                       total / workers, total, demand, wall / outer_steps, float(np.mean(waits)))


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

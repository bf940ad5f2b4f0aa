"""NCCL's collective cost model: its protocols, channels and tuner, and the NCCL-faithful way to run a call.

NCCL times every (algorithm, protocol) pair of a collective as ``latency + bytes / bandwidth`` and runs the
fastest (``src/graph/tuning.cc``, ``ncclTopoTuneModel`` and ``ncclTopoGetAlgoTime``). The constants below are
NCCL 2.30.7's (the same since 2.23): per-algorithm base latencies and per-hop hardware latencies for NVLink,
PCI and network hops (microseconds), the per-channel bandwidth caps of Hopper and earlier GPUs, and the
tree correction factors. This module is our own code; nothing in it is fitted to a measurement.

The protocols, as NCCL moves them::

    Simple   4 MiB buffer per connection, 8 steps; data only on the wire (flags once per slice)
    LL       16-byte lines: 8 bytes of data + 2 flags     -> half the bandwidth, the lowest latency
    LL128    128-byte lines: 120 bytes of data + a flag   -> 120/128 of the bandwidth, NVLink only

A *channel* is one ring (or tree) through the GPUs with its own connection to each peer; the topology
search (``src/graph/search.cc``) packs channels of one per-channel speed onto the links, and every
connection of a channel is held to that speed. `NcclSystem` is what the tuner needs of a job — ranks,
nodes, the intra-node link (NVLink or PCI), the GPU generation, and per algorithm the channels and their
intra- and inter-node speeds; `nccl_system` derives it from a netsim topology by the search's rule
(fastest speed from NCCL's list, as many channels as the GPU's link holds, then doubled at half speed).

`tune` returns NCCL's table for one call, `choose` its pick. `NcclCall` is how netsim then runs a ring or
tree pick on the simulated fabric (`Communicator.plan`, under ``Simulation(collectives="nccl")`` or a
scenario's ``network: {collectives: nccl}``): the chosen netsim algorithm, each transfer's bytes as they travel on the
wire (LL doubles them, LL128 adds 1/15), each step's hardware latency as a per-transfer overhead, each
connection capped at its channels' speed, and the base latency once per call. NVLS (NVSwitch in-switch
reduction) runs as netsim's `nvls` all-reduce (`netsim.collectives.nvls`: up to the switch and down,
pipelined), PAT (all-gather and reduce-scatter with one GPU per node) as recursive doubling
(`halving_doubling`, a power-of-two number of ranks), CollNet Direct all-reduce (where the topology says
``switch_reduction: true``: SHARP) as netsim's `collnet` (`netsim.collectives.collnet`); NVLS and CollNet
all-gather / reduce-scatter are in the table (so `choose` says when NCCL would pick them) but have no netsim
schedule yet: `runnable` leaves them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netsim.errors import ConfigError
from netsim.topology import Topology

PROTOCOLS = ("LL", "LL128", "Simple")
OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce")  # what NCCL's tuner times
ALGORITHMS = ("tree", "ring", "nvls", "pat", "collnet")  # collnet: NCCL's CollNet Direct (SHARP)
# NCCL algorithm -> the netsim algorithm moving its data (PAT's log2 n steps of doubling blocks: recursive doubling)
RUNNABLE = {"ring": "ring", "tree": "nccl_tree", "nvls": "nvls", "pat": "halving_doubling", "collnet": "collnet"}

# baseLatencies[algo][proto], microseconds
BASE_LATENCY = {"tree": (6.8, 14.0, 8.4), "ring": (6.6, 14.0, 8.4), "nvls": (0.0, 0.0, 0.0), "pat": (8.0, 8.0, 8.0),
                "collnet": (0.0, 0.0, 0.0)}
# hwLatencies[hw][algo][proto], microseconds per hop
HW_LATENCY = {
    "nvlink": {"tree": (0.6, 1.25, 4.0), "ring": (0.6, 1.9, 3.4), "nvls": (0.0, 0.0, 25.0), "pat": (0.0, 0.0, 4.0),
               "collnet": (0.0, 0.0, 3.7)},
    "pci": {"tree": (1.0, 1.9, 4.0), "ring": (1.0, 2.5, 5.7), "nvls": (0.0, 0.0, 0.0), "pat": (0.0, 0.0, 4.0),
            "collnet": (0.0, 0.0, 3.7)},
    "net": {"tree": (5.0, 8.5, 14.0), "ring": (2.7, 4.0, 14.0), "nvls": (0.0, 0.0, 18.0), "pat": (0.0, 0.0, 14.0),
            "collnet": (0.0, 0.0, 31.0)},
}
# per GPU generation (Volta, Ampere, Hopper, Blackwell) and node count (1, 2, 4 or more), GB/s
LL_MAX_BW = ((39.0, 39.0, 20.4), (87.7, 22.5, 19.0), (141.0, 45.0, 35.0), (282.0, 90.0, 70.0))
PER_CHANNEL_RING_LL128 = ((20.0,) * 3, (20.0,) * 3, (36.7,) * 3, (40.0,) * 3)
PER_CHANNEL_TREE_LL128 = ((20.0,) * 3, (20.0,) * 3, (36.7, 36.7, 29.0), (55.6, 31.67, 20.0))
PER_CHANNEL_TREE = ((26.5, 18.5, 10.0), (24.0, 23.6, 17.8), (38.7, 41.4, 36.0), (70.0, 42.8, 24.0))
NVLS_EFFICIENCY = (0.0, 0.0, 0.85, 0.74)
# bandwidth correction of tree all-reduce by message size: 64 B x 2^i, i = 0..23
TREE_CORRECTION = {
    "LL": (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0),
    "LL128": (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0,
              1.0),
    "Simple": (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9),
}
# the topology search's per-channel speeds (GB/s), fastest first: Hopper and later, and earlier GPUs
SPEEDS_INTRA = {90: (60, 50, 40, 30, 24, 20, 15, 12, 11, 6, 3), 0: (40, 30, 20, 18, 15, 12, 10, 9, 7, 6, 5, 4, 3)}
SPEEDS_INTER = {90: (48, 45, 42, 40, 30, 24, 22, 20, 17.5, 15, 12, 6, 3, 2.4, 1.2, 0.24, 0.12),
                0: (48, 30, 28, 24, 20, 18, 15, 12, 10, 9, 7, 6, 5, 4, 3, 2.4, 1.2, 0.24, 0.12)}
MAX_CHANNELS = 32  # a ring graph's channel limit (MAXCHANNELS / 2)
NVLINK_GBPS = {70: 20.0, 80: 20.0, 86: 12.0, 90: 20.6}  # what NCCL counts per NVLink link (SMxx_NVLINK_BW)
ARCHS = tuple(NVLINK_GBPS)  # the GPU generations modelled (compute capability x 10); Blackwell's tables are not here
NET_OVERHEAD_US = 1.0  # per network step on x86 Intel hosts (getNetOverhead)
WIRE = {"LL": 2.0, "LL128": 128 / 120, "Simple": 1.0}  # bytes on the wire per byte of data
# data per pipeline step of a broadcast / reduce ring (the chain NCCL pipelines): LL 32 KiB, LL128 576,000 B,
# Simple 512 KiB (a 4 MiB buffer in 8 steps)
CHUNK_BYTES = {"LL": 32768, "LL128": 576000, "Simple": 524288}
NVLS_CHUNK = 128 * 1024  # NCCL_NVLS_CHUNKSIZE
MAX_PIPELINE = 64  # chunks netsim pipelines a chain in (more add transfers, not accuracy)


@dataclass(frozen=True)
class Graph:
    """One algorithm's channels: how many, and each one's speed inside a node and across nodes (GB/s)."""

    channels: int
    intra: float
    inter: float


@dataclass(frozen=True)
class NcclSystem:
    """What NCCL's tuner knows of a communicator (see the module docstring)."""

    ranks: int
    nodes: int
    arch: int  # compute capability x 10: 70 Volta, 80 Ampere, 90 Hopper, 100 Blackwell
    intra: str  # "nvlink" or "pci": the link between the GPUs of a node
    ring: Graph
    tree: Graph
    nvls: Graph | None = None  # an NVSwitch that reduces in the switch (Hopper and later), one node
    ll128: bool = True  # NCCL enables LL128 only on NVLink paths
    rails: int = 1  # NICs per node its channels spread over (rail-optimized: one per GPU)
    cpu: str = "intel"  # several nodes: NCCL's LL cap depends on the hosts' CPU ("intel" or "amd")
    collnet: bool = False  # CollNet Direct: switches that reduce (SHARP), NVSwitch servers, several nodes

    @property
    def ll_max(self) -> float:
        """NCCL's LL bandwidth cap: by GPU generation on one node, by CPU vendor across nodes (GB/s)."""
        return LL_MAX_BW[self.generation if self.nodes == 1 else (1 if self.cpu == "amd" else 0)][self.node_index]

    @property
    def generation(self) -> int:
        return 3 if self.arch >= 100 else 2 if self.arch >= 90 else 1 if self.arch >= 80 else 0

    @property
    def node_index(self) -> int:  # the caps' column: 1 node, 2 nodes, more
        return min(self.nodes, 3) - 1


@dataclass(frozen=True)
class Choice:
    """One row of NCCL's table for a call: latency (s), algorithm bandwidth (bytes/s), time (s)."""

    algo: str
    proto: str
    latency_s: float
    algbw_Bps: float
    time_s: float

    @property
    def name(self) -> str:
        return f"{self.algo}/{self.proto}"


def _steps(op: str, n: int) -> int:
    return 2 * (n - 1) if op == "all_reduce" else n - 1 if op in ("all_gather", "reduce_scatter") else n


def _bus_bandwidth(s: NcclSystem, op: str, algo: str, proto: str) -> float:
    """NCCL's bus bandwidth of (algo, proto) for `op`, GB/s (0: not available)."""
    g, n = s.generation, s.node_index
    if algo == "tree" and op != "all_reduce":
        return 0.0
    if algo in ("nvls", "pat", "collnet") and proto != "Simple":
        return 0.0
    if algo == "collnet":  # all-reduce only here (its all-gather / reduce-scatter need the plugin's own collectives)
        if not s.collnet or op != "all_reduce":
            return 0.0
        ppn = s.ranks / s.nodes
        factor = ppn / s.ring.channels
        factor -= (factor - 1) / 2
        return s.ring.channels * s.ring.intra / factor * (0.85 if s.arch >= 90 else 1.0)
    if algo == "pat" and (op not in ("all_gather", "reduce_scatter") or s.nodes != s.ranks):
        return 0.0  # PAT: all-gather / reduce-scatter with one GPU per node
    if op in ("broadcast", "reduce") and algo != "ring":
        return 0.0
    if proto == "LL128" and not s.ll128:
        return 0.0
    if algo == "nvls":
        if s.nvls is None or s.nvls.channels < 2 or op not in ("all_reduce", "all_gather", "reduce_scatter") or \
                s.nodes > 1:
            return 0.0
        ppn = s.ranks / s.nodes
        intra = s.nvls.intra * NVLS_EFFICIENCY[g] * (s.nvls.channels - 1) / s.nvls.channels
        intra *= 2.0 if op == "all_reduce" else (ppn - 1) / ppn
        return s.nvls.channels * min(intra, s.nvls.inter)
    graph = s.tree if algo == "tree" else s.ring
    bw = graph.intra if s.nodes <= 2 else graph.inter
    bus = graph.channels * bw
    if algo == "ring" and proto == "LL":
        bus = min(s.ll_max, bus * 0.5)
    elif algo == "ring" and proto == "LL128":
        bus = min(bus * 0.92, graph.channels * PER_CHANNEL_RING_LL128[g][n])
    if algo == "tree":
        bus = min(bus * 0.92, graph.channels * PER_CHANNEL_TREE[g][n])
        if proto == "LL":
            bus = min(bus / 3.8, s.ll_max)
        elif proto == "LL128":
            bus = min(bus * (7.0 / 9.0 if s.nodes == 1 else 120.0 / 128.0), graph.channels * PER_CHANNEL_TREE_LL128[g][n])
    if algo == "pat":
        bus *= 0.75
    return bus


def _algorithm_bandwidth(s: NcclSystem, op: str, algo: str, proto: str) -> float:
    """Bus bandwidth to the bandwidth NCCL divides the buffer by: x n / steps for ring and NVLS, x 0.5 for tree;
    all-gather and reduce-scatter by any algorithm but the ring are left as they are."""
    bus = _bus_bandwidth(s, op, algo, proto)
    if op in ("all_gather", "reduce_scatter") and algo != "ring":
        return bus
    return bus * (s.ranks / _steps(op, s.ranks) if algo in ("ring", "nvls") else 0.5)


def _latency_us(s: NcclSystem, op: str, algo: str, proto: str) -> float:
    p = PROTOCOLS.index(proto)
    lat = BASE_LATENCY[algo][p]
    intra = HW_LATENCY[s.intra][algo][p]
    ppn = s.ranks // s.nodes
    inter = HW_LATENCY["net"]["tree" if ppn == 1 else algo][p]
    steps = _steps(op, s.ranks)
    if algo == "ring":
        if op in ("broadcast", "reduce"):
            return lat + HW_LATENCY["net" if s.nodes > 1 else s.intra][algo][p]
        if s.nodes > 1:
            intra = max(intra, NET_OVERHEAD_US * (3 if proto == "Simple" else 1))
        inter_steps = 0 if s.nodes == 1 else 2 * (s.nodes - 1) if op == "all_reduce" else s.nodes - 1
        return lat + (steps - inter_steps) * intra + inter_steps * inter
    if algo == "tree":
        return lat + 2 * ((ppn - 1) * intra + int(math.log2(s.nodes)) * inter)
    if algo == "nvls":
        return intra + (inter if s.nodes > 1 else 0.0)
    if algo == "collnet":  # CollNet Direct: 0.4 us per local rank of serialization at the arity
        return lat + 2 * (min(1, ppn - 1) * intra + (ppn - 1) * 0.4) + inter
    return lat + int(math.log2(s.nodes)) * inter / 3.5 + s.ranks * 2.8  # PAT


def tune(s: NcclSystem, op: str, nbytes: int) -> list[Choice]:
    """NCCL's table for one call of `op` moving `nbytes` (the buffer nccl-tests reports as size): every
    available (algorithm, protocol) with its latency, bandwidth and time, as ``ncclTopoGetAlgoTime`` computes
    them (tree correction by size; the ring's multi-node latency plateau)."""
    rows = []
    for algo in ALGORITHMS:
        for proto in PROTOCOLS:
            bw = _algorithm_bandwidth(s, op, algo, proto)
            if bw <= 0:
                continue
            lat = _latency_us(s, op, algo, proto)
            log_size = int(math.log2(nbytes >> 6)) if nbytes >> 6 else -1
            if algo == "tree" and op == "all_reduce" and 0 <= log_size < 23:
                bw *= TREE_CORRECTION[proto][log_size]
            if algo == "ring" and proto == "Simple" and s.nodes > 1 and op == "all_reduce" and \
                    nbytes / (min(2 * MAX_CHANNELS, 2 * s.ring.channels) * s.ranks) >= 64:  # runtime channels
                lat *= 1.4 if s.arch >= 80 else 1.9
            time_us = lat + nbytes / (1000.0 * bw)
            rows.append(Choice(algo, proto, lat * 1e-6, bw * 1e9, time_us * 1e-6))
    return rows


def _runnable(op: str, algo: str, ranks: int) -> bool:
    """Whether netsim has a schedule for NCCL's `algo` on `op` (NVLS: all-reduce only, so far; PAT: a power-of-two
    number of ranks, as recursive doubling needs)."""
    from netsim.collectives.algorithms import ALGORITHMS

    if algo == "pat" and ranks & (ranks - 1):
        return False
    return RUNNABLE.get(algo) in ALGORITHMS.get(op, {})


def choose(s: NcclSystem, op: str, nbytes: int, *, runnable: bool = False, only: str | None = None) -> Choice:
    """The (algorithm, protocol) NCCL's tuner picks: the least time in `tune`'s table (with `runnable`, among
    the algorithms netsim has schedules for: ring and tree; with `only`, among that algorithm's protocols, as
    ``NCCL_ALGO`` forces one)."""
    rows = [r for r in tune(s, op, nbytes) if (not runnable or _runnable(op, r.algo, s.ranks)) and (only is None or r.algo == only)]
    if not rows:
        raise ConfigError(f"NCCL has no algorithm for {op} on this communicator", field="collectives")
    return min(rows, key=lambda r: r.time_s)


@dataclass(frozen=True)
class NcclCall:
    """How netsim runs NCCL's pick on the fabric: `algo` (a netsim algorithm), each transfer's bytes times
    `wire` (protocol lines), every transfer at least NCCL's per-hop latency (`step_latency_s` inside a node,
    `net_latency_s` across the network; a slower path keeps its own), `connection_Bps` the most one
    connection puts on the wire (NCCL's bandwidth for the pick, its protocol and channel caps included),
    `base_latency_s` once per call, `chunks` the pipeline a broadcast, reduce or NVLS call runs in."""

    choice: Choice
    algo: str
    wire: float
    step_latency_s: float
    net_latency_s: float
    connection_Bps: float
    base_latency_s: float
    chunks: int = 1


def nccl_call(s: NcclSystem, op: str, nbytes: int, only: str | None = None) -> NcclCall:
    """NCCL's pick among ring and tree (or among `only`'s protocols) for this call, and how to run it."""
    choice = choose(s, op, nbytes, runnable=True, only=only)
    p = PROTOCOLS.index(choice.proto)
    hop = HW_LATENCY[s.intra][choice.algo][p]
    net = HW_LATENCY["net"]["tree" if s.ranks == s.nodes else choice.algo][p]
    if s.nodes > 1:  # an intra-node step across several nodes costs at least the network's overhead
        hop = max(hop, NET_OVERHEAD_US * (3 if choice.proto == "Simple" else 1))
    algo = RUNNABLE[choice.algo]
    if algo == "ring" and s.nodes > 1:
        from netsim.collectives.algorithms import algorithms

        if "rings" in algorithms(op):  # NCCL's channels leave each node through their own NIC: a ring per rail
            algo = "rings"
    # a ring's (or tree's) bus bandwidth is the payload rate of each of its connections: on the wire, that times
    # the protocol's lines; a ring per rail splits it over the rails
    rails = s.rails if algo == "rings" else 1
    cap = _bus_bandwidth(s, op, choice.algo, choice.proto) * 1e9 * WIRE[choice.proto] / rails
    chunks, base = 1, BASE_LATENCY[choice.algo][p] * 1e-6
    if algo == "nccl_tree":  # pipelined in NCCL's chunks (one step's data each)
        chunks = max(1, min(MAX_PIPELINE, -(-nbytes // CHUNK_BYTES[choice.proto])))
    if op in ("broadcast", "reduce"):  # a pipelined chain: NCCL charges one hop's latency for the whole chain
        chunks = max(1, min(MAX_PIPELINE, -(-nbytes // CHUNK_BYTES[choice.proto])))
        hop, net, base = 0.0, 0.0, choice.latency_s
    if algo == "nvls":  # up to the switch and down, pipelined in NCCL's 128 KiB chunks; each GPU's connection
        chunks = max(1, min(MAX_PIPELINE, -(-nbytes // NVLS_CHUNK)))  # carries the buffer at NCCL's NVLS rate
        hop, net, base, cap = 0.0, 0.0, choice.latency_s, choice.algbw_Bps
    if choice.algo == "pat":  # NCCL's latency (its n x 2.8 us of serial steps) once
        hop, net, base = 0.0, 0.0, choice.latency_s
    if algo == "collnet":  # NCCL's latency once; pipelined like NVLS, each connection at CollNet's speed
        chunks = max(1, min(MAX_PIPELINE, -(-nbytes // NVLS_CHUNK)))
        hop, net, base, cap = 0.0, 0.0, choice.latency_s, _bus_bandwidth(s, op, "collnet", "Simple") * 1e9
    return NcclCall(choice, algo, WIRE[choice.proto], hop * 1e-6, net * 1e-6, cap, base, chunks)


def search_channels(link_GBps: float, arch: int, speeds: dict = SPEEDS_INTRA) -> Graph:
    """The topology search's ring for GPUs that each have `link_GBps` to their peers: from the fastest speed
    in NCCL's list that fits, as many channels as the link holds (at most 32), keeping the best channels x
    speed while the speed stays above half the first; then channels doubled at half the speed (unless the
    speed is under 25 GB/s, or on Ampere and later under 50 GB/s with more than 4 channels)."""
    table = speeds[90 if arch >= 90 else 0]
    usable = [v for v in table if v <= link_GBps]
    if not usable:
        return Graph(1, link_GBps, link_GBps)
    best = (0, 0.0)
    for speed in usable:
        if speed / usable[0] <= 0.49:
            break
        channels = min(int(link_GBps // speed), MAX_CHANNELS)
        if channels * speed > best[0] * best[1]:
            best = (channels, speed)
    channels, speed = best
    if not (speed < 25 or (arch > 80 and speed < 50 and channels > 4)):
        channels, speed = min(2 * channels, MAX_CHANNELS), speed / 2
    return Graph(channels, speed, speed)


def nccl_system(topo: Topology, gpus, *, arch: int = 90) -> NcclSystem:
    """What NCCL would find for a communicator over `gpus` of `topo`: nodes (the GPUs' servers, where they
    have NICs; else one box), the intra-node link (NVLink where the GPUs reach an NVSwitch or an NVLink
    cable, else PCI: a generic `single_switch` counts as PCI), each GPU's link bandwidth and, for several
    nodes, its NIC, searched into channels (`search_channels`)."""
    if arch not in ARCHS:
        raise ConfigError(f"compute capability {arch / 10:g} is not modelled (known: "
                          f"{', '.join(f'{a / 10:g}' for a in ARCHS)}; Blackwell's NCCL tables are not in netsim yet)",
                          field="sm")
    gpus = np.asarray(gpus, dtype=np.int64)
    kinds = np.asarray(topo.node_kind)
    first = np.flatnonzero(topo.link_src == gpus[0])
    hosts = topo.attrs.get("host")
    with_nic = any(kinds[topo.link_dst[l]] == "nic" for l in first)
    # nodes: the GPUs' servers where they reach the network through NICs; GPUs cabled straight to a switch,
    # a ring or a mesh are one box
    nodes = len({int(hosts[g]) for g in gpus}) if with_nic and hosts is not None else 1
    if len(gpus) % nodes:
        raise ConfigError(f"{len(gpus)} ranks on {nodes} nodes: NCCL's model needs as many GPUs on every node",
                          field="collectives")
    to_nvswitch = [l for l in first if kinds[topo.link_dst[l]] == "nvswitch"]
    nvlink = bool(to_nvswitch) or any(topo.link_tier[l] == "nvlink" for l in first)
    link = float(topo.capacity[to_nvswitch or first].sum() if to_nvswitch else topo.capacity[first].max()) / 1e9
    if nvlink:  # NCCL counts 20.6 GB/s of each 25 GB/s NVLink 4 link (Hopper), 20 of NVLink 3's 25 (Ampere)
        link *= NVLINK_GBPS[arch] / 25.0
    ring = search_channels(link, arch)
    rails = 1
    if nodes > 1:  # per channel, the NIC share of each GPU (rails: one NIC per GPU)
        nics = {int(topo.link_dst[l]) for l in first if kinds[topo.link_dst[l]] == "nic"}
        nic = [l for v in nics for l in np.flatnonzero(topo.link_src == v)
               if kinds[topo.link_dst[l]] not in ("gpu", "nvswitch")]  # the NIC's port to the network
        per_node = len(gpus) // nodes
        rails = max(1, min(per_node, len({int(topo.link_dst[l]) for g in gpus[:per_node]
                                           for l in np.flatnonzero(topo.link_src == g)
                                           if kinds[topo.link_dst[l]] == "nic"})))
        nic_GBps = float(topo.capacity[nic].max()) / 1e9 if nic else link
        inter = max([v for v in SPEEDS_INTER[90 if arch >= 90 else 0] if v <= nic_GBps] or [nic_GBps])
        ring = Graph(ring.channels, ring.intra, min(ring.intra, inter))
    nvls = None
    n = len(gpus)
    if to_nvswitch and arch >= 90 and nodes == 1:
        # one channel per GPU; a channel's head carries twice its speed, so a GPU's link holds n + 1 speeds. The
        # search's second pass then raises the speed out of the switch (to 60 GB/s on an H100 box, NCCL's logs)
        per = [v for v in SPEEDS_INTRA[90] if (n + 1) * v <= link]
        nvls = Graph(min(n, MAX_CHANNELS), per[0], min(1.5 * per[0], link)) if per else None
    collnet = bool(topo.meta.get("switch_reduction")) and nodes > 1 and bool(to_nvswitch)
    return NcclSystem(len(gpus), nodes, arch, "nvlink" if nvlink else "pci", ring, ring, nvls, ll128=nvlink,
                      rails=rails, collnet=collnet)


__all__ = ["ALGORITHMS", "OPS", "PROTOCOLS", "Choice", "Graph", "NcclCall", "NcclSystem", "choose", "nccl_call",
           "nccl_system", "search_channels", "tune"]

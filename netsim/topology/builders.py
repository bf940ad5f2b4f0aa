"""Topology builders: single switch, ring, full mesh, leaf-spine, fat-tree, PCIe tree, internet.

Each `add_*` function adds one fabric into a `TopologyBuilder` under a name prefix
(so the internet builder can nest datacenter fabrics) and returns the names of its
top-tier switches; the public functions wrap them into a finished `Topology`.
Bandwidths are bytes/s and latencies seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsim.errors import TopologyError
from netsim.topology.graph import Topology, TopologyBuilder
from netsim.topology.hosts import HostSpec, add_hosts


def _positive(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or value < minimum:
        raise TopologyError(f"{name} must be an integer >= {minimum}, got {value!r}")


def add_single_switch(b: TopologyBuilder, prefix: str, n: int, bandwidth: float, latency: float, **attrs: int) -> list[str]:
    _positive("gpus", n)
    switch = f"{prefix}sw"
    b.add_node(switch, "switch", **attrs)
    for i in range(n):
        gpu = f"{prefix}gpu{i}"
        b.add_node(gpu, "gpu", host=i, **attrs)
        b.add_cable(gpu, switch, bandwidth, latency, "host")
    return [switch]


def single_switch(n: int, bandwidth: float = 50e9, latency: float = 0.0, name: str = "single_switch") -> Topology:
    """`n` GPUs on one non-blocking switch (an NVSwitch server, or a star)."""
    b = TopologyBuilder(name)
    add_single_switch(b, "", n, bandwidth, latency)
    b.meta.update(kind="single_switch")
    return b.build()


def ring(n: int, bandwidth: float = 50e9, latency: float = 0.0, name: str = "ring") -> Topology:
    """`n` GPUs cabled in a ring; GPUs forward traffic for each other."""
    _positive("gpus", n, 2)
    b = TopologyBuilder(name)
    for i in range(n):
        b.add_node(f"gpu{i}", "gpu", relay=True, host=i)
    for i in range(n if n > 2 else 1):
        b.add_cable(f"gpu{i}", f"gpu{(i + 1) % n}", bandwidth, latency, "ring")
    b.meta.update(kind="ring")
    return b.build()


def full_mesh(n: int, bandwidth: float = 50e9, latency: float = 0.0, name: str = "full_mesh") -> Topology:
    """`n` GPUs with a direct cable between every pair."""
    _positive("gpus", n, 2)
    b = TopologyBuilder(name)
    for i in range(n):
        b.add_node(f"gpu{i}", "gpu", relay=False, host=i)
    for i in range(n):
        for j in range(i + 1, n):
            b.add_cable(f"gpu{i}", f"gpu{j}", bandwidth, latency, "mesh")
    b.meta.update(kind="full_mesh")
    return b.build()


@dataclass(frozen=True)
class PcieSpec:
    """A PCIe server: `sockets` CPUs (root complexes) joined by a socket link; under each, PCIe switches,
    each with `gpus_per_switch` GPUs. GPUs under one switch talk through it (`gpu_bandwidth`); GPUs
    under different switches cross the switches' uplinks to the root complex (shared: they contend),
    and GPUs on different sockets also cross the socket link. Bytes/s and seconds."""

    sockets: int = 1
    switches_per_socket: int = 2
    gpus_per_switch: int = 2
    gpu_bandwidth: float = 25e9  # GPU <-> its switch: PCIe 4.0 x16, about 25 GB/s per direction in practice
    uplink_bandwidth: float = 25e9  # switch <-> root complex
    socket_bandwidth: float = 20e9  # root complex <-> root complex (peer-to-peer over the CPUs' link)
    gpu_latency: float = 1e-6
    uplink_latency: float = 1e-6
    socket_latency: float = 1e-6

    def __post_init__(self) -> None:
        _positive("sockets", self.sockets)
        _positive("switches_per_socket", self.switches_per_socket)
        _positive("gpus_per_switch", self.gpus_per_switch)

    @property
    def gpus(self) -> int:
        return self.sockets * self.switches_per_socket * self.gpus_per_switch


def pcie_tree(spec: PcieSpec, name: str = "pcie") -> Topology:
    """GPUs under PCIe switches under one or two root complexes (see `PcieSpec`).

    A 4-GPU box with two switches: gpu0 and gpu1 share a switch, gpu1 -> gpu2 crosses the root complex.

    >>> topo = pcie_tree(PcieSpec(gpus_per_switch=2, switches_per_socket=2))
    >>> len(topo.gpus), [topo.node_names[n] for n in topo.gpus]
    (4, ['gpu0', 'gpu1', 'gpu2', 'gpu3'])
    """
    b = TopologyBuilder(name)
    g = 0
    for s in range(spec.sockets):
        rc = f"rc{s}"
        b.add_node(rc, "switch")
        if s:
            b.add_cable("rc0", rc, spec.socket_bandwidth, spec.socket_latency, "socket")
        for w in range(spec.switches_per_socket):
            sw = f"plx{s}.{w}"
            b.add_node(sw, "switch")
            b.add_cable(sw, rc, spec.uplink_bandwidth, spec.uplink_latency, "uplink")
            for _ in range(spec.gpus_per_switch):
                gpu = f"gpu{g}"
                b.add_node(gpu, "gpu", host=0)
                b.add_cable(gpu, sw, spec.gpu_bandwidth, spec.gpu_latency, "pcie")
                g += 1
    b.meta.update(kind="pcie")
    return b.build()


@dataclass(frozen=True)
class LeafSpineSpec:
    leaves: int
    spines: int
    hosts_per_leaf: int
    host: HostSpec = field(default_factory=HostSpec)
    spine_bandwidth: float | None = None
    oversubscription: float | None = None
    parallel_links: int = 1
    rail_optimized: bool = False
    spine_latency: float = 0.0

    def uplink_bandwidth(self) -> float:
        """Capacity of one leaf-spine link, given directly or from the oversubscription ratio."""
        if self.spine_bandwidth is not None and self.oversubscription is not None:
            raise TopologyError("give spine_bandwidth or oversubscription, not both")
        if self.spine_bandwidth is not None:
            return self.spine_bandwidth
        ratio = 1.0 if self.oversubscription is None else self.oversubscription
        if not ratio > 0:
            raise TopologyError(f"oversubscription must be > 0, got {ratio!r}")
        down = self.hosts_per_leaf * self.host.nic_bandwidth
        if not self.rail_optimized:
            down *= self.host.nics
        return down / (self.spines * self.parallel_links * ratio)

    def num_hosts(self) -> int:
        if not self.rail_optimized:
            return self.leaves * self.hosts_per_leaf
        if self.leaves % self.host.nics:
            raise TopologyError(
                f"rail-optimized: leaves ({self.leaves}) must be a multiple of nics_per_host ({self.host.nics})"
            )
        return (self.leaves // self.host.nics) * self.hosts_per_leaf


def add_leaf_spine(b: TopologyBuilder, prefix: str, spec: LeafSpineSpec, **attrs: int) -> list[str]:
    for name, value in (("leaves", spec.leaves), ("spines", spec.spines), ("hosts_per_leaf", spec.hosts_per_leaf),
                        ("parallel_links", spec.parallel_links)):
        _positive(name, value)
    uplink = spec.uplink_bandwidth()
    spines = [f"{prefix}spine{j}" for j in range(spec.spines)]
    for j, s in enumerate(spines):
        b.add_node(s, "spine", **attrs)
    for i in range(spec.leaves):
        b.add_node(f"{prefix}leaf{i}", "leaf", leaf=i, **attrs)
        for s in spines:
            for _ in range(spec.parallel_links):
                b.add_cable(f"{prefix}leaf{i}", s, uplink, spec.spine_latency, "leaf-spine")
    nics, per_leaf = spec.host.nics, spec.hosts_per_leaf

    def leaf(host: int, rail: int) -> int:  # the leaf a server's NIC `rail` plugs into
        return (host // per_leaf) * nics + rail if spec.rail_optimized else host // per_leaf

    added = add_hosts(b, prefix, range(spec.num_hosts()), spec.host, lambda h, r: f"{prefix}leaf{leaf(h, r)}",
                      **attrs)
    # leaf attribute of GPUs and NICs: the leaf their NIC plugs into
    column, host, rail = b.attrs["leaf"], b.attrs["host"], b.attrs["rail"]
    for v in added:
        if b.kinds[v] in ("gpu", "nic"):
            column[v] = leaf(host[v], rail[v])
    return spines


def leaf_spine(spec: LeafSpineSpec, name: str = "leaf_spine") -> Topology:
    """A two-tier Clos: leaves each joined to every spine, hosts under leaves (optionally rail-optimized)."""
    b = TopologyBuilder(name)
    add_leaf_spine(b, "", spec)
    b.meta.update(kind="leaf_spine", leaves=spec.leaves, spines=spec.spines)
    return b.build()


@dataclass(frozen=True)
class FatTreeSpec:
    k: int
    host: HostSpec = field(default_factory=HostSpec)
    bandwidth: float | None = None  # switch-to-switch links; default: the NIC bandwidth (non-blocking)
    latency: float = 0.0


def add_fat_tree(b: TopologyBuilder, prefix: str, spec: FatTreeSpec, **attrs: int) -> list[str]:
    k = spec.k
    if not isinstance(k, int) or k < 2 or k % 2:
        raise TopologyError(f"fat-tree k must be an even integer >= 2, got {k!r}")
    if spec.host.nics != 1:
        raise TopologyError("fat-tree hosts have one NIC (nics_per_host: 1)")
    half = k // 2
    bw = spec.host.nic_bandwidth if spec.bandwidth is None else spec.bandwidth
    cores = [f"{prefix}core{c}" for c in range(half * half)]
    for c in cores:
        b.add_node(c, "core", **attrs)
    host = 0
    for p in range(k):
        for a in range(half):
            agg = f"{prefix}p{p}.agg{a}"
            b.add_node(agg, "agg", pod=p, **attrs)
            for c in range(half):
                b.add_cable(agg, cores[a * half + c], bw, spec.latency, "agg-core")
        for e in range(half):
            edge = f"{prefix}p{p}.edge{e}"
            b.add_node(edge, "leaf", pod=p, leaf=p * half + e, **attrs)
            for a in range(half):
                b.add_cable(edge, f"{prefix}p{p}.agg{a}", bw, spec.latency, "edge-agg")
            add_hosts(b, prefix, range(host, host + half), spec.host, lambda h, r, x=edge: x, pod=p,
                      leaf=p * half + e, **attrs)
            host += half
    return cores


def fat_tree(spec: FatTreeSpec, name: str = "fat_tree") -> Topology:
    """A three-tier k-ary fat-tree: k pods of k/2 edge and k/2 aggregation switches, (k/2)^2 cores."""
    b = TopologyBuilder(name)
    add_fat_tree(b, "", spec)
    b.meta.update(kind="fat_tree", k=spec.k)
    return b.build()


@dataclass(frozen=True)
class WanLink:
    a: str
    b: str
    bandwidth: float
    latency: float


@dataclass(frozen=True)
class Datacenter:
    name: str
    fabric: object  # LeafSpineSpec | FatTreeSpec | ("single_switch", n, bandwidth, latency)
    gateway_bandwidth: float | None = None


def add_datacenter(b: TopologyBuilder, dc: Datacenter, index: int) -> None:
    prefix = f"{dc.name}/"
    if isinstance(dc.fabric, LeafSpineSpec):
        tops = add_leaf_spine(b, prefix, dc.fabric, dc=index)
        default_gw = dc.fabric.uplink_bandwidth() * dc.fabric.parallel_links
    elif isinstance(dc.fabric, FatTreeSpec):
        tops = add_fat_tree(b, prefix, dc.fabric, dc=index)
        default_gw = dc.fabric.host.nic_bandwidth if dc.fabric.bandwidth is None else dc.fabric.bandwidth
    else:
        _, n, bandwidth, latency = dc.fabric
        tops = add_single_switch(b, prefix, n, bandwidth, latency, dc=index)
        default_gw = bandwidth * n
    gateway = f"{dc.name}/gw"
    b.add_node(gateway, "site", dc=index)
    gw_bw = default_gw if dc.gateway_bandwidth is None else dc.gateway_bandwidth
    for top in tops:
        b.add_cable(top, gateway, gw_bw, 0.0, "dc-gateway")


def internet(datacenters: list[Datacenter], wan: list[WanLink], name: str = "internet") -> Topology:
    """Datacenters, each with its own fabric and a gateway, joined by WAN links between gateways."""
    if len(datacenters) < 1:
        raise TopologyError("an internet topology needs at least one datacenter")
    names = [dc.name for dc in datacenters]
    if len(set(names)) != len(names):
        raise TopologyError(f"datacenter names must be unique, got {names}")
    b = TopologyBuilder(name)
    for i, dc in enumerate(datacenters):
        add_datacenter(b, dc, i)
    seen: set[frozenset[str]] = set()
    for link in wan:
        for end in (link.a, link.b):
            if end not in names:
                raise TopologyError(f"WAN link {link.a}<->{link.b}: unknown datacenter {end!r} (known: {names})")
        pair = frozenset((link.a, link.b))
        if link.a == link.b or pair in seen:
            raise TopologyError(f"WAN link {link.a}<->{link.b} is a self-loop or repeated")
        seen.add(pair)
        b.add_cable(f"{link.a}/gw", f"{link.b}/gw", link.bandwidth, link.latency, "wan")
    b.meta.update(kind="internet", datacenters=names)
    return b.build()

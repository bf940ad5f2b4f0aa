"""YAML topology files, validated by pydantic, turned into builder calls.

Each topology `kind` is one config class listed in `CONFIGS`: its `kind` literal is the name,
the first line of its docstring the help (`topology_kinds()`), its `build` the builder call.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from netsim.config import pydantic_error, read_yaml
from netsim.config.name import Name
from netsim.errors import ConfigError, NetsimError, UnitError
from netsim.topology.builders import (
    Datacenter, FatTreeSpec, LeafSpineSpec, PcieSpec, WanLink, fat_tree, full_mesh, internet, leaf_spine, pcie_tree,
    ring, single_switch,
)
from netsim.topology.custom import ROLES, astra_network, graph_topology, is_astra_network
from netsim.topology.graph import Topology
from netsim.topology.hosts import HostSpec
from netsim.units import parse_bandwidth, parse_size, parse_time


def as_value_error(parse):
    """Wrap a units parser so pydantic reports its errors against the field being validated."""

    def parse_or_value_error(value: object):
        try:
            return parse(value)
        except UnitError as exc:
            raise ValueError(exc.detail) from None

    return parse_or_value_error


def quantity(parse, what: str, *, strictly_positive: bool) -> BeforeValidator:
    """A pydantic validator reading a quantity with `parse` and checking its sign."""

    @as_value_error
    def check(value: object):
        number = parse(value)
        if strictly_positive and not number > 0:
            raise ValueError(f"{what} must be positive, got {value!r}")
        if number < 0:
            raise ValueError(f"{what} must be >= 0, got {value!r}")
        return number

    return BeforeValidator(check)


Bandwidth = Annotated[float, quantity(parse_bandwidth, "bandwidth", strictly_positive=True)]
Latency = Annotated[float, quantity(parse_time, "latency", strictly_positive=False)]
Duration = Annotated[float, quantity(parse_time, "duration", strictly_positive=False)]
Size = Annotated[int, quantity(parse_size, "size", strictly_positive=False)]
Count = Annotated[int, Field(ge=1, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _HostFields(_Strict):
    gpus_per_host: Count = 1
    nics_per_host: Count = 1
    host_bandwidth: Bandwidth = 400e9 / 8
    host_latency: Latency = 0.0
    nvlink_bandwidth: Bandwidth = 450e9
    nvlink_latency: Latency = 0.0
    pcie_bandwidth: Bandwidth = 64e9
    pcie_latency: Latency = 0.0

    def host_spec(self) -> HostSpec:
        return HostSpec(
            gpus=self.gpus_per_host, nics=self.nics_per_host, nic_bandwidth=self.host_bandwidth,
            nic_latency=self.host_latency, nvlink_bandwidth=self.nvlink_bandwidth, nvlink_latency=self.nvlink_latency,
            pcie_bandwidth=self.pcie_bandwidth, pcie_latency=self.pcie_latency,
        )


class _UniformConfig(_Strict):
    """The fields of the kinds made of `gpus` GPUs and links of one bandwidth and latency."""

    name: str | None = None
    gpus: Count
    bandwidth: Bandwidth = 50e9
    latency: Latency = 0.0

    def build(self, name: str) -> Topology:
        return self.builder(self.gpus, self.bandwidth, self.latency, name=self.name or name)


class SingleSwitchConfig(_UniformConfig):
    """GPUs on one non-blocking switch (an NVSwitch server, or a star)."""

    kind: Literal["single_switch"]
    builder: ClassVar = staticmethod(single_switch)


class RingConfig(_UniformConfig):
    """GPUs cabled in a ring; GPUs forward traffic for each other."""

    kind: Literal["ring"]
    builder: ClassVar = staticmethod(ring)


class FullMeshConfig(_UniformConfig):
    """GPUs with a direct cable between every pair."""

    kind: Literal["full_mesh"]
    builder: ClassVar = staticmethod(full_mesh)


class LeafSpineConfig(_HostFields):
    """Two-tier Clos: leaves each joined to every spine, hosts under leaves (optionally rail-optimized)."""

    kind: Literal["leaf_spine"]
    name: str | None = None
    leaves: Count
    spines: Count
    hosts_per_leaf: Count
    rail_optimized: bool = False
    spine_bandwidth: Bandwidth | None = None
    oversubscription: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    parallel_links: Count = 1
    spine_latency: Latency = 0.0

    def spec(self) -> LeafSpineSpec:
        return LeafSpineSpec(
            leaves=self.leaves, spines=self.spines, hosts_per_leaf=self.hosts_per_leaf, host=self.host_spec(),
            spine_bandwidth=self.spine_bandwidth, oversubscription=self.oversubscription,
            parallel_links=self.parallel_links, rail_optimized=self.rail_optimized, spine_latency=self.spine_latency,
        )

    def build(self, name: str) -> Topology:
        return leaf_spine(self.spec(), name=self.name or name)


class FatTreeConfig(_HostFields):
    """Three-tier k-ary fat-tree: k pods of k/2 edge and k/2 aggregation switches, (k/2)^2 cores."""

    kind: Literal["fat_tree"]
    name: str | None = None
    k: Annotated[int, Field(ge=2, strict=True)]
    bandwidth: Bandwidth | None = None
    latency: Latency = 0.0

    def spec(self) -> FatTreeSpec:
        return FatTreeSpec(k=self.k, host=self.host_spec(), bandwidth=self.bandwidth, latency=self.latency)

    def build(self, name: str) -> Topology:
        return fat_tree(self.spec(), name=self.name or name)


class SwitchFabric(_Strict):
    kind: Literal["single_switch"]
    gpus: Count
    bandwidth: Bandwidth = 50e9
    latency: Latency = 0.0


DcFabric = Annotated[Union[LeafSpineConfig, FatTreeConfig, SwitchFabric], Field(discriminator="kind")]


class DatacenterConfig(_Strict):
    name: Name
    fabric: DcFabric
    gateway_bandwidth: Bandwidth | None = None

    def datacenter(self) -> Datacenter:
        f = self.fabric
        fabric = ("single_switch", f.gpus, f.bandwidth, f.latency) if isinstance(f, SwitchFabric) else f.spec()
        return Datacenter(self.name, fabric, self.gateway_bandwidth)


class WanDefaults(_Strict):
    bandwidth: Bandwidth
    latency: Latency = 0.0
    full_mesh: bool = True


class WanLinkConfig(_Strict):
    a: str
    b: str
    bandwidth: Bandwidth | None = None
    latency: Latency | None = None


class InternetConfig(_Strict):
    """Datacenters, each with its own fabric and a gateway, joined by WAN links between gateways."""

    kind: Literal["internet"]
    name: str | None = None
    datacenters: Annotated[list[DatacenterConfig], Field(min_length=1)]
    wan: WanDefaults
    wan_links: list[WanLinkConfig] = []

    def build(self, name: str) -> Topology:
        explicit = {frozenset((w.a, w.b)): w for w in self.wan_links}
        links: list[WanLink] = []
        names = [dc.name for dc in self.datacenters]
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]] if self.wan.full_mesh else []
        for w in self.wan_links:
            if frozenset((w.a, w.b)) not in {frozenset(p) for p in pairs}:
                pairs.append((w.a, w.b))
        for a, b in pairs:
            w = explicit.get(frozenset((a, b)))
            bw = w.bandwidth if w is not None and w.bandwidth is not None else self.wan.bandwidth
            lat = w.latency if w is not None and w.latency is not None else self.wan.latency
            links.append(WanLink(a, b, bw, lat))
        return internet([dc.datacenter() for dc in self.datacenters], links, name=self.name or name)


class PcieConfig(_Strict):
    """A PCIe server: GPUs under PCIe switches under one or two root complexes (CPU sockets)."""

    kind: Literal["pcie"]
    name: str | None = None
    sockets: Annotated[int, Field(ge=1, le=8, strict=True)] = 1
    switches_per_socket: Annotated[int, Field(ge=1, le=64, strict=True)] = 2
    gpus_per_switch: Annotated[int, Field(ge=1, le=64, strict=True)] = 2
    gpu_bandwidth: Bandwidth = 25e9
    uplink_bandwidth: Bandwidth = 25e9
    socket_bandwidth: Bandwidth = 20e9
    gpu_latency: Latency = 1e-6
    uplink_latency: Latency = 1e-6
    socket_latency: Latency = 1e-6

    @property
    def gpus(self) -> int:
        return self.sockets * self.switches_per_socket * self.gpus_per_switch

    def build(self, name: str) -> Topology:
        spec = PcieSpec(**self.model_dump(exclude={"kind", "name"}))
        return pcie_tree(spec, name=self.name or name)


class CableConfig(_Strict):
    a: str
    b: str
    bandwidth: Bandwidth
    latency: Latency = 0.0
    tier: str = "cable"


class NodeConfig(_Strict):
    role: Literal[ROLES]
    relay: bool | None = None  # forwards others' traffic (default: every role but gpu)
    host: int | None = None
    leaf: int | None = None
    rail: int | None = None
    pod: int | None = None
    dc: int | None = None


class GraphConfig(_Strict):
    """Any fabric: named nodes (gpu, switch, nic or router) and the cables between them."""

    kind: Literal["graph"]
    name: str | None = None
    nodes: Annotated[dict[str, Union[Literal[ROLES], NodeConfig]], Field(min_length=1)]
    cables: Annotated[list[CableConfig], Field(min_length=1)]

    @property
    def gpus(self) -> int:
        return sum(1 for n in self.nodes.values() if (n if isinstance(n, str) else n.role) == "gpu")

    def build(self, name: str) -> Topology:
        nodes = {k: v if isinstance(v, str) else v.model_dump(exclude_none=True) for k, v in self.nodes.items()}
        cables = [(c.a, c.b, c.bandwidth, c.latency, c.tier) for c in self.cables]
        return graph_topology(nodes, cables, name=self.name or name)


CONFIGS = (SingleSwitchConfig, RingConfig, FullMeshConfig, LeafSpineConfig, FatTreeConfig, PcieConfig,
           InternetConfig, GraphConfig)
"""The topology kinds, one config class each: adding a kind means adding its class here."""

TopologyConfig = Annotated[Union[CONFIGS], Field(discriminator="kind")]


def topology_kinds() -> dict[str, str]:
    """Topology `kind` -> one line of help (its config class's docstring), in `CONFIGS` order."""
    return {get_args(c.model_fields["kind"].annotation)[0]: c.__doc__.splitlines()[0].rstrip(".") for c in CONFIGS}


class _Root(BaseModel):
    topology: TopologyConfig


MAX_GPUS = 131_072  # the largest fabric netsim builds (a k = 64 fat-tree with 2 GPUs per host)
MAX_DIRECT_GPUS = {"ring": 1024, "full_mesh": 1024}  # direct-connect topologies: GPUs forward traffic


def _gpus(config) -> int:
    """GPUs a validated topology config describes, counted before anything is built."""
    if isinstance(config, InternetConfig):
        return sum(_gpus(dc.fabric) for dc in config.datacenters)
    if isinstance(config, LeafSpineConfig):  # rail-optimized: a server's NICs take one leaf of each rail
        leaves = config.leaves // config.nics_per_host if config.rail_optimized else config.leaves
        return leaves * config.hosts_per_leaf * config.gpus_per_host
    if isinstance(config, FatTreeConfig):
        return config.k ** 3 // 4 * config.gpus_per_host
    return config.gpus


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


# fields any kind takes: name -> (parser, the least value: "positive", "non-negative" or None); see
# `topology_from_dict`
CONNECTION_FIELDS = {"connection_bandwidth": (parse_bandwidth, "positive"),
                     "connection_latency": (parse_time, "non-negative"), "switch_reduction": (_flag, None)}


def topology_from_dict(data: object, *, source: str | None = None, field: str = "") -> Topology:
    """Validate a topology mapping (as read from YAML) and build it.

    Any kind may also say how one connection (one transfer between two endpoints) fares on this fabric
    however idle its links, where a transport, not a cable, sets the pace (NCCL's peer-to-peer copies
    through a PCIe switch reach about half the link): ``connection_bandwidth``, the most it gets, and
    ``connection_latency``, the software latency it pays before its first byte arrives (on top of the
    links' own). Simulations on the topology use them unless their own options set a flow cap or an
    overhead (`NetworkOptions.flow_rate_cap`, `overhead`); `netsim calibrate` fits both. And
    ``switch_reduction: true`` says the fabric's switches can sum what passes through them (InfiniBand SHARP):
    the `collnet` all-reduce needs it."""
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with a 'kind' key", source=source, field=field or None)
    if any(name in data for name in CONNECTION_FIELDS):
        data, extra = dict(data), {}
        for name, (parse, positive) in CONNECTION_FIELDS.items():
            if name not in data:
                continue
            where = f"{field}.{name}" if field else name
            try:
                value = parse(data.pop(name))
            except ConfigError as exc:
                raise ConfigError(exc.detail, source=source, field=where) from None
            if positive is not None and not (value > 0 if positive == "positive" else value >= 0):
                raise ConfigError(f"must be {'positive' if positive == 'positive' else '>= 0'}, got {value!r}",
                                  source=source, field=where)
            extra[name] = value
        topo = topology_from_dict(data, source=source, field=field)
        return replace(topo, meta={**topo.meta, **extra})
    if is_astra_network(data):  # an ASTRA-sim network configuration, as its users write it
        default_name = Path(source).stem if source else "astra"
        try:
            return astra_network(data, name=default_name)
        except ConfigError as exc:
            raise ConfigError(exc.detail, source=source, field=field or exc.field) from None
    try:
        config = _Root.model_validate({"topology": data}).topology
    except ValidationError as exc:
        raise pydantic_error(exc, source, {"topology": data}, prefix=field, skip=1) from None
    gpus = _gpus(config)
    if gpus > MAX_GPUS:
        raise ConfigError(f"describes {gpus:,} GPUs, more than the {MAX_GPUS:,} netsim builds", source=source,
                          field=field or None)
    direct = MAX_DIRECT_GPUS.get(getattr(config, "kind", ""))
    if direct is not None and gpus > direct:
        raise ConfigError(f"a {config.kind} of {gpus:,} GPUs is more than the {direct:,} netsim builds (GPUs relay "
                          "each other's traffic: paths grow with the ring, links with the square of a mesh)",
                          source=source, field=field or None)
    default_name = Path(source).stem if source else str(data.get("kind"))
    try:
        return config.build(default_name)
    except ConfigError as exc:
        raise (exc if exc.source else ConfigError(exc.detail, source=source, field=field or exc.field)) from None


SHIPPED = Path(__file__).resolve().parents[1] / "data" / "topologies"  # installed with the package


def shipped_topologies() -> dict[str, Path]:
    """The topologies that come with netsim: name -> file (`netsim topo list` shows them)."""
    return {f.stem: f for f in sorted(SHIPPED.glob("*.yaml"))}


def find_topology(name: str | Path, base: Path | None = None) -> Path | None:
    """The file a topology reference names: a path (relative to `base`, then the working folder), or the bare
    name of a shipped topology (``rail64``); None when it names neither."""
    path = Path(name)
    for candidate in ([path] if path.is_absolute() else [(base or Path.cwd()) / path, Path.cwd() / path]):
        if candidate.is_file():
            return candidate
    text = str(name)
    if "/" not in text and "\\" not in text:
        return shipped_topologies().get(text.removesuffix(".yaml"))
    return None


def load_topology(path: str | Path) -> Topology:
    """Read and build a topology YAML file, or a shipped topology by name.

    >>> load_topology("nvlink8").gpus.size
    8
    """
    found = find_topology(path)
    if found is None and not Path(path).exists():
        raise ConfigError(f"file not found, and not the name of a shipped topology (shipped: "
                          f"{', '.join(shipped_topologies())})", source=str(path))
    found = found or Path(path)
    return topology_from_dict(read_yaml(found), source=str(path) if found.parent != SHIPPED else str(found))


__all__ = ["CONFIGS", "find_topology", "load_topology", "shipped_topologies", "topology_from_dict", "topology_kinds",
           "read_yaml", "pydantic_error", "NetsimError"]

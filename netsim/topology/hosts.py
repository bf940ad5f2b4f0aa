"""GPU servers: GPUs joined by an NVLink switch, each GPU behind a NIC (rail) on PCIe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from netsim.errors import TopologyError
from netsim.topology.graph import TopologyBuilder


@dataclass(frozen=True)
class HostSpec:
    """What one server looks like; bandwidths in bytes/s, latencies in s."""

    gpus: int = 1
    nics: int = 1
    nic_bandwidth: float = 400e9 / 8
    nic_latency: float = 0.0
    nvlink_bandwidth: float = 450e9
    nvlink_latency: float = 0.0
    pcie_bandwidth: float = 64e9
    pcie_latency: float = 0.0

    def __post_init__(self) -> None:
        if self.gpus < 1 or self.nics < 1:
            raise TopologyError(f"a host needs at least one GPU and one NIC (got {self.gpus} GPUs, {self.nics} NICs)")
        if self.gpus % self.nics:
            raise TopologyError(f"gpus_per_host ({self.gpus}) must be a multiple of nics_per_host ({self.nics})")

    def rail_of(self, gpu: int) -> int:
        """The NIC (rail) that local GPU `gpu` uses: GPUs share NICs in contiguous groups."""
        return gpu * self.nics // self.gpus


def add_host(
    b: TopologyBuilder, prefix: str, host: int, spec: HostSpec, attach: Callable[[int], str], **attrs: int
) -> None:
    """Add server `host`; `attach(rail)` names the switch NIC `rail` plugs into."""
    base = f"{prefix}h{host}"
    for r in range(spec.nics):
        nic = f"{base}.nic{r}"
        b.add_node(nic, "nic", host=host, rail=r, **attrs)
        b.add_cable(nic, attach(r), spec.nic_bandwidth, spec.nic_latency, "host")
    if spec.gpus > 1:
        b.add_node(f"{base}.nvs", "nvswitch", host=host, **attrs)
    for g in range(spec.gpus):
        gpu = f"{base}.gpu{g}"
        rail = spec.rail_of(g)
        b.add_node(gpu, "gpu", host=host, rail=rail, **attrs)
        b.add_cable(gpu, f"{base}.nic{rail}", spec.pcie_bandwidth, spec.pcie_latency, "pcie")
        if spec.gpus > 1:
            b.add_cable(gpu, f"{base}.nvs", spec.nvlink_bandwidth, spec.nvlink_latency, "nvlink")

"""GPU servers: GPUs joined by an NVLink switch, each GPU behind a NIC (rail) on PCIe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

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


def add_hosts(b: TopologyBuilder, prefix: str, hosts: Sequence[int], spec: HostSpec,
              attach: Callable[[int, int], str], **attrs: int | Sequence[int]) -> range:
    """Add servers `hosts`, in order, in one go: `attach(host, rail)` names the switch the host's NIC `rail`
    plugs into; an attribute is one value for every server or one per server. Returns the new nodes' ids.

    Each server is `{prefix}h{host}`: its NICs (`.nic{r}`, node attribute `rail` r), an NVLink switch
    (`.nvs`) when it has several GPUs, then its GPUs (`.gpu{g}`, on the NIC of their rail); the cables
    are each NIC's to its switch, then each GPU's to its NIC (PCIe) and to the NVLink switch.

    >>> b = TopologyBuilder("two servers")
    >>> _ = b.add_node("sw", "switch")
    >>> _ = add_hosts(b, "", range(2), HostSpec(gpus=2), lambda host, rail: "sw")
    >>> b.names[1:]
    ['h0.nic0', 'h0.nvs', 'h0.gpu0', 'h0.gpu1', 'h1.nic0', 'h1.nvs', 'h1.gpu0', 'h1.gpu1']
    """
    hosts = list(hosts)
    nvs = spec.gpus > 1
    rails = [spec.rail_of(g) for g in range(spec.gpus)]
    # one server's nodes (suffix, kind, rail) and cables to its own nodes (suffix, suffix, bandwidth, latency, tier)
    nodes = ([(f".nic{r}", "nic", r) for r in range(spec.nics)] + ([(".nvs", "nvswitch", -1)] if nvs else [])
             + [(f".gpu{g}", "gpu", rails[g]) for g in range(spec.gpus)])
    inside = []
    for g in range(spec.gpus):
        inside.append((f".gpu{g}", f".nic{rails[g]}", spec.pcie_bandwidth, spec.pcie_latency, "pcie"))
        if nvs:
            inside.append((f".gpu{g}", ".nvs", spec.nvlink_bandwidth, spec.nvlink_latency, "nvlink"))
    bases = [f"{prefix}h{h}" for h in hosts]
    per = len(nodes)
    columns = {"host": [h for h in hosts for _ in range(per)], "rail": [r for _ in hosts for _, _, r in nodes]}
    for name, value in attrs.items():
        columns[name] = ([int(value)] * (per * len(bases)) if isinstance(value, (int, np.integer))
                         else [int(v) for v in value for _ in range(per)])
    added = b.add_nodes([base + suffix for base in bases for suffix, _, _ in nodes],
                        [kind for _ in bases for _, kind, _ in nodes], columns)
    cables = []
    for h, base in zip(hosts, bases):
        cables.extend((f"{base}.nic{r}", attach(h, r), spec.nic_bandwidth, spec.nic_latency, "host")
                      for r in range(spec.nics))
        cables.extend((base + a, base + z, bandwidth, latency, tier) for a, z, bandwidth, latency, tier in inside)
    b.add_cables(cables)
    return added

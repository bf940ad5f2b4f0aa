"""Topologies: the immutable `Topology`, its builders, YAML loading and path sets."""

from netsim.topology.builders import (
    Datacenter, FatTreeSpec, LeafSpineSpec, PcieSpec, WanLink, fat_tree, full_mesh, internet, leaf_spine, pcie_tree,
    ring, single_switch,
)
from netsim.topology.config import load_topology, read_yaml, topology_from_dict, topology_kinds
from netsim.topology.graph import Topology, TopologyBuilder
from netsim.topology.hosts import HostSpec
from netsim.topology.paths import PathCache, distances_to

__all__ = [
    "Datacenter", "FatTreeSpec", "HostSpec", "LeafSpineSpec", "PathCache", "PcieSpec", "pcie_tree", "Topology", "TopologyBuilder", "WanLink",
    "distances_to", "fat_tree", "full_mesh", "internet", "leaf_spine", "load_topology", "read_yaml", "ring",
    "single_switch", "topology_from_dict", "topology_kinds",
]

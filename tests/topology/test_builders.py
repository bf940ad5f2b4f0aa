import numpy as np
import pytest

from netsim.errors import TopologyError
from netsim.topology import (
    Datacenter, FatTreeSpec, HostSpec, LeafSpineSpec, PathCache, WanLink, fat_tree, full_mesh, internet, leaf_spine,
    ring, single_switch,
)
from netsim.topology.summary import bisection_bandwidth


def test_single_switch_counts_and_paths():
    t = single_switch(8, 10e9, 1e-6)
    assert len(t.gpus) == 8 and t.num_links == 16
    paths = PathCache(t).paths(int(t.gpus[0]), int(t.gpus[5]))
    assert len(paths) == 1 and len(paths[0]) == 2
    assert bisection_bandwidth(t) == pytest.approx(4 * 10e9)


def test_ring_gpus_relay_and_shortest_way_round():
    t = ring(6, 1e9)
    cache = PathCache(t)
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[2]))[0]) == 2
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[3]))) == 2  # both directions tie
    assert bisection_bandwidth(t) == pytest.approx(2e9)


def test_full_mesh_direct_links():
    t = full_mesh(5, 1e9)
    assert t.num_links == 5 * 4
    paths = PathCache(t).paths(int(t.gpus[1]), int(t.gpus[4]))
    assert len(paths) == 1 and len(paths[0]) == 1


def test_leaf_spine_oversubscription_and_paths():
    spec = LeafSpineSpec(leaves=4, spines=2, hosts_per_leaf=4, host=HostSpec(nic_bandwidth=100.0), oversubscription=2)
    t = leaf_spine(spec)
    assert len(t.gpus) == 16
    up = [l for l in range(t.num_links) if t.link_tier[l] == "leaf-spine"]
    assert np.allclose(t.capacity[up], 4 * 100.0 / (2 * 2))
    cache = PathCache(t)
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[5]))) == 2  # other leaf: one path per spine
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[1]))) == 1  # same leaf
    # half the leaves to the other half: 2 leaves x 2 spines x 100 each way
    assert bisection_bandwidth(t) == pytest.approx(2 * 2 * 100.0)


def test_leaf_spine_parallel_links_multiply_paths():
    spec = LeafSpineSpec(leaves=2, spines=2, hosts_per_leaf=1, parallel_links=3, spine_bandwidth=1.0)
    t = leaf_spine(spec)
    assert len(PathCache(t).paths(int(t.gpus[0]), int(t.gpus[1]))) == 2 * 3 * 3


def test_rail_optimized_places_nic_r_on_leaf_r():
    spec = LeafSpineSpec(leaves=8, spines=8, hosts_per_leaf=8, host=HostSpec(gpus=8, nics=8), rail_optimized=True)
    t = leaf_spine(spec)
    assert len(t.gpus) == 64
    assert (t.gpu_attr("leaf") == t.gpu_attr("rail")).all()
    assert (t.gpu_attr("rail") == np.tile(np.arange(8), 8)).all()
    cache = PathCache(t)
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[8]))) == 1  # same rail, other server: one leaf
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[9]))) == 8  # other rail: via any spine
    # GPUs never relay: no path goes through a third GPU
    for path in cache.paths(int(t.gpus[0]), int(t.gpus[9])):
        inner = [int(t.link_dst[l]) for l in path[:-1]]
        assert all(t.node_kind[v] != "gpu" for v in inner)


def test_fat_tree_k4_structure_and_path_counts():
    t = fat_tree(FatTreeSpec(k=4, host=HostSpec(nic_bandwidth=1.0)))
    kinds = {k: t.node_kind.count(k) for k in set(t.node_kind)}
    assert kinds["core"] == 4 and kinds["agg"] == 8 and kinds["leaf"] == 8 and kinds["gpu"] == 16
    cache = PathCache(t)
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[1]))) == 1   # same edge switch
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[2]))) == 2   # same pod
    assert len(cache.paths(int(t.gpus[0]), int(t.gpus[15]))) == 4  # other pod: (k/2)^2
    assert bisection_bandwidth(t) == pytest.approx(8 * 1.0)


def test_internet_joins_datacenters_through_wan():
    dc = LeafSpineSpec(leaves=2, spines=1, hosts_per_leaf=1)
    t = internet([Datacenter("a", dc), Datacenter("b", dc), Datacenter("c", ("single_switch", 2, 1e9, 0.0))],
                 [WanLink("a", "b", 1e9, 0.03), WanLink("b", "c", 2e9, 0.05)])
    assert len(t.gpus) == 6
    assert set(t.gpu_attr("dc").tolist()) == {0, 1, 2}
    path = PathCache(t).paths(int(t.gpus[0]), int(t.gpus[5]))[0]
    assert t.latency[list(path)].sum() == pytest.approx(0.08)


def test_disconnected_topology_is_an_error():
    dc = LeafSpineSpec(leaves=1, spines=1, hosts_per_leaf=2)
    with pytest.raises(TopologyError, match="disconnected"):
        internet([Datacenter("a", dc), Datacenter("b", dc)], [])


@pytest.mark.parametrize("kwargs", [dict(spine_bandwidth=-1.0), dict(spine_bandwidth=1.0, oversubscription=2.0)])
def test_bad_leaf_spine(kwargs):
    with pytest.raises(TopologyError):
        leaf_spine(LeafSpineSpec(leaves=2, spines=2, hosts_per_leaf=2, **kwargs))

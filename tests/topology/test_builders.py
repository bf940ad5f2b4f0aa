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


def test_servers_added_in_one_go_are_the_nodes_and_links_one_at_a_time_gives():
    """`add_hosts` (a fabric's servers at once) against `add_node`/`add_cable` per server, as the builders
    added them before: same names, kinds, attributes, relays, and links in the same order (ECMP's choices
    follow link order)."""
    from netsim.topology import TopologyBuilder
    from netsim.topology.hosts import add_hosts

    spec = HostSpec(gpus=4, nics=2, nic_bandwidth=3.0, nic_latency=1e-6, pcie_bandwidth=5.0, nvlink_bandwidth=7.0)
    bulk, single = TopologyBuilder("bulk"), TopologyBuilder("single")
    for b in (bulk, single):
        b.add_node("sw0", "switch")
        b.add_node("sw1", "switch")
        b.add_cable("sw0", "sw1", 1.0, 0.0, "spine")
    add_hosts(bulk, "x.", range(3, 6), spec, lambda h, r: f"sw{(h + r) % 2}", pod=[7, 8, 9], dc=1)
    for h in range(3, 6):
        single.add_node(f"x.h{h}.nic0", "nic", host=h, rail=0, pod=4 + h, dc=1)
        single.add_cable(f"x.h{h}.nic0", f"sw{h % 2}", 3.0, 1e-6, "host")
        single.add_node(f"x.h{h}.nic1", "nic", host=h, rail=1, pod=4 + h, dc=1)
        single.add_cable(f"x.h{h}.nic1", f"sw{(h + 1) % 2}", 3.0, 1e-6, "host")
        single.add_node(f"x.h{h}.nvs", "nvswitch", host=h, pod=4 + h, dc=1)
        for g in range(4):
            single.add_node(f"x.h{h}.gpu{g}", "gpu", host=h, rail=g // 2, pod=4 + h, dc=1)
            single.add_cable(f"x.h{h}.gpu{g}", f"x.h{h}.nic{g // 2}", 5.0, 0.0, "pcie")
            single.add_cable(f"x.h{h}.gpu{g}", f"x.h{h}.nvs", 7.0, 0.0, "nvlink")
    a, b = bulk.build(), single.build()
    assert a.node_names == b.node_names and a.node_kind == b.node_kind and a.link_tier == b.link_tier
    for name in ("relay", "link_src", "link_dst", "capacity", "latency", "gpus"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert all(np.array_equal(a.attrs[k], b.attrs[k]) for k in b.attrs)


def test_servers_added_in_one_go_refuse_what_one_at_a_time_refuses():
    """The errors name the node or link (and its tier) as `add_node` and `add_cable` do, the first one a
    server at a time would have met; a refused `add_nodes` adds no node, a refused `add_cables` no link."""
    from netsim.topology import TopologyBuilder
    from netsim.topology.hosts import add_hosts

    def builder():
        b = TopologyBuilder("t")
        b.add_node("sw", "switch")
        b.add_node("h1.gpu0", "gpu")
        return b

    b = builder()
    with pytest.raises(TopologyError, match=r"node 'h1.gpu0' defined twice"):
        add_hosts(b, "", range(2), HostSpec(), lambda h, r: "sw")
    assert b.names == ["sw", "h1.gpu0"] and len(b.index) == 2
    b = builder()
    with pytest.raises(TopologyError, match=r"link h0.nic0<->nowhere: unknown node 'nowhere'"):
        add_hosts(b, "", range(1), HostSpec(), lambda h, r: "nowhere")
    assert not b.link_columns[0]
    b = builder()
    with pytest.raises(TopologyError, match=r"link h2.gpu0<->h2.nic0 \(pcie\): bandwidth must be a positive number"):
        add_hosts(b, "", range(2, 4), HostSpec(pcie_bandwidth=0.0), lambda h, r: "sw")
    assert not b.link_columns[0]
    for spec, attach, first in [  # several cables wrong: the first in order, and its first fault
            (HostSpec(gpus=2, pcie_bandwidth=0.0, nvlink_bandwidth=0.0), "sw", r"h2.gpu0<->h2.nic0 \(pcie\)"),
            (HostSpec(gpus=2, nic_bandwidth=-1.0, nvlink_bandwidth=float("nan")), "sw", r"h2.nic0<->sw \(host\)"),
            (HostSpec(pcie_bandwidth=0.0), "nowhere", r"h2.nic0<->nowhere: unknown node 'nowhere'")]:
        with pytest.raises(TopologyError, match=first):
            add_hosts(builder(), "", range(2, 4), spec, lambda h, r: attach)

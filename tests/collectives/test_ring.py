"""Ring collectives equal the alpha-beta closed forms to 1e-9, fluid and analytic."""

import itertools

import numpy as np
import polars as pl
import pytest

from netsim.collectives import (
    Communicator, direct_all_to_all_time, time_collective, ring_all_gather_time, ring_all_reduce_time, ring_reduce_scatter_time,
)
from netsim.sim import Simulation
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine, single_switch

FORMS = {"all_reduce": ring_all_reduce_time, "reduce_scatter": ring_reduce_scatter_time,
         "all_gather": ring_all_gather_time}


def run_op(topo, op, size, model="fluid", routing="ecmp", chunks=1, algo="ring", ranks=None):
    end, results = time_collective(topo, op, size, algo=algo, chunks=chunks, nodes=ranks, network=model,
                                   routing=routing)
    return end, results, None


def nonblocking_leaf_spine(n, bw, lat):
    """One GPU per leaf so every ring hop has the same path latency (4 cables of `lat`)."""
    spec = LeafSpineSpec(leaves=n, spines=2, hosts_per_leaf=1, spine_bandwidth=bw, spine_latency=lat,
                         host=HostSpec(nic_bandwidth=bw, nic_latency=lat, pcie_bandwidth=100 * bw))
    return leaf_spine(spec), 4 * lat


CASES = list(itertools.product([2, 3, 8, 16], [10**6, 3 * 2**20], [0.0, 1e-6, 2.5e-5]))


@pytest.mark.parametrize("model", ["fluid", "analytic"])
@pytest.mark.parametrize("op", sorted(FORMS))
@pytest.mark.parametrize("n, size, lat", CASES)
def test_ring_on_single_switch_matches_closed_form(model, op, n, size, lat):
    size -= size % n
    bw = 12.5e9
    topo = single_switch(n, bw, lat)
    end, _, _ = run_op(topo, op, size, model)
    assert end == pytest.approx(FORMS[op](n, size, 2 * lat, bw), rel=1e-9)


@pytest.mark.parametrize("model", ["fluid", "analytic"])
@pytest.mark.parametrize("routing", ["ecmp", "spray"])
@pytest.mark.parametrize("op", sorted(FORMS))
@pytest.mark.parametrize("n, lat", [(4, 1e-6), (8, 0.0), (12, 5e-7)])
def test_ring_on_nonblocking_leaf_spine_matches_closed_form(model, routing, op, n, lat):
    size = 2**24 - (2**24 % n)
    bw = 50e9
    topo, alpha = nonblocking_leaf_spine(n, bw, lat)
    end, _, _ = run_op(topo, op, size, model, routing)
    assert end == pytest.approx(FORMS[op](n, size, alpha, bw), rel=1e-9)


def test_uneven_size_is_set_by_the_largest_piece():
    n, size, bw, lat = 8, 10**6 + 3, 1e9, 1e-6
    end, _, _ = run_op(single_switch(n, bw, lat), "all_reduce", size)
    largest = -(-size // n)
    assert end == pytest.approx(2 * (n - 1) * (2 * lat + largest / bw), rel=1e-12)


def test_ring_all_reduce_sends_2_n_minus_1_over_n_of_the_buffer_per_rank():
    n, size = 8, 8 * 10**6
    _, results, _ = run_op(single_switch(n, 1e9, 0.0), "all_reduce", size)
    per_rank = results.transfers.group_by("src").agg(pl.col("size_B").sum())
    assert sorted(per_rank["size_B"].to_list()) == [2 * (n - 1) * size // n] * n


def test_chunked_ring_without_latency_equals_unchunked():
    n, size, bw = 8, 8 * 2**20, 1e9
    topo = single_switch(n, bw, 0.0)
    plain, _, _ = run_op(topo, "all_reduce", size)
    chunked, results, _ = run_op(topo, "all_reduce", size, chunks=4)
    assert chunked == pytest.approx(plain, rel=1e-9)
    assert len(results.transfers) == 4 * 2 * (n - 1) * n


def test_direct_all_to_all_on_single_switch():
    n, size, bw, lat = 8, 8 * 10**6, 1e9, 1e-6
    end, _, _ = run_op(single_switch(n, bw, lat), "all_to_all", size, algo="direct")
    assert end == pytest.approx(direct_all_to_all_time(n, size, 2 * lat, bw), rel=1e-9)


def test_send_recv_is_one_transfer():
    topo = single_switch(4, 1e9, 1e-6)
    sim = Simulation(topo)
    comm = Communicator(sim, topo.gpus)
    out = {}

    def program():
        out["end_s"] = yield comm.send(1, 3, 10**6)

    sim.process(program())
    sim.run()
    assert out["end_s"] == pytest.approx(2e-6 + 1e-3, rel=1e-12)


def test_subgroup_of_ranks_and_one_rank_is_free():
    topo = single_switch(8, 1e9, 0.0)
    end, _, _ = run_op(topo, "all_reduce", 4 * 10**6, ranks=topo.gpus[:4])
    assert end == pytest.approx(ring_all_reduce_time(4, 4 * 10**6, 0.0, 1e9), rel=1e-9)
    end, _, _ = run_op(topo, "all_reduce", 10**6, ranks=topo.gpus[:1])
    assert end == 0.0


def test_two_communicators_share_the_fabric():
    # two 2-rank rings whose flows cross the same oversubscribed uplink take longer than one alone
    spec = LeafSpineSpec(leaves=2, spines=1, hosts_per_leaf=2, host=HostSpec(nic_bandwidth=1e9), spine_bandwidth=1e9)
    topo = leaf_spine(spec)
    g = topo.gpus
    alone, _, _ = run_op(topo, "all_reduce", 10**6, ranks=np.array([g[0], g[2]]))
    sim = Simulation(topo)
    a, b = Communicator(sim, [g[0], g[2]], "a"), Communicator(sim, [g[1], g[3]], "b")
    ends = {}

    def program(comm):
        ends[comm.name] = yield comm.all_reduce(10**6)

    sim.process(program(a)), sim.process(program(b))
    sim.run()
    assert ends["a"] == pytest.approx(2 * alone, rel=1e-9) and ends["b"] == pytest.approx(2 * alone, rel=1e-9)

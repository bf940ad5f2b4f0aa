"""Planned single-path routing, minimal splitting and split:K against the bounds: ceil(D/s) flows per leaf link,
spraying's D.f/s with m* = s / gcd(s, D) subflows."""

import math
from collections import Counter

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.routing import Router
from netsim.routing.colouring import equitable_colouring
from netsim.routing.planned import minimal_split
from netsim.sim import Simulation
from netsim.topology import FatTreeSpec, HostSpec, LeafSpineSpec, fat_tree, leaf_spine

MiB = 2**20


def fabric(leaves, spines, hosts, bw=1e9, lat=0.0, spine_bw=None):
    spec = LeafSpineSpec(leaves=leaves, spines=spines, hosts_per_leaf=hosts, spine_bandwidth=spine_bw or bw,
                         spine_latency=lat,
                         host=HostSpec(nic_bandwidth=bw, nic_latency=lat, pcie_bandwidth=1e12))
    return leaf_spine(spec)


def all_to_all(topo, policy, size, seed=0):
    sim = Simulation(topo, routing=policy, seed=seed)
    comm = Communicator(sim, topo.gpus)
    out = {}

    def program():
        out["end_s"] = yield comm.all_to_all(size)

    sim.process(program())
    links = sim.run().links.filter(pl.col("tier") == "leaf-spine")
    return out["end_s"], links["carried_B"].max()


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 7), st.integers(2, 6), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1,
                                                          max_size=60))
def test_equitable_colouring_bound(colours, _unused, edges):
    edges = [(u, v) for u, v in edges]
    col = equitable_colouring(edges, colours)
    assert all(0 <= c < colours for c in col)
    for side in (0, 1):
        degree = Counter(e[side] for e in edges)
        for (x, _), k in Counter((e[side], c) for e, c in zip(edges, col)).items():
            assert k <= math.ceil(degree[x] / colours)


@pytest.mark.parametrize("leaves, spines, hosts", [(4, 5, 6), (3, 4, 3), (5, 3, 2), (4, 4, 6)])
def test_planned_max_load_is_ceil_d_over_s_and_min_split_matches_spraying(leaves, spines, hosts):
    topo = fabric(leaves, spines, hosts)
    n = leaves * hosts
    f = MiB
    d = hosts * (n - hosts)  # inter-leaf flows leaving (or entering) one leaf in an all-to-all
    _, planned = all_to_all(topo, "planned", f * n)
    _, spray = all_to_all(topo, "spray", f * n)
    _, minimal = all_to_all(topo, "split:min", f * n)
    assert planned == pytest.approx(math.ceil(d / spines) * f, rel=1e-12)
    assert spray == pytest.approx(d * f / spines, rel=1e-9)
    assert minimal == pytest.approx(d * f / spines, rel=1e-9)
    m = minimal_split(spines, d)
    _, with_m = all_to_all(topo, f"planned:{m}", f * n)
    assert with_m == pytest.approx(math.ceil(m * d / spines) * f / m, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_ecmp_and_split_k_never_below_spraying(seed):
    topo = fabric(4, 4, 4)
    _, spray = all_to_all(topo, "spray", 16 * MiB)
    for policy in ("ecmp", "split:2", "split:3"):
        _, load = all_to_all(topo, policy, 16 * MiB, seed=seed)
        assert load >= spray * (1 - 1e-12)


@pytest.mark.parametrize("policy", ["spray", "planned", "split:min"])
def test_completion_time_is_max_load_over_capacity_plus_latency(policy):
    # uplinks at half the NIC speed, so the spine layer (not the NIC) is the bottleneck
    topo = fabric(4, 5, 6, bw=1e9, lat=1e-6, spine_bw=0.5e9)
    end, load = all_to_all(topo, policy, 24 * MiB)
    assert end == pytest.approx(load / 0.5e9 + 4e-6, rel=1e-9)


def test_split_k_uses_k_equal_subflows():
    topo = fabric(2, 8, 1)
    route = Router(topo, "split:4", seed=3).route(int(topo.gpus[0]), int(topo.gpus[1]), ("conn",))
    assert sum(route.weights) == pytest.approx(1.0)
    assert all(w * 4 == pytest.approx(round(w * 4)) for w in route.weights)


def test_minimal_split_formula():
    assert minimal_split(4, 6) == 2 and minimal_split(4, 8) == 1 and minimal_split(5, 108) == 5


def test_planned_refuses_uneven_path_counts():
    topo = fat_tree(FatTreeSpec(k=4))
    with pytest.raises(ConfigError, match="same number of equal-cost paths"):
        all_to_all(topo, "planned", 16 * MiB)


@pytest.mark.parametrize("bad", ["split", "split:0", "split:x", "planned:-1", "ecmp:3"])
def test_bad_policy_arguments(bad):
    with pytest.raises(ConfigError):
        Router(fabric(2, 2, 1), bad)

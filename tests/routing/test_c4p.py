"""C4P planning: balance across jobs, failures re-planned, throughput-weighted striping; link faults."""

import math
from collections import Counter

import numpy as np
import polars as pl
import pytest

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.scenario import scenario_from_dict
from netsim.sim import Simulation
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

MiB = 2**20


def fabric(leaves=4, spines=4, hosts=4):
    spec = LeafSpineSpec(leaves=leaves, spines=spines, hosts_per_leaf=hosts, spine_bandwidth=1e9,
                         host=HostSpec(nic_bandwidth=1e9, pcie_bandwidth=1e12))
    return leaf_spine(spec)


def fabric_bytes(results):
    return results.links.filter(pl.col("tier") == "leaf-spine")


def run_all_to_all(topo, policy, size, *, fail=None, groups=None, seed=0):
    sim = Simulation(topo, routing=policy, seed=seed)
    if fail:
        sim.schedule_fault(0.0, topo.links_named(fail))
    comms = [Communicator(sim, g, name=f"job{i}", job=f"job{i}") for i, g in enumerate(groups or [topo.gpus])]
    return sim.run([c.all_to_all(size) for c in comms])


def optimum_flows(topo, groups, failed_links):
    """A lower bound on the max flows per fabric link: per leaf, inter-leaf flows out (in) over live up (down) links."""
    leaf = topo.attrs["leaf"]
    out, into = Counter(), Counter()
    for g in groups:
        for a in g:
            for b in g:
                if a != b and leaf[a] != leaf[b]:
                    out[int(leaf[a])] += 1
                    into[int(leaf[b])] += 1
    up, down = Counter(), Counter()
    for l in range(topo.num_links):
        if topo.link_tier[l] == "leaf-spine" and l not in failed_links:
            s, d = int(topo.link_src[l]), int(topo.link_dst[l])
            if topo.node_kind[s] == "leaf":
                up[int(topo.attrs["leaf"][s])] += 1
            else:
                down[int(topo.attrs["leaf"][d])] += 1
    return max(max(math.ceil(out[x] / up[x]) for x in out), max(math.ceil(into[x] / down[x]) for x in into))


def test_after_a_spine_link_failure_no_bytes_cross_it_and_max_load_is_within_one_flow():
    topo = fabric()
    failed = topo.links_named("leaf0<->spine1")
    f = MiB
    results = run_all_to_all(topo, "c4p", 16 * f, fail="leaf0<->spine1")
    links = fabric_bytes(results)
    assert links.filter(pl.col("link").is_in(failed))["carried_B"].sum() == 0
    worst = links["carried_B"].max()
    assert worst <= (optimum_flows(topo, [topo.gpus], set(failed)) + 1) * f * (1 + 1e-9)
    ecmp = fabric_bytes(run_all_to_all(topo, "ecmp", 16 * f, fail="leaf0<->spine1"))
    assert ecmp.filter(pl.col("link").is_in(failed))["carried_B"].sum() == 0  # switches drop failed next hops too
    assert worst <= ecmp["carried_B"].max()


@pytest.mark.parametrize("seed", range(3))
def test_c4p_balances_across_jobs(seed):
    topo = fabric()
    rng = np.random.default_rng(seed)
    gpus = rng.permutation(topo.gpus)
    groups = [np.sort(gpus[:8]), np.sort(gpus[8:])]
    f = MiB
    c4p = fabric_bytes(run_all_to_all(topo, "c4p", 8 * f, groups=groups, seed=seed))["carried_B"].max()
    ecmp = fabric_bytes(run_all_to_all(topo, "ecmp", 8 * f, groups=groups, seed=seed))["carried_B"].max()
    assert c4p <= (optimum_flows(topo, groups, set()) + 1) * f * (1 + 1e-9)
    assert c4p <= ecmp


def test_striping_shifts_bytes_away_from_a_degraded_path():
    topo = fabric(leaves=2, spines=2, hosts=1)
    sim = Simulation(topo, routing="c4p:2")
    comm = Communicator(sim, topo.gpus)
    ends = []

    def program():
        for _ in range(4):
            ends.append((yield comm.send(0, 1, 64 * MiB)))

    sim.schedule_fault(0.0, topo.links_named("leaf0<->spine0"), "degrade", 0.25)
    sim.process(program())
    sim.run()
    durations = np.diff([0.0] + ends)
    # the first send splits evenly and waits for the slow stripe; later ones lean on the fast path
    assert durations[-1] < 0.7 * durations[0]
    route = sim.router.route(int(topo.gpus[0]), int(topo.gpus[1]), ("", "world"))
    slow = [w for p, w in zip(route.paths, route.weights) if set(p) & set(topo.links_named("leaf0<->spine0"))]
    assert slow and slow[0] < 0.35


def test_failure_mid_transfer_moves_active_flows():
    topo = fabric(leaves=2, spines=2, hosts=1)
    failed = topo.links_named("leaf0<->spine0")
    sim = Simulation(topo, routing="spray")
    comm = Communicator(sim, topo.gpus)
    out = {}

    def program():
        out["end_s"] = yield comm.send(0, 1, 100 * MiB)

    sim.process(program())
    sim.schedule_fault(0.02, failed)
    results = sim.run()
    carried = results.links.filter(pl.col("link").is_in(failed))["carried_B"].max()
    # spraying over 2 spines: the first 20 ms at 1 GB/s put half the bytes on each; then all on spine 1
    assert carried == pytest.approx(0.02 * 1e9 / 2, rel=1e-9)
    assert out["end_s"] == pytest.approx(100 * MiB / 1e9, rel=1e-9)  # the NIC, not the spine, was the bottleneck
    assert results.transfers["size_B"].sum() == 100 * MiB
    assert results.faults["kind"].to_list() == ["fail"]


def test_fault_with_unknown_link_is_a_config_error():
    data = {"topology": {"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 1},
            "workload": [{"op": "all_reduce", "size": "1MiB"}], "faults": [{"link": "leaf0<->spine9"}]}
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(data, source="s.yaml")
    assert info.value.field == "faults.0.link"


def rail_fabric():
    """8 servers of 2 GPUs, rail-optimized: 4 pods (leaf pairs), 4 spines, every link 1 GB/s except NVLink."""
    host = HostSpec(gpus=2, nics=2, nic_bandwidth=1e9, nvlink_bandwidth=1e12, pcie_bandwidth=1e12)
    return leaf_spine(LeafSpineSpec(leaves=8, spines=4, hosts_per_leaf=2, host=host, spine_bandwidth=1e9,
                                    rail_optimized=True))


def concurrent_rings(topo, policy, seed, fail=None):
    """Two jobs of 4 servers, every ring hop across pods, all-reduce at once: each job's time over the closed form."""
    sim = Simulation(topo, routing=policy, seed=seed)
    if fail:
        sim.schedule_fault(0.0, topo.links_named(fail))
    host = topo.attrs["host"][topo.gpus]
    jobs = [[0, 2, 4, 6], [1, 3, 5, 7]]  # server h sits in pod h // 2
    comms = [Communicator(sim, np.concatenate([topo.gpus[host == h] for h in servers]), name=f"job{j}", job=f"job{j}")
             for j, servers in enumerate(jobs)]
    events = [c.all_reduce(16 * MiB, algo="rings") for c in comms]
    sim.run(events)
    ideal = 2 * 7 * 16 * MiB / (8 * 2 * 1e9)  # rings: 2(n-1) S / (n c B), n = 8 ranks, c = 2 rails
    return [e.value / ideal for e in events]


@pytest.mark.parametrize("seed", range(3))
def test_c4p_keeps_concurrent_jobs_rings_at_line_rate_where_ecmp_collides(seed):
    # each leaf sends and receives 2 cross-pod flows over 4 spines: a free spine always exists for the next
    # connection (1 used up + 1 used down < 4), so the planner puts every flow alone on its links, also after a
    # spine cable fails (1 + 1 < 3); ECMP's hash doubles some link (2.0-2.35 x the closed form on these seeds)
    topo = rail_fabric()
    assert concurrent_rings(topo, "c4p", seed) == pytest.approx([1.0, 1.0], rel=1e-9)
    assert concurrent_rings(topo, "c4p", seed, fail="leaf0<->spine0") == pytest.approx([1.0, 1.0], rel=1e-9)
    assert concurrent_rings(topo, "spray", seed) == pytest.approx([1.0, 1.0], rel=1e-9)
    assert max(concurrent_rings(topo, "ecmp", seed)) >= 1.5

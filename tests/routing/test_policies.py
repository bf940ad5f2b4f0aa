"""ECMP, spraying and single-path routing."""

import polars as pl
import pytest

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.routing import Router, flow_hash
from netsim.sim import Simulation
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine


def fabric(leaves=4, spines=4, hosts=4):
    spec = LeafSpineSpec(leaves=leaves, spines=spines, hosts_per_leaf=hosts,
                         host=HostSpec(nic_bandwidth=1e9, pcie_bandwidth=1e12), spine_bandwidth=1e9)
    return leaf_spine(spec)


def test_weights_sum_to_one_and_paths_are_equal_cost():
    topo = fabric()
    a, b = int(topo.gpus[0]), int(topo.gpus[15])
    for policy in ("ecmp", "spray", "single"):
        paths = Router(topo, policy).paths(a, b, (7,))
        assert sum(w for _, w in paths) == pytest.approx(1.0)
        assert {len(p) for p, _ in paths} == {6}
    assert len(Router(topo, "spray").paths(a, b)) == 4


def test_ecmp_is_deterministic_in_key_and_seed_and_the_key_steers():
    topo = fabric()
    a, b = int(topo.gpus[0]), int(topo.gpus[15])
    r1, r2 = Router(topo, "ecmp", seed=3), Router(topo, "ecmp", seed=3)
    assert all(r1.paths(a, b, (k,)) == r2.paths(a, b, (k,)) for k in range(20))
    chosen = {r1.paths(a, b, (port,))[0][0] for port in range(64)}
    assert len(chosen) == 4  # varying the source port reaches every spine
    assert flow_hash(1, "x", (2,)) == flow_hash(1, "x", (2,)) != flow_hash(2, "x", (2,))


def test_unknown_policy():
    with pytest.raises(ConfigError, match="unknown routing policy 'magic'"):
        Router(fabric(), "magic")


def max_uplink_bytes(results: pl.DataFrame) -> float:
    return results.filter(pl.col("tier") == "leaf-spine")["carried_B"].max()


@pytest.mark.parametrize("seed", range(5))
def test_ecmp_max_link_load_above_spraying_which_meets_the_lower_bound(seed):
    # all-to-all on 16 GPUs, 4 per leaf: every leaf sends D = 4 x 12 flows of f = S/16 to other leaves
    topo = fabric()
    size = 16 * 2**20
    loads = {}
    for policy in ("ecmp", "spray"):
        sim = Simulation(topo, routing=policy, seed=seed)
        comm = Communicator(sim, topo.gpus)
        loads[policy] = max_uplink_bytes(sim.run(comm.all_to_all(size)).links)
    f, d, s = size / 16, 4 * 12, 4
    assert loads["spray"] == pytest.approx(d * f / s, rel=1e-9)  # D flows of f bytes over s spines
    assert loads["ecmp"] > loads["spray"]
    assert loads["ecmp"] == pytest.approx(round(loads["ecmp"] / f) * f, rel=1e-9)  # whole flows on one path


@pytest.mark.parametrize("name", ["leafspine128_2to1", "rail64", "fattree1024", "internet4", "pcie8_2socket"])
@pytest.mark.parametrize("key", [(), ("job", "c0", 3)])
@pytest.mark.parametrize("rows", [True, False])
def test_ecmp_batch_paths_are_the_per_transfer_paths_bit_for_bit(name, key, rows, monkeypatch):
    """The compiled batch walk (`Ecmp.single_paths`) picks the same links as `Ecmp.path` hop by hop, and
    its latencies equal `Route.latency` exactly (sums of 8+ links included: fattree1024's paths); with the
    targets' rows built, and with distances asked through their gateways (a batch to more targets than
    rows are built for); a batch that repeats its pairs (a chunked collective's chunks, walked once per
    pair) gets each pair's paths again."""
    from netsim.topology import PathCache

    if not rows:
        monkeypatch.setattr(PathCache, "DENSE_CELLS", 0)
    from pathlib import Path

    import numpy as np

    from netsim.topology import load_topology

    topo = load_topology(Path(__file__).resolve().parents[2] / "topologies" / f"{name}.yaml")
    rng = np.random.default_rng(7)
    gpus = topo.gpus
    src = rng.choice(gpus, 300)
    dst = rng.choice(gpus, 300)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    router = Router(topo, "ecmp", seed=3)
    links, counts, latency = router.single_paths(src, dst, key)
    ends = np.cumsum(counts)
    for i, (s, d) in enumerate(zip(src.tolist(), dst.tolist())):
        route = router.route(s, d, key)
        assert links[ends[i] - counts[i]:ends[i]].tolist() == route.links.tolist()
        assert latency[i] == route.latency
    assert max(counts) >= (8 if name == "fattree1024" else 2)
    again = router.single_paths(np.tile(src, 3), np.tile(dst, 3), key)  # each pair thrice, as chunks come
    assert [x.tolist() for x in again] == [np.tile(x, 3).tolist() for x in (links, counts, latency)]
    router.set_down({int(links[0])})
    assert router.single_paths(src, dst, key) is None  # failed links: per-transfer routing


def test_ecmp_routes_batches_past_the_row_budgets_in_parts(monkeypatch):
    """Budgets small enough that a batch's gateways (private NICs, no servers) outnumber the gateway rows and
    its targets the destination rows, on a ring long enough for int16 rows: the batch walk still gives the
    per-transfer paths (it once recursed without end, and once refused the switch to int16 rows)."""
    import numpy as np

    from netsim.topology import PathCache
    from netsim.topology.custom import graph_topology

    nodes = {f"s{j}": "switch" for j in range(2)}
    links = []
    for i in range(40):
        nodes[f"g{i}"] = "gpu"
        for j in range(2):
            nodes[f"n{i}_{j}"] = "nic"
            links += [(f"g{i}", f"n{i}_{j}", 1e9, 1e-6), (f"n{i}_{j}", f"s{j}", 1e9, 1e-6)]
    nics = graph_topology(nodes, links, name="private-nics")
    ring = graph_topology({f"g{i}": {"role": "gpu", "relay": True} for i in range(300)},
                          [(f"g{i}", f"g{(i + 1) % 300}", 1e9, 1e-6) for i in range(300)], name="long-ring")
    for topo in (nics, ring):
        rows = 20 if topo is nics else 50  # fewer than the batch's targets (and, for the NICs, its gateways)
        monkeypatch.setattr(PathCache, "GATEWAY_BUDGET", 2 * topo.num_nodes * 16)
        monkeypatch.setattr(PathCache, "ROW_BUDGET", 2 * topo.num_nodes * rows)
        router = Router(topo, "ecmp", seed=1)
        src, dst = topo.gpus, np.roll(topo.gpus, -7)
        links_, counts, _ = router.single_paths(src, dst, ("k",))
        ends = np.cumsum(counts)
        for i, (s, d) in enumerate(zip(src.tolist(), dst.tolist())):
            assert links_[ends[i] - counts[i]:ends[i]].tolist() == router.route(s, d, ("k",)).links.tolist()

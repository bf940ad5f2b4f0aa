"""Path caches: routes within a memory budget."""

import numpy as np


def test_routing_memory_stays_within_the_cache_budgets(monkeypatch):
    """Rows and next hops are kept within their budgets (here a handful of destinations): a batch over
    more destinations than the rows kept is walked in parts, with the very paths of a roomy cache, and
    per-path routing drops the oldest destinations' next hops and recomputes them when asked again."""
    import numpy as np

    from netsim.routing import Router
    from netsim.topology import PathCache
    from netsim.topology.builders import FatTreeSpec, fat_tree

    topo = fat_tree(FatTreeSpec(k=6))
    gpus = np.asarray(topo.gpus)
    rng = np.random.default_rng(3)
    src = rng.choice(gpus, 200)
    dst = np.array([rng.choice(gpus[gpus != s]) for s in src])
    roomy = Router(topo, "ecmp", seed=5).single_paths(src, dst, ("k",))
    monkeypatch.setattr(PathCache, "ROW_BUDGET", topo.num_nodes * 3)  # 16 rows (the least kept)
    monkeypatch.setattr(PathCache, "HOPS_BUDGET", 1)  # one destination's next hops at a time
    tight_router = Router(topo, "ecmp", seed=5)
    assert len(np.unique(dst)) > tight_router.cache.max_rows == 16
    tight = tight_router.single_paths(src, dst, ("k",))
    for a, b in zip(roomy, tight):
        np.testing.assert_array_equal(a, b)
    cache = tight_router.cache
    first = cache.paths(int(src[0]), int(dst[0]))
    for s, d in zip(src[1:20].tolist(), dst[1:20].tolist()):
        cache.paths(s, d)
    assert len(cache._hops) == 1 and len(cache._dags) <= 1
    assert cache.paths(int(src[0]), int(dst[0])) == first


def test_paths_longer_than_int8_rows_switch_to_int16_and_past_the_limit_are_refused(monkeypatch):
    """Distance rows start as int8; a fabric with a shortest path past 127 hops (a chain here, a large ring
    in practice) gets int16 rows and routes as before; past MAX_HOPS it is a one-line error, not a
    distance that wrapped around."""
    import pytest

    from netsim.errors import TopologyError
    from netsim.topology import PathCache
    from netsim.topology import paths as paths_module
    from netsim.topology.custom import graph_topology

    def chain(switches: int):
        nodes = {"g0": "gpu", "g1": "gpu", **{f"s{i}": "switch" for i in range(switches)}}
        names = ["g0", *(f"s{i}" for i in range(switches)), "g1"]
        return graph_topology(nodes, [(a, z, 1e9, 1e-6) for a, z in zip(names, names[1:])], name="chain")

    short, long = chain(100), chain(200)
    cache = PathCache(short)
    assert len(cache.paths(int(short.gpus[0]), int(short.gpus[1]))[0]) == 101 and cache.distance_rows(short.gpus[1:])[0].dtype == np.int8
    cache = PathCache(long)
    assert len(cache.paths(int(long.gpus[0]), int(long.gpus[1]))[0]) == 201 and cache.distance_rows(long.gpus[1:])[0].dtype == np.int16
    assert cache.distances(int(long.gpus[1]))[int(long.gpus[0])] == 201
    monkeypatch.setattr(paths_module, "MAX_HOPS", 150)
    with pytest.raises(TopologyError, match="20[01] hops"):
        PathCache(long).paths(int(long.gpus[0]), int(long.gpus[1]))


def test_distances_through_gateways_are_the_searched_distances():
    """Gateway distances (a server's way in plus rows for its switches) against a search over the whole
    fabric, from every node to GPUs and switches, on every shipped topology and direct-connect rings and meshes (GPUs relay)."""
    from pathlib import Path

    from netsim.topology import PathCache, distances_to, load_topology
    from netsim.topology.config import topology_from_dict

    shipped = sorted((Path(__file__).parents[2] / "netsim" / "data" / "topologies").glob("*.yaml"))
    topos = [load_topology(p) for p in shipped]
    topos += [topology_from_dict({"kind": "ring", "gpus": 12}), topology_from_dict({"kind": "full_mesh", "gpus": 6})]
    rng = np.random.default_rng(0)
    for topo in topos:
        cache = PathCache(topo)
        switches = np.flatnonzero(np.array(topo.node_kind) != "gpu")
        targets = np.unique(np.concatenate([rng.choice(topo.gpus, size=min(24, len(topo.gpus)), replace=False),
                                            rng.choice(switches, size=min(4, len(switches)), replace=False)]))
        matrix, rows = cache.distance_rows(targets)
        for i, d in enumerate(targets.tolist()):
            truth = distances_to(topo, d)
            assert (matrix[rows[i]] == truth).all(), (topo.name, d)
            assert (PathCache(topo).distances(d) == truth).all(), (topo.name, d)

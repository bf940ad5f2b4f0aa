"""Path caches: routes within a memory budget."""


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


def test_a_path_longer_than_the_rows_hold_is_refused():
    """Distance rows are int8: a fabric whose shortest paths exceed MAX_HOPS is a one-line error, not a
    distance that wrapped around."""
    import pytest

    from netsim.errors import TopologyError
    from netsim.topology import PathCache
    from netsim.topology.custom import graph_topology
    from netsim.topology.paths import MAX_HOPS

    def chain(switches: int):
        nodes = {"g0": "gpu", "g1": "gpu", **{f"s{i}": "switch" for i in range(switches)}}
        names = ["g0", *(f"s{i}" for i in range(switches)), "g1"]
        return graph_topology(nodes, [(a, z, 1e9, 1e-6) for a, z in zip(names, names[1:])], name="chain")

    ok = chain(MAX_HOPS - 1)  # MAX_HOPS links from end to end
    assert len(PathCache(ok).paths(int(ok.gpus[0]), int(ok.gpus[1]))[0]) == MAX_HOPS
    with pytest.raises(TopologyError, match=f"{MAX_HOPS + 1} hops"):
        long = chain(MAX_HOPS)
        PathCache(long).paths(int(long.gpus[0]), int(long.gpus[1]))

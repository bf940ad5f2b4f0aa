"""Any fabric, three ways: `kind: graph`, a networkx graph and an ASTRA-sim network configuration build the
same links (endpoints, bandwidth, latency) and the same equal-cost paths."""

import networkx as nx
import numpy as np
import pytest

from netsim.cli import main
from netsim.errors import ConfigError
from netsim.topology import Topology, topology_from_dict
from netsim.topology.paths import PathCache


def links(topo: Topology) -> list[tuple]:
    names = topo.node_names
    return sorted((names[int(a)], names[int(b)], float(c), float(lat)) for a, b, c, lat in
                  zip(topo.link_src, topo.link_dst, topo.capacity, topo.latency))


def paths(topo: Topology) -> list[tuple]:
    cache = PathCache(topo)
    g = topo.gpus
    return [(topo.node_names[int(a)], topo.node_names[int(b)], len(cache.paths(int(a), int(b))))
            for a in g for b in g if a != b]


def test_the_same_fabric_built_three_ways():
    # ASTRA-sim: 4 NPUs on a ring (150 GB/s, 500 ns), pairs of rings joined by switches (25 GB/s, 1 us)
    astra = topology_from_dict({"topology": ["Ring", "Switch"], "npus_count": [4, 2], "bandwidth": [150, 25],
                                "latency": [500, 1000]}, source="net.yml")
    nodes = {f"gpu{i}": "gpu" for i in range(8)} | {f"sw1.{g}": "switch" for g in range(4)}
    cables = [{"a": f"gpu{4 * r + k}", "b": f"gpu{4 * r + (k + 1) % 4}", "bandwidth": "150GB/s", "latency": "500ns"}
              for r in range(2) for k in range(4)]
    cables += [{"a": f"gpu{j + 4 * s}", "b": f"sw1.{j}", "bandwidth": "25GB/s", "latency": "1000ns"}
               for j in range(4) for s in range(2)]
    # (GPUs relay on the ring: the graph kind says so per node)
    relaying = {k: {"role": "gpu", "relay": True} if v == "gpu" else v for k, v in nodes.items()}
    graph = topology_from_dict({"kind": "graph", "nodes": relaying, "cables": cables}, source="g.yaml")
    networkx = Topology.from_networkx(astra.to_networkx())
    assert links(astra) == links(graph) == links(networkx)
    assert paths(astra) == paths(graph)
    assert len(links(astra)) == 2 * (8 + 8)
    assert paths(astra) == paths(networkx)
    assert np.array_equal(networkx.relay, astra.relay)


def test_an_undirected_networkx_graph_is_cables():
    g = nx.Graph(name="star")
    g.add_nodes_from([(f"g{i}", {"kind": "gpu", "host": i}) for i in range(3)] + [("s", {"kind": "switch"})])
    g.add_edges_from((f"g{i}", "s", {"capacity": 1.25e10, "latency": 1e-6, "tier": "host"}) for i in range(3))
    topo = Topology.from_networkx(g)
    assert topo.gpus.size == 3 and topo.num_links == 6 and set(topo.link_tier) == {"host"}
    assert links(Topology.from_networkx(topo.to_networkx())) == links(topo)


@pytest.mark.parametrize("doc, words", [
    ({"kind": "graph", "nodes": {"gpu0": "gpu", "gpu1": "gpu", "s": "switch"},
      "cables": [{"a": "gpu0", "b": "s", "bandwidth": "1Gbps"}]}, "GPU 'gpu1' has no cable"),
    ({"kind": "graph", "nodes": {"gpu0": "gpu", "s": "blender"}, "cables": [{"a": "gpu0", "b": "s", "bandwidth": 1}]},
     "nodes.s"),
    ({"kind": "graph", "nodes": {"gpu0": "gpu"}, "cables": [{"a": "gpu0", "b": "x", "bandwidth": 1}]}, "unknown node 'x'"),
    ({"topology": ["Ring", "Torus"], "npus_count": [2, 2], "bandwidth": [1, 1], "latency": [1, 1]}, "unknown shape"),
    ({"topology": ["Ring"], "npus_count": [2, 2], "bandwidth": [1], "latency": [1]}, "one entry per dimension"),
])
def test_custom_fabric_mistakes_are_one_line(doc, words, tmp_path, capsys):
    with pytest.raises(ConfigError, match=words):
        topology_from_dict(doc, source="f.yaml")
    import yaml

    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["topo", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err

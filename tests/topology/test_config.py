from pathlib import Path

import pytest

from netsim.errors import ConfigError
from netsim.topology import load_topology, topology_from_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, gpus", [("nvlink8", 8), ("rail64", 64), ("leafspine128_2to1", 128),
                                        ("fattree1024", 1024), ("internet4", 128)])
def test_shipped_topologies_load(name, gpus):
    t = load_topology(ROOT / "topologies" / f"{name}.yaml")
    assert len(t.gpus) == gpus


def test_oversubscribed_file_has_half_the_uplink():
    t = load_topology(ROOT / "topologies" / "leafspine128_2to1.yaml")
    down = sum(t.capacity[l] for l in range(t.num_links) if t.link_tier[l] == "host" and t.node_kind[t.link_dst[l]] == "leaf"
               and t.attrs["leaf"][t.link_dst[l]] == 0)
    up = sum(t.capacity[l] for l in range(t.num_links) if t.link_tier[l] == "leaf-spine" and t.link_src[l] == t.node("leaf0"))
    assert down / up == pytest.approx(2.0)


@pytest.mark.parametrize("data, field", [
    ({"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2, "colour": "red"}, "colour"),
    ({"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2, "host_bandwidth": "-5Gbps"}, "host_bandwidth"),
    ({"kind": "leaf_spine", "leaves": 0, "spines": 2, "hosts_per_leaf": 2}, "leaves"),
    ({"kind": "single_switch"}, "gpus"),
    ({"kind": "torus", "gpus": 4}, "kind: unknown kind"),
    ({"kind": "single_switch", "gpus": 4, "latency": "3 parsecs"}, "latency"),
])
def test_bad_fields_are_named(data, field):
    with pytest.raises(ConfigError) as info:
        topology_from_dict(data, source="t.yaml")
    message = str(info.value)
    assert message.startswith("t.yaml")
    assert field in message
    assert "\n" not in message


def test_every_topology_kind_has_one_line_of_help_and_is_the_one_list_the_schema_knows():
    from netsim.topology import topology_kinds

    kinds = topology_kinds()
    assert list(kinds) == ["single_switch", "ring", "full_mesh", "leaf_spine", "fat_tree", "pcie", "internet", "graph"]
    assert all(text and "\n" not in text for text in kinds.values())
    with pytest.raises(ConfigError) as info:
        topology_from_dict({"kind": "torus", "gpus": 4}, source="t.yaml")
    assert all(repr(kind) in str(info.value) for kind in kinds)
    for kind in ("single_switch", "ring", "full_mesh"):
        assert len(topology_from_dict({"kind": kind, "gpus": 4}).gpus) == 4


def test_a_rail_optimized_fabric_counts_its_gpus_as_built():
    """The size limit counts a rail-optimized leaf-spine's GPUs as the builder makes them (a server's NICs take one
    leaf of each rail): 131,072 GPUs are accepted, one server more is refused before anything is built."""
    from netsim.errors import ConfigError
    from netsim.topology.config import MAX_GPUS, _gpus, _Root

    doc = {"kind": "leaf_spine", "leaves": 8 * 256, "spines": 64, "hosts_per_leaf": 64, "gpus_per_host": 8,
           "nics_per_host": 8, "rail_optimized": True}
    assert _gpus(_Root.model_validate({"topology": doc}).topology) == 131_072 == MAX_GPUS
    with pytest.raises(ConfigError, match="more than the 131,072"):
        topology_from_dict({**doc, "hosts_per_leaf": 65})
    small = topology_from_dict({**doc, "leaves": 8, "hosts_per_leaf": 8})
    assert len(small.gpus) == _gpus(_Root.model_validate({"topology": {**doc, "leaves": 8, "hosts_per_leaf": 8}}).topology)

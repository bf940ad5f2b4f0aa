"""YAML reading and pydantic errors: one line naming the file and the user's own field path."""

import pytest

from netsim.config import MAX_DEPTH, parse_yaml
from netsim.errors import ConfigError
from netsim.scenario import scenario_from_dict
from netsim.scenario.budget import scenario_transfers

GOOD = {"topology": {"kind": "single_switch", "gpus": 4}, "workload": [{"op": "all_reduce", "size": "4MiB"}]}


def test_duplicate_keys_are_refused_with_both_lines():
    with pytest.raises(ConfigError, match=r"s.yaml: line 3, column 1: key 'a' given twice \(first on line 1\)"):
        parse_yaml("a: 1\nb: 2\na: 3\n", "s.yaml")
    with pytest.raises(ConfigError, match="given twice"):
        parse_yaml("x: {a: 1, a: 2}", "s.yaml")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_refused(depth):
    with pytest.raises(ConfigError, match="nested deeper than"):
        parse_yaml("[" * depth + "]" * depth, "s.yaml")


def test_python_tags_are_refused():
    with pytest.raises(ConfigError, match="malformed YAML"):
        parse_yaml("x: !!python/object/apply:os.system ['true']", "s.yaml")


@pytest.mark.parametrize("change, expected", [
    ({"topology": {"kind": "single_switch", "gpus": 4, "bandwidth": "-1Gbps"}},
     "s.yaml: topology.bandwidth: bandwidth must be positive"),
    ({"topology": 5}, "s.yaml: topology: Input should be a valid string, or a valid dictionary (got 5)"),
    ({"topology": {"kind": "torus"}}, "s.yaml: topology.kind: unknown kind 'torus'"),
    ({"workload": [{"op": "all_reduce", "ranks": 0}]}, "s.yaml: workload.0.ranks: "),
    ({"workload": [{"op": "all_reduce", "ranks": "some"}]}, "s.yaml: workload.0.ranks: "),
    ({"workload": [], "jobs": [{"name": "a", "gpus": 0, "workload": [{"op": "barrier"}]}]}, "s.yaml: jobs.0.gpus: "),
    ({"routing": "split:0"}, "s.yaml: routing: "),
    ({"workload": [{"op": "broadcast", "size": "1MiB", "root": 99}]}, "s.yaml: workload.0.root: root 99 is outside"),
    ({"workload": [{"op": "all_reduce", "size": 10, "chunks": 11}]}, "s.yaml: workload.0.chunks: "),
    ({"workload": [{"op": "reduce_scatter", "algo": "halving_doubling", "size": "1MiB", "ranks": 3}]},
     "s.yaml: workload.0.algo: "),
    ({"network": {"tcp_window": 0}}, "s.yaml: network.tcp_window: "),
    ({"name": "a b"}, "s.yaml: name: expected a name"),
    ({"seed": 2**70}, "s.yaml: seed: "),
    ({"workload": [{"op": "all_reduce", "size": 1e19}]}, "s.yaml: workload.0.size: "),
    ({"workload": [{"op": "all_reduce", "size": "1e30"}]}, "s.yaml: workload.0.size: "),
    ({"topology": {"kind": "leaf_spine", "leaves": 5000, "spines": 2, "hosts_per_leaf": 5000}},
     "s.yaml: topology: describes 25,000,000 GPUs"),
])
def test_errors_name_the_users_field(change, expected):
    with pytest.raises(ConfigError) as info:
        scenario_transfers(scenario_from_dict({**GOOD, **change}, source="s.yaml"))
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    for internal in ("literal[", "constrained-int", ".str", "topology.topology", "function-"):
        assert internal not in message


def test_merge_keys_work_and_alias_bombs_are_refused():
    assert parse_yaml("base: &b {kind: ring, gpus: 4}\nx: {<<: *b, gpus: 2}\n", "s.yaml")["x"] == \
        {"kind": "ring", "gpus": 2}
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6))
    with pytest.raises(ConfigError, match="expands to more than"):
        parse_yaml(bomb, "s.yaml")


def test_unicode_names_and_one_rank_groups_are_fine():
    s = scenario_from_dict({**GOOD, "name": "réseau", "workload": [{"op": "all_reduce", "size": "1MiB", "ranks": 1}]},
                           source="s.yaml")
    assert s.name == "réseau"

"""Parallel groups: Megatron-style rank layout, tp inside a server, groups sharing the fabric."""

import numpy as np
import pytest

from netsim.collectives import ParallelSpec, parallel_groups
from netsim.errors import ConfigError
from netsim.scenario import run_scenario, scenario_from_dict
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine


def fabric():
    spec = LeafSpineSpec(leaves=2, spines=2, hosts_per_leaf=2, host=HostSpec(gpus=4, nics=4))
    return leaf_spine(spec)


def test_groups_partition_the_world_and_tp_stays_in_a_server():
    topo = fabric()
    spec = ParallelSpec(tp=4, dp=2, pp=2)
    groups = parallel_groups(topo.gpus, spec)
    for kind, size, count in (("tp", 4, 4), ("dp", 2, 8), ("pp", 2, 8), ("cp", 1, 16), ("ep", 1, 16)):
        assert len(groups[kind]) == count and all(len(g) == size for g in groups[kind])
        assert sorted(np.concatenate(groups[kind]).tolist()) == sorted(topo.gpus.tolist())
    hosts = topo.attrs["host"]
    assert all(len(set(hosts[g].tolist())) == 1 for g in groups["tp"])
    # rank g = t + tp*(d + dp*p): the first dp group holds ranks 0 and 4
    assert groups["dp"][0].tolist() == [int(topo.gpus[0]), int(topo.gpus[4])]
    assert groups["pp"][0].tolist() == [int(topo.gpus[0]), int(topo.gpus[8])]


def test_expert_groups_split_data_parallel_groups():
    groups = parallel_groups(fabric().gpus, ParallelSpec(tp=2, dp=8, ep=4))
    assert len(groups["ep"]) == 4 and groups["ep"][0].tolist() == groups["dp"][0][:4].tolist()


@pytest.mark.parametrize("kwargs, field", [(dict(tp=4, dp=8), "parallel"), (dict(dp=4, ep=3), "parallel.ep"),
                                           (dict(tp=0), "parallel.tp")])
def test_bad_specs(kwargs, field):
    with pytest.raises(ConfigError) as info:
        parallel_groups(fabric().gpus, ParallelSpec(**kwargs))
    assert info.value.field == field


def test_concurrent_groups_share_the_fabric():
    # dp groups cross the spine together; tp groups stay on NVLink: a dp all-reduce across all
    # groups at once is slower than one dp group alone, a tp all-reduce is not
    base = {"topology": {"kind": "leaf_spine", "leaves": 2, "spines": 1, "hosts_per_leaf": 2, "gpus_per_host": 4,
                         "nics_per_host": 1, "host_bandwidth": "100Gbps", "spine_bandwidth": "100Gbps"},
            "parallel": {"tp": 4, "dp": 4}}
    together = dict(base, workload=[{"op": "all_reduce", "size": "16MiB", "group": "dp", "algo": "ring"}])
    alone = dict(base, workload=[{"op": "all_reduce", "size": "16MiB", "ranks": [0, 4, 8, 12], "algo": "ring"}])
    t_together = run_scenario(scenario_from_dict(together, source="s.yaml")).collectives
    t_alone = run_scenario(scenario_from_dict(alone, source="s.yaml")).collectives
    assert len(t_together) == 4
    assert (t_together["end_s"] - t_together["start_s"]).min() > 1.5 * (t_alone["end_s"] - t_alone["start_s"])[0]


def test_group_without_parallel_section_is_an_error():
    with pytest.raises(ConfigError, match="parallel") as info:
        scenario_from_dict({"topology": {"kind": "single_switch", "gpus": 4},
                            "workload": [{"op": "all_reduce", "size": "1MiB", "group": "dp"}]}, source="s.yaml")
    assert info.value.field == "workload.0.group"

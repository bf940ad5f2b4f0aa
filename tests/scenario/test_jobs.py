"""Multi-job scenarios: placement, interference, and compare-routing."""

import json

import numpy as np
import pytest
import yaml

from netsim.cli import main
from netsim.errors import ConfigError
from netsim.scenario import run_scenario, scenario_from_dict
from netsim.scenario.runner import place_jobs
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

TOPOLOGY = {"kind": "leaf_spine", "leaves": 4, "spines": 2, "hosts_per_leaf": 4, "host_bandwidth": "100Gbps",
            "spine_bandwidth": "100Gbps", "host_latency": "1us", "spine_latency": "1us"}


def jobs_scenario(**overrides):
    data = {
        "name": "jobs", "topology": TOPOLOGY, "seed": 3,
        "jobs": [
            {"name": "a", "gpus": 8, "placement": "fragmented",
             "workload": [{"op": "all_to_all", "size": "8MiB", "repeat": 2}]},
            {"name": "b", "gpus": 8, "placement": "random", "start": "10us",
             "workload": [{"op": "all_to_all", "size": "8MiB", "repeat": 2}]},
        ],
    }
    data.update(overrides)
    return data


def test_placements():
    topo = leaf_spine(LeafSpineSpec(leaves=4, spines=2, hosts_per_leaf=4, host=HostSpec()))
    scenario = scenario_from_dict(jobs_scenario(), source="s.yaml")
    a, b = place_jobs(topo, scenario.config.job_list(), 3)
    leaf = topo.attrs["leaf"]
    assert sorted(leaf[a].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]  # fragmented: dealt out over every leaf
    assert not set(a.tolist()) & set(b.tolist())
    assert (np.diff(b) > 0).all()  # random GPUs, kept in topology order
    again = place_jobs(topo, scenario.config.job_list(), 3)[1]
    assert again.tolist() == b.tolist()  # seeded


def test_jobs_interfere_and_start_late():
    results = run_scenario(scenario_from_dict(jobs_scenario(), source="s.yaml"))
    coll = results.collectives.sort("start_s")
    assert set(coll["job"].to_list()) == {"a", "b"} and len(coll) == 4
    assert coll.filter(coll["job"] == "b")["start_s"].min() == pytest.approx(10e-6)
    alone = run_scenario(scenario_from_dict(jobs_scenario(jobs=jobs_scenario()["jobs"][:1]), source="s.yaml"))
    t_alone = (alone.collectives["end_s"] - alone.collectives["start_s"]).mean()
    a = coll.filter(coll["job"] == "a")
    assert (a["end_s"] - a["start_s"]).mean() > t_alone  # b's traffic slows a down


@pytest.mark.parametrize("change, field", [
    ({"workload": [{"op": "all_reduce", "size": "1MiB"}]}, "workload"),
    ({"jobs": [{"name": "a", "gpus": 99, "workload": [{"op": "all_reduce", "size": "1MiB"}]}]}, "jobs.0.gpus"),
    ({"jobs": [{"name": "a", "gpus": 4, "workload": [{"op": "all_reduce", "size": "1MiB", "ranks": [0, 9]}]}]},
     "jobs.0.workload.0.ranks"),
    ({"jobs": [{"name": "a", "workload": [{"op": "all_reduce", "size": "1MiB"}]},
               {"name": "a", "workload": [{"op": "all_reduce", "size": "1MiB"}]}]}, "jobs"),
])
def test_bad_job_definitions(change, field):
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(jobs_scenario(**change), source="s.yaml")
    assert info.value.field == field


def test_compare_routing_cli(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(jobs_scenario()))
    out = tmp_path / "cmp"
    assert main(["compare-routing", str(path), "--policies", "ecmp,spray,planned", "-o", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    by = {(r["variant"], r["job"]): r for r in rows}
    assert len(by) == 6
    for job in ("a", "b"):
        assert by[("spray", job)]["worst_step_load_ratio"] == pytest.approx(1.0)
        assert by[("planned", job)]["worst_step_load_ratio"] >= 1.0
        assert by[("ecmp", job)]["worst_step_load_ratio"] >= 1.0
        assert by[("ecmp", job)]["time_mean_s"] >= by[("spray", job)]["time_mean_s"] * (1 - 1e-9)
    assert {"compare.parquet", "steps.parquet", "links.parquet", "report.html"} <= {p.name for p in out.iterdir()}
    assert main(["compare-routing", str(path), "--policies", "ecmp,bogus", "-o", str(tmp_path / "x")]) == 2
    assert "bogus" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_moe_layer_in_a_scenario_file(tmp_path):
    """A MoE layer: token dispatch and combine, an all-to-all over each expert-parallel group (ep ranks of a
    data-parallel group), then the experts' gradient all-reduce over each data-parallel group."""
    from netsim.scenario import scenario_from_dict, simulate

    scenario = scenario_from_dict({
        "topology": "rail64", "parallel": {"tp": 8, "dp": 8, "ep": 4},
        "workload": [{"op": "all_to_all", "size": "16MiB", "group": "ep", "label": "dispatch"},
                     {"op": "all_to_all", "size": "16MiB", "group": "ep", "label": "combine"},
                     {"op": "all_reduce", "size": "64MiB", "group": "dp", "label": "expert grads"}]}, source="moe")
    results = simulate(scenario, "ecmp")
    calls = results.collectives
    assert sorted(calls.filter(calls["label"] == "dispatch")["ranks"].unique().to_list()) == [4]
    assert len(calls.filter(calls["label"] == "dispatch")) == 64 // 4  # every ep group of 4 ranks
    assert len(calls.filter(calls["label"] == "expert grads")) == 8 and calls["end_s"].max() > 0

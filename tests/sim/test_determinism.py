"""The same scenario and seed write byte-identical result files."""

from pathlib import Path

from netsim.scenario import run_scenario, scenario_from_dict

SCENARIO = {
    "name": "det",
    "topology": {"kind": "leaf_spine", "leaves": 4, "spines": 4, "hosts_per_leaf": 2, "host_bandwidth": "100Gbps",
                 "spine_bandwidth": "100Gbps", "host_latency": "1us", "spine_latency": "1us"},
    "routing": ["ecmp", "spray"],
    "seed": 11,
    "workload": [{"op": "all_to_all", "size": "8MiB"}, {"op": "all_reduce", "size": "16MiB", "repeat": 2}],
}


def test_same_seed_same_bytes(tmp_path: Path):
    for name in ("a", "b"):
        run_scenario(scenario_from_dict(SCENARIO, source="det.yaml")).write(tmp_path / name)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "transfers.parquet" in files and "links.parquet" in files
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_another_seed_changes_ecmp_paths(tmp_path: Path):
    a = run_scenario(scenario_from_dict(SCENARIO, source="det.yaml"))
    b = run_scenario(scenario_from_dict(dict(SCENARIO, seed=12), source="det.yaml"))
    assert not a.links["carried_B"].equals(b.links["carried_B"])

"""`netsim run` keeps per-transfer rows only when it writes them (transfers.parquet)."""

import json

import yaml

from netsim.cli import main
from netsim.scenario import runner

SCENARIO = {"name": "rows", "routing": ["ecmp"], "seed": 5,
            "topology": {"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
                         "host_bandwidth": "100Gbps", "spine_bandwidth": "100Gbps"},
            "workload": [{"op": "all_to_all", "size": "2MiB"}, {"op": "all_reduce", "size": "4MiB"}]}


def test_a_run_without_parquet_keeps_no_transfer_rows_and_prints_the_same_summary(tmp_path, capsys, monkeypatch):
    modes = []
    simulate = runner.simulate
    monkeypatch.setattr(runner, "simulate", lambda *a, **kw: modes.append(kw["transfers"]) or simulate(*a, **kw))
    shown = {}
    for parquet in (True, False):
        path = tmp_path / f"{parquet}.yaml"
        path.write_text(yaml.safe_dump(dict(SCENARIO, outputs={"parquet": parquet, "report": False})))
        assert main(["run", str(path), "--json", "-o", str(tmp_path / f"out{parquet}")]) == 0
        shown[parquet] = json.loads(capsys.readouterr().out)["rows"]
    assert modes == ["keep", "drop"]
    assert shown[True] == shown[False] and len(shown[True]) == 2
    assert (tmp_path / "outTrue" / "transfers.parquet").exists()
    assert not (tmp_path / "outFalse" / "transfers.parquet").exists()

"""`netsim attention`, its scenario file, and the PCIe topologies it is meant for."""

import json
from pathlib import Path

import polars as pl
import pytest

from netsim.cli import main
from netsim.sim import Simulation
from netsim.topology import PcieSpec, load_topology, pcie_tree

ROOT = Path(__file__).resolve().parents[2]
PCIE4 = str(ROOT / "topologies" / "pcie4_a10.yaml")


def test_pcie_pairs_under_one_switch_are_faster_and_shared_uplinks_contend():
    topo = pcie_tree(PcieSpec(gpus_per_switch=2, switches_per_socket=2, gpu_bandwidth=25e9, uplink_bandwidth=25e9,
                              gpu_latency=0.0, uplink_latency=0.0))
    g = topo.gpus
    size = 25 * 10**6
    sim = Simulation(topo)
    alone = sim.network.transfer(int(g[0]), int(g[1]), size)  # one switch: 25 GB/s
    sim.run()
    assert alone.value.end == pytest.approx(size / 25e9, rel=1e-12)
    sim = Simulation(topo)
    a = sim.network.transfer(int(g[0]), int(g[2]), size)  # both cross plx0.0 -> rc0: 12.5 GB/s each
    b = sim.network.transfer(int(g[1]), int(g[3]), size)
    sim.run()
    assert a.value.end == pytest.approx(size / 12.5e9, rel=1e-12) and b.value.end == a.value.end
    two = load_topology(ROOT / "topologies" / "pcie8_2socket.yaml")
    assert len(two.gpus) == 8 and "rc0->rc1" in two.link_names


def test_attention_command_table_json_and_report(tmp_path, capsys):
    args = ["attention", "--topology", PCIE4, "--seq", "8192", "--heads", "16", "--kv-heads", "4", "--head-dim", "64",
            "--schemes", "ring,tokenring", "--json"]
    assert main(args) == 0
    out = {r["scheme"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert set(out) == {"ring", "tokenring"} and all(v["time_s"] > 0 and v["gpus"] == 4 for v in out.values())
    assert main(args[:-1] + ["--causal", "--backward", "-o", str(tmp_path / "a")]) == 0
    written = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"summary.parquet", "tasks.parquet", "links.parquet", "sweep.parquet", "report.html",
            "timeline.json"} <= written
    tasks = pl.read_parquet(tmp_path / "a" / "tasks.parquet")  # timeline.json: a slice per task, at its times
    events = json.loads((tmp_path / "a" / "timeline.json").read_text())["traceEvents"]
    slices = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e["ph"] == "X")
    expected = sorted(zip((tasks["start_s"] * 1e6).to_list(), (tasks["end_s"] * 1e6).to_list()))
    assert len(slices) == len(expected)
    assert [x for s in slices for x in s] == pytest.approx([x for s in expected for x in s], rel=1e-12, abs=1e-9)

    sweep = pl.read_parquet(tmp_path / "a" / "sweep.parquet")
    assert set(sweep["axis"]) == {"seq", "gpus"} and (sweep["time_s"] > 0).all()
    # each scheme as Chakra ET: replayed with sends that wait for their receives, the scheme's time (to 1 us)
    from netsim.topology import load_topology
    from netsim.traces import load_trace
    from netsim.traces.replay import replay

    summary = pl.read_parquet(tmp_path / "a" / "summary.parquet")
    for scheme in ("ring", "tokenring"):
        again = replay(load_trace(tmp_path / "a" / f"chakra_{scheme}").validate(), load_topology(PCIE4),
                       sends="rendezvous")
        assert again.time_s == pytest.approx(summary.filter(pl.col("scheme") == scheme)["time_s"][0], abs=4e-6)


def test_attention_scenario_file_and_overrides(tmp_path, capsys):
    scenario = tmp_path / "cp.yaml"
    scenario.write_text(f"name: cp\ntopology: {PCIE4}\nseq: 4096\nheads: 8\nhead_dim: 64\nschemes: [zigzag_ring]\n"
                        "causal: true\n")
    assert main(["attention", str(scenario), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["rows"][0]
    assert main(["attention", str(scenario), "--seq", "8192", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)["rows"][0]
    assert second["scheme"] == "zigzag_ring" and second["time_s"] > first["time_s"]


@pytest.mark.parametrize("extra, needle", [
    (["--schemes", "striped"], "--schemes"),
    (["--gpus", "8"], "gpus: 8 GPUs asked"),
    (["--seq", "1004", "--schemes", "zigzag_ring"], "seq:"),
    (["--heads", "8", "--kv-heads", "3"], "kv_heads"),
    (["--heads", "6", "--schemes", "ulysses"], "heads"),
    (["--efficiency", "2"], "--efficiency"),
    (["--dtype", "fp8"], "--dtype"),
])
def test_bad_attention_input_is_one_line_exit_2(extra, needle, capsys, tmp_path):
    assert main(["attention", "--topology", PCIE4, *extra, "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and not (tmp_path / "x").exists()


def test_attention_needs_a_topology(capsys):
    assert main(["attention"]) == 2
    assert "--topology" in capsys.readouterr().err
    bad = Path("/nonexistent/topo.yaml")
    assert main(["attention", "--topology", str(bad)]) == 2

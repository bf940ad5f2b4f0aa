"""The command line: a real run writes results and a report; bad input exits 2 with one line."""

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from netsim.cli import main

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "name": "small",
    "topology": {"kind": "single_switch", "gpus": 4, "bandwidth": "100Gbps", "latency": "1us"},
    "routing": "ecmp",
    "workload": [{"op": "all_reduce", "size": "4MiB", "repeat": 2}],
}


def write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_run_writes_parquet_and_report(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, GOOD)), "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"transfers.parquet", "collectives.parquet", "links.parquet", "summary.parquet", "report.html"} <= names
    coll = pl.read_parquet(out / "collectives.parquet")
    assert len(coll) == 2
    # 4 ranks, 4 MiB, 2 us per hop, 12.5 GB/s
    expected = 6 * 2e-6 + 6 / 4 * 4 * 2**20 / 12.5e9
    assert (coll["end_s"] - coll["start_s"]).to_list() == pytest.approx([expected] * 2, rel=1e-9)
    # timeline.json: Chrome trace events, a slice per collective call at its times, link load as counters
    events = json.loads((out / "timeline.json").read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert [e["ts"] for e in slices] == pytest.approx([s * 1e6 for s in coll["start_s"].to_list()], rel=1e-12)
    assert [e["dur"] for e in slices] == pytest.approx([expected * 1e6] * 2, rel=1e-9)
    assert any(e["ph"] == "C" for e in events)
    page = (out / "report.html").read_text()
    assert "Plotly" in page and "<script src=" not in page  # plotly.js inlined: works offline
    assert "busbw" in capsys.readouterr().out


def test_topo_show(capsys):
    assert main(["topo", "show", str(ROOT / "topologies" / "leafspine128_2to1.yaml")]) == 0
    out = capsys.readouterr().out
    assert "128 GPUs" in out and "bisection bandwidth" in out and "8 paths" in out


BAD = [
    ("topology: {kind: single_switch, gpus: 4\nworkload: [", "malformed YAML"),
    (dict(GOOD, colour="blue"), "colour: unknown key"),
    (dict(GOOD, topology={"kind": "single_switch", "gpus": 4, "bandwidth": "-1Gbps"}), "topology.bandwidth"),
    (dict(GOOD, workload=[{"op": "all_reduce", "size": "1MiB", "ranks": ["gpu0", "gpu9"]}]), "unknown host/GPU 'gpu9'"),
    (dict(GOOD, topology={"kind": "internet", "wan": {"bandwidth": "1Gbps", "full_mesh": False},
                          "datacenters": [{"name": "a", "fabric": {"kind": "single_switch", "gpus": 2}},
                                          {"name": "b", "fabric": {"kind": "single_switch", "gpus": 2}}]}),
     "disconnected"),
    (dict(GOOD, routing="magic"), "routing"),
    (dict(GOOD, workload=[{"op": "all_reduce", "size": "1 lightyear"}]), "workload.0.size"),
]


@pytest.mark.parametrize("data, needle", BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, data, needle):
    scenario = write(tmp_path, data)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert str(scenario) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [scenario.name]


def test_missing_file_and_bad_topology_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    topo = write(tmp_path, {"kind": "ring", "gpus": 1}, "t.yaml")
    assert main(["topo", "show", str(topo)]) == 2
    assert "t.yaml" in capsys.readouterr().err


def test_help_and_version_import_no_command(tmp_path):
    """`netsim --help` and `--version` read the command table only: no command module, numpy or polars."""
    import subprocess
    import sys

    code = ("import sys\nfrom netsim.cli import main\nassert main(['--help']) == 0 and main(['--version']) == 0\n"
            "heavy = sorted(m for m in sys.modules if m in ('numpy', 'polars', 'simpy', 'torch')"
            " or m.startswith('netsim.cli.') and m not in ('netsim.cli.commands',))\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "HEAVY []" in out and "compare-routing" in out and "netsim " in out


def test_progress_and_notices_go_to_stderr(tmp_path, capsys):
    """Without a terminal, progress lines and "results written" are on stderr; stdout is the result."""
    from netsim.cli import main

    assert main(["bench", "--topology", str(ROOT / "topologies" / "nvlink8.yaml"), "-b", "1M", "-e", "2M",
                 "-o", str(tmp_path / "b")]) == 0
    captured = capsys.readouterr()
    assert "[1/" not in captured.out and "results written" not in captured.out
    assert "[1/" in captured.err and "results written" in captured.err
    assert "# netsim all_reduce" in captured.out


def test_a_closed_pipe_ends_quietly():
    """`netsim ... --json | head`: the reader leaves early; netsim ends with 141 (as SIGPIPE) and no traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "netsim", "bench", "--topology",
                             str(ROOT / "topologies" / "nvlink8.yaml"), "--json", "-b", "8", "-e", "1G", "-f", "1.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "Error" not in err, err


@pytest.mark.parametrize("words, cword, expected", [
    (["netsim", "ru"], 1, ["run"]),
    (["netsim", "compare-routing", "--pol"], 2, ["--policies"]),
    (["netsim", "trace", "s"], 2, ["show"]),
    (["netsim", "bench", "--max-tr"], 2, ["--max-transfers"]),
])
def test_bash_completion_completes_commands_and_flags(tmp_path, capsys, words, cword, expected):
    """`netsim completion bash` is a script bash runs: it completes commands, subcommands and each command's
    own flags (from the parser itself)."""
    import shutil
    import subprocess

    if shutil.which("bash") is None:
        pytest.skip("no bash")
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "netsim.bash"
    script.write_text(capsys.readouterr().out)
    line = " ".join(f"'{w}'" for w in words)
    out = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({line}); COMP_CWORD={cword}; _netsim; "
                                        "printf '%s\\n' \"${COMPREPLY[@]}\""], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == expected
    assert main(["completion", "zsh"]) == 0 and "bashcompinit" in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["run"],
    ["topo", "show", str(ROOT / "topologies" / "nvlink8.yaml")],
    ["bench", "--topology", str(ROOT / "topologies" / "nvlink8.yaml"), "-b", "1M", "-e", "2M"],
    ["trace", "show", str(ROOT / "traces" / "pp2" / "chakra")],
    ["utilization", "--method", "diloco", "--layers", "2", "--inner-steps", "2", "--outer-steps", "1"],
])
def test_json_has_one_shape_on_every_command(tmp_path, capsys, monkeypatch, args):
    """`--json` prints one object: `meta` (the command, netsim's version, what ran) and `rows` (row objects
    with the same keys), and nothing else on stdout."""
    monkeypatch.chdir(tmp_path)
    extra = ["-o", "o"] if args[0] == "run" else []
    assert main(args + ["--json"] + extra) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"meta", "rows"} and shown["meta"]["command"] == " ".join(args[:2] if args[0] in
                                                                                  ("topo", "trace") else args[:1])
    assert shown["rows"] and len({tuple(sorted(r)) for r in shown["rows"]}) == 1


def test_shipped_topologies_by_name_outside_the_checkout(tmp_path, capsys, monkeypatch):
    """The topologies ship with the package: `topo list` shows them, and a bare name works wherever a
    topology file does (CLI flags and scenario files), from any folder; a wrong name lists the shipped ones."""
    monkeypatch.chdir(tmp_path)  # no topologies/ here
    assert main(["topo", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert {"rail64", "nvlink8", "fattree1024"} <= set(rows) and rows["rail64"]["gpus"] == 64
    assert "rail-optimized" in rows["rail64"]["description"]
    assert main(["topo", "show", "nvlink8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["gpus"] == 8
    Path("s.yaml").write_text("topology: nvlink8\nworkload:\n  - {op: all_reduce, size: 1MiB}\n")
    assert main(["run", "s.yaml", "-o", "o", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["topology"] == "nvlink8"
    assert main(["bench", "--topology", "nosuch", "-b", "1M", "-e", "1M"]) == 2
    err = capsys.readouterr().err
    assert "not the name of a shipped topology" in err and "rail64" in err


def test_shipped_examples_run_by_name_from_any_folder(tmp_path, capsys, monkeypatch):
    """The example inputs ship with the package: `netsim examples` lists each with the command that runs it,
    and the bare name works as the input file of that command, from any folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["examples", "--json"]) == 0
    rows = {r["name"]: r["command"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["jobs"] == "netsim compare-routing jobs" and rows["c4d"] == "netsim faults c4d"
    assert {"moe", "cp_a10", "bandwidth_sweep", "routing_sweep"} <= set(rows)
    assert main(["run", "moe", "-o", "m", "--json"]) == 0
    labels = {r["label"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert {"dispatch", "combine", "expert grads"} <= labels
    assert main(["attention", "cp_a10", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 4
    assert main(["sweep", "bandwidth_sweep", "-o", "s", "--cache", "c"]) == 0
    assert main(["run", "nosuch", "-o", "x"]) == 2 and "file not found" in capsys.readouterr().err

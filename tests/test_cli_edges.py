"""Numbers at the edges, runaway work and interrupts: one line and exit 2 (130 for Ctrl-C), nothing written."""

import sys
from pathlib import Path

import pytest

import netsim.cli.run as run_command
from netsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
NVLINK = str(ROOT / "topologies" / "nvlink8.yaml")
UTIL = ["utilization", "--method", "diloco", "--layers", "2", "--inner-steps", "2", "--outer-steps", "1"]


@pytest.mark.parametrize("args, needle", [
    (UTIL + ["--jitter", "nan"], "--jitter"),
    (UTIL + ["--jitter", "inf"], "--jitter"),
    (UTIL + ["--speeds", "inf,1"], "--speeds"),
    (UTIL + ["--speeds", "nan,1"], "--speeds"),
    (UTIL + ["--params", "1e30"], "--params"),
    (UTIL + ["--bandwidth", "-1Gbps"], "--bandwidth"),
    (UTIL + ["--step-time", "0"], "--step-time"),
    (UTIL + ["--workers", "1"], "--workers"),
    (["bench", "--topology", NVLINK, "--chunks", "100000000", "-b", "1M", "-e", "1M"], "--chunks"),
    (["bench", "--topology", NVLINK, "--chunks", "1000000", "-b", "8G", "-e", "8G"], "--max-transfers"),
    (["bench", "--topology", NVLINK, "-i", "1", "-e", "1G"], "-i"),
    (["bench", "--topology", NVLINK, "-i", "-1"], "-i"),
    (["bench", "--topology", NVLINK, "-f", "nan"], "--stepfactor"),
    (["bench", "--topology", NVLINK, "-f", "inf"], "--stepfactor"),
    (["bench", "--topology", NVLINK, "-f", "1.0000001", "-b", "8", "-e", "1G"], "-f"),
    (["bench", "--topology", NVLINK, "-e", "1e30"], "-e"),
    (["bench", "--topology", NVLINK, "-e", "9999999T"], "-e"),
    (["bench", "--topology", NVLINK, "--seed", "-1"], "--seed"),
    (["bench", "--topology", NVLINK, "--algo", ""], "--algo"),
    (["bench", "--topology", NVLINK, "--algo", ","], "--algo"),
    (["bench", "--topology", NVLINK, "--ranks", "1"], "--ranks"),
    (["bench", "--topology", NVLINK, "--network", "packet"], "--network"),
    (["bench", "--topology", NVLINK, "--routing", "split:1000000000"], "--routing"),
    (["bench", "--topology", NVLINK, "--algo", "ring,ring"], "--algo"),
    (UTIL + ["--step-time", "1e-308"], "--step-time"),
    (UTIL + ["--bandwidth", "1e-308"], "--bandwidth"),
    (UTIL + ["--workers", "4096"], "--workers"),
    (UTIL + ["--latency", "-1ms"], "time must be >= 0"),
    (["sweep-bandwidth", "--methods", ""], "--methods"),
    (["sweep-bandwidth", "--methods", "diloco,diloco"], "--methods"),
    (["sweep-bandwidth", "--methods", "diloco", "--targets", "-1"], "--targets"),
    (["sweep-bandwidth", "--methods", "diloco", "--targets", "2"], "--targets"),
    (["sweep-bandwidth", "--methods", "diloco", "--targets", "nan"], "--targets"),
    (["sweep-bandwidth", "--methods", "diloco", "--grid", "1:nan:3"], "--grid"),
    (["train", "--steps", "0"], "--steps"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    assert main(args + ["-o", "o"] if args[0] in ("bench", "sweep-bandwidth", "train") else args) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_huge_topology_is_refused_before_it_is_built(tmp_path, capsys):
    topo = tmp_path / "t.yaml"
    topo.write_text("kind: leaf_spine\nleaves: 10000\nspines: 64\nhosts_per_leaf: 640\ngpus_per_host: 8\n")
    assert main(["topo", "show", str(topo)]) == 2
    err = capsys.readouterr().err
    assert "51,200,000 GPUs" in err and "t.yaml" in err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("netsim ")


def test_help_lists_the_registered_names(capsys):
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fluid", "analytic", "ecmp", "spray", "halving_doubling", "all_to_all"):
        assert name in out


def test_fault_leaving_no_path_names_the_file_and_the_fault(tmp_path, capsys):
    s = tmp_path / "s.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 2}\nworkload: [{op: all_reduce, size: 1GiB}]\n"
                 "faults: [{at: 1ms, link: gpu0<->sw, kind: fail}]\n")
    assert main(["run", str(s), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # (after the progress line of the run it stopped)
    assert err[-1].startswith(f"netsim: error: {s}: faults.0: at 1ms, after fault fail of gpu0<->sw: no working path")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    s = tmp_path / "s.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 2}\nworkload: [{op: all_reduce, size: 1MiB}]\n")

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_command, "run_scenario", interrupted)
    assert main(["run", str(s), "-o", str(tmp_path / "out")]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "netsim: interrupted; nothing written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_one_rank_and_zero_byte_results_are_never_inf_or_nan(tmp_path, capsys):
    s = tmp_path / "s.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 4}\nworkload: [{op: barrier}, {op: all_reduce, size: 0}]\n")
    assert main(["run", str(s), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out and "nan" not in out
    import polars as pl
    summary = pl.read_parquet(tmp_path / "out" / "summary.parquet")
    for col in ("algbw_Bps", "busbw_Bps"):
        values = summary[col].drop_nulls()
        assert values.is_finite().all()


def test_names_with_brackets_are_printed_as_written(tmp_path, capsys):
    s = tmp_path / "s.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 2, name: 'a[/bold]b[red]c'}\n"
                 "workload: [{op: all_reduce, size: 1MiB, label: '[/x] & <b>'}]\n")
    assert main(["run", str(s), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "a[/bold]b[red]c" in out and "[/x] & <b>" in out


@pytest.mark.parametrize("doc, needle", [
    ("topology: {kind: full_mesh, gpus: 5000}\nworkload: [{op: barrier}]\n", "topology: a full_mesh of 5,000 GPUs"),
    ("topology: {kind: single_switch, gpus: 4, latency: 1e308}\nworkload: [{op: barrier}]\n", "topology.latency"),
    ("topology: {kind: single_switch, gpus: 4, bandwidth: 1e-308}\nworkload: [{op: barrier}]\n",
     "topology.bandwidth"),
    ("topology: {kind: single_switch, gpus: 4}\nrouting: split:1000000000\nworkload: [{op: barrier}]\n", "routing"),
    ("topology: {kind: single_switch, gpus: 4}\nworkload: [{op: all_reduce, size: 9007199254740993}]\n",
     "workload.0.size"),
    ("topology: {kind: single_switch, gpus: 4}\nseed: 100000000000000000000000000000\nworkload: [{op: barrier}]\n",
     "seed"),
])
def test_values_beyond_the_stated_limits_are_refused(tmp_path, capsys, doc, needle):
    s = tmp_path / "s.yaml"
    s.write_text(doc)
    assert main(["run", str(s), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(s) in err and len(err.strip().splitlines()) == 1


def test_training_that_would_not_fit_in_memory_is_refused(tmp_path, capsys):
    s = tmp_path / "t.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 2}\nbatch: 1000000000\nsteps: 2\n")
    assert main(["train", str(s), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "batch" in err and not (tmp_path / "out").exists()


def test_a_fault_after_the_workload_does_not_stretch_the_run(tmp_path):
    import json
    s = tmp_path / "s.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 4}\nworkload: [{op: all_reduce, size: 1MiB}]\n"
                 "faults: [{at: 10s, link: gpu0<->sw}]\n")
    assert main(["run", str(s), "-o", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["variants"]["ecmp"]["end_time"] < 1e-3


def test_compare_routing_with_zero_byte_collectives(tmp_path, capsys):
    s = tmp_path / "s.yaml"
    s.write_text("topology: {kind: single_switch, gpus: 4}\njobs:\n"
                 "  - {name: a, gpus: 2, workload: [{op: barrier}]}\n"
                 "  - {name: b, gpus: 2, workload: [{op: all_reduce, size: 0}]}\n")
    assert main(["compare-routing", str(s), "--policies", "ecmp,spray", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").exists()


SCENARIO = "topology: {kind: single_switch, gpus: 8}\n"


@pytest.mark.parametrize("body, args, needle", [
    (SCENARIO + "workload:\n  - {op: all_reduce, size: 1MiB, ranks: []}\n", ["run"],
     "s.yaml: workload.0.ranks: expected at least one rank"),
    (SCENARIO + "parallel: {tp: 3, dp: 5}\nworkload:\n  - {op: all_reduce, size: 1MiB}\n", ["run"],
     "s.yaml: parallel: tp x cp x dp x pp = 15 ranks, but the job has 8 GPUs"),
    (SCENARIO + "workload:\n  - {op: all_reduce, size: 1MiB}\n", ["compare-routing", "--policies", "ecmp,bogus"],
     "--policies: unknown routing policy 'bogus'"),
    (SCENARIO + "workload:\n  - {op: all_reduce, size: 1MiB}\n", ["compare-routing", "--policies", "split:x"],
     "--policies: routing policy split:x"),
])
def test_scenario_mistakes_name_the_file_and_field(tmp_path, capsys, monkeypatch, body, args, needle):
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(body)
    assert main([args[0], "s.yaml", *args[1:], "-o", "o"]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


@pytest.mark.parametrize("args", [
    ["attention", "--topology", str(ROOT / "topologies" / "pcie4_a10.yaml")],
    ["replay", str(ROOT / "traces" / "ddp4" / "chakra"), "--topology", NVLINK],
    ["bench", "--topology", NVLINK],
    ["sweep-bandwidth", "--methods", "diloco"],
    ["run"],
])
def test_an_empty_output_path_is_refused_everywhere(tmp_path, capsys, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    assert main(args + ["-o", ""]) == 2
    err = capsys.readouterr().err
    assert "--output: expected a directory path, got ''" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("body, needle", [
    ("topology: {kind: leaf_spine, leaves: 128, spines: 16, hosts_per_leaf: 16, host_bandwidth: 400Gbps}\n"
     "workload:\n  - {op: all_to_all, size: 256MiB}\n", "would start about 4,192,256 transfers at one instant"),
    ("topology: {kind: leaf_spine, leaves: 64, spines: 16, hosts_per_leaf: 16, gpus_per_host: 8, nics_per_host: 8, "
     "host_bandwidth: 400Gbps}\nworkload:\n  - {op: all_reduce, size: 256MiB, algo: rings}\n",
     "would create about 1,073,610,752 transfers"),
])
def test_oversized_work_is_refused_from_closed_forms(tmp_path, capsys, monkeypatch, body, needle):
    """A direct all-to-all on 2,048 GPUs (4.2M transfers at once) and `rings` on 8,192 GPUs (1.07e9 transfers)
    are refused from closed-form counts, before any schedule is built (this used to take gigabytes)."""
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(body)
    assert main(["run", "s.yaml", "-o", "o"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "--max-transfers" in err and len(err.strip().splitlines()) == 1, err
    assert " here" in err  # how long it would take on this kind of machine, roughly
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


@pytest.mark.parametrize("old, new, args", [
    ("--ranks", "--rescale", ["replay", str(ROOT / "traces" / "ddp2"), "--topology", NVLINK, "--ranks", "4"]),
    ("--policy", "--recovery", ["faults", "SCENARIO", "--policy", "none"]),
])
def test_old_flag_names_still_work_for_a_release_and_say_the_new_one(tmp_path, capsys, monkeypatch, old, new, args):
    """One meaning per flag name: replay's rescaling is --rescale (--ranks is bench's rank count), the fault
    study's recovery policy --recovery (policies are routing policies elsewhere), sweep's pool --processes
    (--workers is the training workers' count). The old spellings work, with a notice."""
    monkeypatch.chdir(tmp_path)
    if "SCENARIO" in args:
        Path("f.yaml").write_text("name: s\ntopology: {kind: single_switch, gpus: 8}\n"
                                  "job: {replicas: 8, iterations: 20, checkpoint_every: 10}\n")
        args = [a if a != "SCENARIO" else "f.yaml" for a in args]
    assert main(args + ["--json"]) == 0
    captured = capsys.readouterr()
    assert f"netsim: notice: {old} is now {new}" in captured.err
    assert captured.out.startswith("{")


def test_train_without_pytorch_names_the_extra(tmp_path, capsys, monkeypatch):
    """PyTorch is the `train` extra: without it, `netsim train` says so in one line, exit 2, nothing written."""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "torch", None)  # an import of torch now fails, as where it is missing
    assert main(["train", "-o", "o"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "netsim: error: netsim train needs torch, which is not installed: pip install 'netsim[train]'"
    assert list(tmp_path.iterdir()) == []


def test_the_core_commands_never_import_pytorch(tmp_path):
    """`netsim run`, `bench`, `replay` and `attention` work without the `train` extra: they never import torch."""
    import subprocess

    code = ("import sys\nfrom netsim.cli import main\n"
            f"assert main(['run', '-o', {str(tmp_path / 'r')!r}]) == 0\n"
            f"assert main(['bench', '--topology', {NVLINK!r}, '-b', '1M', '-e', '1M']) == 0\n"
            f"assert main(['replay', {str(ROOT / 'traces' / 'ddp2')!r}, '--topology', {NVLINK!r}]) == 0\n"
            f"assert main(['attention', '--topology', {str(ROOT / 'topologies' / 'pcie4_a10.yaml')!r}]) == 0\n"
            "print('TORCH', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TORCH False" in out.stdout

"""Output directories belong to the user: netsim writes only its own files, atomically, and never deletes others."""

import os
import stat

import pytest

from netsim.cli import main
from netsim.config import MANIFEST, OutputDirectory
from netsim.errors import ConfigError

SCENARIO = """
topology: {kind: single_switch, gpus: 2, bandwidth: 100Gbps}
workload: [{op: all_reduce, size: 1MiB}]
"""
OUTPUTS = {"collectives.parquet", "links.parquet", "link_timeline.parquet", "transfers.parquet",
           "summary.parquet", "meta.json", "report.html", "timeline.json", "chakra.0.et", "chakra.1.et", MANIFEST}


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return path


def run(scenario, out, capsys=None):
    return main(["run", str(scenario), "-o", str(out)])


def test_new_directory_gets_outputs_and_manifest(tmp_path, scenario):
    out = tmp_path / "a" / "b"
    assert run(scenario, out) == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS


def test_a_users_file_beside_the_outputs_survives_a_rerun(tmp_path, scenario):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    (out / "notes.txt").write_text("mine")
    before = (out / "report.html").stat().st_ino
    assert run(scenario, out) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert {p.name for p in out.iterdir()} == OUTPUTS | {"notes.txt"}
    assert (out / "report.html").stat().st_ino != before  # replaced by a new file, not edited in place


def test_directory_with_foreign_files_is_refused_untouched(tmp_path, scenario, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run(scenario, out) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "--output" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_dot_in_a_nonempty_directory_is_refused_and_nothing_deleted(tmp_path, scenario, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "s.yaml", "-o", "."]) == 2
    assert main(["run", "s.yaml", "-o", ""]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]
    assert "Traceback" not in capsys.readouterr().err


def test_dot_in_an_empty_directory_and_trailing_slash(tmp_path, scenario, monkeypatch):
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", str(scenario), "-o", "."]) == 0
    assert {p.name for p in work.iterdir()} == OUTPUTS
    assert main(["run", str(scenario), "-o", "./"]) == 0  # an earlier netsim output: replaced
    assert main(["run", str(scenario), "-o", str(tmp_path / "x") + "/"]) == 0
    assert {p.name for p in (tmp_path / "x").iterdir()} == OUTPUTS


def test_scenario_inside_the_output_directory_is_not_deleted(tmp_path, capsys):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "s.yaml").write_text(SCENARIO)
    assert main(["run", str(sub / "s.yaml"), "-o", str(sub)]) == 2
    assert [p.name for p in sub.iterdir()] == ["s.yaml"]


@pytest.mark.parametrize("make", ["file", "file_sub", "dangling_link", "proc"])
def test_bad_targets_fail_before_the_run_with_one_line(tmp_path, scenario, capsys, make):
    (tmp_path / "file").write_text("x")
    target = {"file": tmp_path / "file", "file_sub": tmp_path / "file" / "sub",
              "dangling_link": tmp_path / "link", "proc": "/proc/netsim-test"}[make]
    if make == "dangling_link":
        os.symlink(tmp_path / "nowhere", target)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert run(scenario, target) == 2
    captured = capsys.readouterr()
    assert "simulating" not in captured.out + captured.err  # refused before the run started
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    assert (tmp_path / "file").read_text() == "x"


def test_symlink_to_a_directory_writes_into_it(tmp_path, scenario):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    assert run(scenario, tmp_path / "link") == 0
    assert (tmp_path / "link").is_symlink()
    assert {p.name for p in real.iterdir()} == OUTPUTS


def test_directories_are_created_with_the_umask(tmp_path, scenario):
    old = os.umask(0o022)
    try:
        assert run(scenario, tmp_path / "out") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "report.html").stat().st_mode) == 0o644


def test_failure_while_writing_leaves_nothing(tmp_path):
    out = OutputDirectory(tmp_path / "new" / "deeper", command="test")
    with pytest.raises(KeyboardInterrupt):
        with out.writing() as staging:
            (staging / "half.parquet").write_text("partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_stale_netsim_files_go_user_files_with_netsim_names_stay(tmp_path):
    out = OutputDirectory(tmp_path, command="test")
    with out.writing() as staging:
        (staging / "a.parquet").write_text("1")
        (staging / "b.parquet").write_text("1")
    with OutputDirectory(tmp_path, command="test").writing() as staging:
        (staging / "a.parquet").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "a.parquet", "meta.json"]
    (tmp_path / "c.parquet").write_text("user's")
    with pytest.raises(ConfigError, match="c.parquet"):
        with OutputDirectory(tmp_path, command="test").writing() as staging:
            (staging / "c.parquet").write_text("netsim's")
    assert (tmp_path / "c.parquet").read_text() == "user's"
    assert (tmp_path / "a.parquet").read_text() == "2"


def test_a_forged_manifest_grants_nothing(tmp_path, scenario, capsys):
    out = tmp_path / "forged"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / MANIFEST).write_text('{"command": "run", "files": {"thesis.tex": {"size": 1, "sha256": "00"}}}')
    assert run(scenario, out) == 0
    assert (out / "thesis.tex").read_text() == "years of work"
    (out / MANIFEST).write_text('{"files": ["thesis.tex"]}')  # an older or hand-made format
    assert run(scenario, out) == 2
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_file_edited_since_netsim_wrote_it_is_not_overwritten(tmp_path, scenario, capsys):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    (out / "report.html").write_text("my annotated copy")
    capsys.readouterr()
    assert run(scenario, out) == 2  # refused before the run, not after
    captured = capsys.readouterr()
    assert "report.html" in captured.err and "simulating" not in captured.out
    assert (out / "report.html").read_text() == "my annotated copy"


def test_a_directory_where_an_output_goes_is_refused_before_the_run(tmp_path, scenario, capsys):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "report.html").unlink()
    (out / "report.html").mkdir()
    assert run(scenario, out) == 2
    assert "report.html" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == {k: v for k, v in before.items() if k != "report.html"}


def test_another_commands_output_is_not_replaced(tmp_path, scenario, capsys):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    topo = tmp_path / "t.yaml"
    topo.write_text("kind: single_switch\ngpus: 2\n")
    assert main(["bench", "--topology", str(topo), "-b", "1K", "-e", "1K", "-o", str(out)]) == 2
    assert "netsim run" in capsys.readouterr().err
    assert (out / "transfers.parquet").exists()


def test_every_output_says_what_wrote_it(tmp_path, capsys):
    """meta.json in every command's output: netsim's version, the command line, each input file's SHA-256,
    one hash of the resolved configuration and the start time; a command's own meta.json keeps its keys."""
    import json

    from netsim.cli import main

    topo = tmp_path / "t.yaml"
    topo.write_text("kind: single_switch\ngpus: 4\nbandwidth: 100Gbps\n")
    assert main(["bench", "--topology", str(topo), "-b", "1M", "-e", "1M", "-o", str(tmp_path / "b")]) == 0
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())["provenance"]
    assert meta["command"] == "bench" and meta["argv"][:3] == ["bench", "--topology", str(topo)]
    assert list(meta["inputs_sha256"]) == [str(topo)] and len(meta["configuration_sha256"]) == 64
    assert meta["netsim"] == netsim_version() and meta["started_utc"].endswith("+00:00")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"topology: {topo}\nworkload:\n  - {{op: all_reduce, size: 1MiB}}\n")
    assert main(["run", str(scenario), "-o", str(tmp_path / "r")]) == 0
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["provenance"]["command"] == "run" and "variants" in meta  # the run's own keys stay
    topo.write_text("kind: single_switch\ngpus: 4\nbandwidth: 200Gbps\n")  # another input: another hash
    assert main(["bench", "--topology", str(topo), "-b", "1M", "-e", "1M", "-o", str(tmp_path / "b2")]) == 0
    again = json.loads((tmp_path / "b2" / "meta.json").read_text())["provenance"]
    assert again["inputs_sha256"][str(topo)] != json.loads((tmp_path / "b" / "meta.json").read_text())[
        "provenance"]["inputs_sha256"][str(topo)]


def netsim_version():
    from importlib.metadata import version

    return version("netsim")

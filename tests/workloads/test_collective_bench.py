"""`netsim bench`: nccl-tests columns and factors, size stepping, JSON, report, bad flags."""

import json
from pathlib import Path

import polars as pl
import pytest

from netsim.cli import main
from netsim.collectives import closed_form
from netsim.workloads import parse_bench_size, size_range

ROOT = Path(__file__).resolve().parents[2]


def test_sizes_step_like_nccl_tests():
    assert parse_bench_size("8", "-b") == 8 and parse_bench_size("64K", "-b") == 65536
    assert parse_bench_size("8G", "-e") == 8 * 2**30 and parse_bench_size("1MB", "-e") == 10**6
    assert size_range(8, 128, 2) == [8, 16, 32, 64, 128]
    assert size_range(100, 400, 2, increment=100) == [100, 200, 300, 400]


def test_bench_json_matches_closed_form_and_busbw_factor(tmp_path, capsys):
    topo = tmp_path / "t.yaml"
    topo.write_text("kind: full_mesh\ngpus: 8\nbandwidth: 80Gbps\nlatency: 2us\n")
    assert main(["bench", "--topology", str(topo), "--op", "all_reduce", "-b", "8K", "-e", "8M", "-f", "32",
                 "--algo", "ring,halving_doubling", "--json", "-o", str(tmp_path / "out")]) == 0
    shown = json.loads(capsys.readouterr().out)
    rows = shown["rows"]
    assert shown["meta"]["command"] == "bench"
    assert [r["size_B"] for r in rows] == [8192, 262144, 8388608] * 2
    for r in rows:
        t = closed_form("all_reduce", r["algo"], 8, r["size_B"], 2e-6, 10e9)
        assert r["time_s"] == pytest.approx(t, rel=1e-9)
        assert r["algbw_Bps"] == pytest.approx(r["size_B"] / t, rel=1e-9)
        assert r["busbw_Bps"] == pytest.approx(r["algbw_Bps"] * 2 * 7 / 8, rel=1e-12)
        assert r["count"] == r["size_B"] // 4
    frame = pl.read_parquet(tmp_path / "out" / "bench.parquet")
    assert len(frame) == 6 and frame.columns == list(rows[0])
    assert "busbw" in (tmp_path / "out" / "report.html").read_text()


def test_bench_table_has_the_nccl_tests_columns(capsys):
    assert main(["bench", "--topology", str(ROOT / "topologies" / "nvlink8.yaml"), "--op", "all_gather",
                 "-b", "1M", "-e", "4M", "--algo", "ring"]) == 0
    out = capsys.readouterr().out
    assert "size" in out and "count" in out and "algbw" in out and "busbw" in out and "(us)" in out
    assert "Avg bus bandwidth" in out
    assert len([line for line in out.splitlines() if line and not line.startswith("#")]) == 3


@pytest.mark.parametrize("args, needle", [
    (["--algo", "magic"], "--algo"), (["--ranks", "99"], "--ranks"), (["-b", "8Q"], "-b"),
    (["-f", "1"], "-f"), (["--routing", "nope"], "routing"),
])
def test_bench_bad_flags_exit_2(args, needle, capsys, tmp_path):
    out = tmp_path / "o"
    code = main(["bench", "--topology", str(ROOT / "topologies" / "nvlink8.yaml"), "-b", "8", "-e", "64",
                 "-o", str(out), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

"""Real nccl-tests output read as measurements (`netsim bench --measured`)."""

import json

import polars as pl
import pytest

from netsim.cli import main
from netsim.collectives import closed_form
from netsim.errors import ConfigError
from netsim.workloads.nccl_tests import parse_nccl_tests

HEADER = """# Collective test starting: {binary}
# nThread 1 nGpus 1 minBytes 1048576 maxBytes 4194304 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0
#
# Using devices
{ranks}#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
"""


def nccl_tests_output(binary: str, ranks: int, rows: list[tuple[int, float, float]], prefix: str = "") -> str:
    """nccl-tests' printout: `rows` of (size, time in us, busbw in GB/s); in-place 1% slower."""
    rank_lines = "".join(f"#  Rank {r:2d} Group  0 Pid  4242 on node0 device {r:2d} [0x{r:02x}] NVIDIA H100 80GB HBM3\n"
                         for r in range(ranks))
    lines = [prefix + line for line in HEADER.format(binary=binary, ranks=rank_lines).splitlines()]
    for size, us, busbw in rows:
        algbw = size / us / 1e3
        lines.append(f"{prefix}{size:>12}  {size // 4:>12}     float     sum      -1  {us:>7.2f}  {algbw:>6.2f}  "
                     f"{busbw:>6.2f}      0  {us * 1.01:>7.2f}  {algbw / 1.01:>6.2f}  {busbw / 1.01:>6.2f}      0")
        lines.append(f"{prefix}node0:4242:4242 [0] NCCL INFO comm 0x5555 rank 0 nranks {ranks} - Init COMPLETE")
    lines += [f"{prefix}# Out of bounds values : 0 OK", f"{prefix}# Avg bus bandwidth    : 12.34", ""]
    return "\n".join(lines)


def test_the_exact_format_with_a_launcher_prefix_and_info_lines():
    m = parse_nccl_tests(nccl_tests_output("all_gather_perf", 4, [(1048576, 41.57, 18.92), (2097152, 70.0, 22.47)],
                                           prefix="[1,0]<stdout>:"), "log")
    assert m.op == "all_gather" and m.ranks == 4 and [r.size_B for r in m.rows] == [1048576, 2097152]
    assert m.rows[0].time_s == pytest.approx(41.57e-6) and m.rows[0].busbw_Bps == pytest.approx(18.92e9)
    assert m.rows[1].in_place_time_s == pytest.approx(70.7e-6) and m.rows[1].in_place_busbw_Bps == pytest.approx(
        22.47e9 / 1.01, rel=1e-3)


def test_older_outputs_without_validation_or_with_an_error_column():
    text = ("#       size         count      type   redop     time   algbw   busbw  error     time   algbw   busbw  error\n"
            "     1048576        262144     float     sum    41.57   25.22   44.14  N/A    40.93   25.62   44.83  N/A\n")
    with pytest.raises(ConfigError, match="out-of-place time"):  # no root column: the columns shift
        parse_nccl_tests(text, "old")
    text = "     1048576  262144  float  sum  -1  41.57  25.22  44.14  0e+00  40.93  25.62  44.83  0e+00\n"
    m = parse_nccl_tests(text, "old")
    assert m.op is None and m.ranks is None and m.rows[0].in_place_time_s == pytest.approx(40.93e-6)


@pytest.mark.parametrize("text, needle", [
    ("# only a header\n", "no nccl-tests result rows"),
    ("1024 256 float sum -1 12.0\n", "line 1: expected size, count"),
    ("1024 256 float sum -1 12.0 0.1 0.1 0\n1024 256 float sum -1 12.0 0.1 0.1 0\n", "line 2: size 1024 measured twice"),
    ("1024 256 float sum -1 -3 0.1 0.1 0\n", "numbers >= 0"),
    ("# all_reduce_perf\n# all_gather_perf\n1024 256 float sum -1 1 0.1 0.1 0\n", "several tests"),
    ("# sendrecv_perf\n1024 256 float sum -1 1 0.1 0.1 0\n", "sendrecv_perf has no netsim collective"),
])
def test_bad_outputs_are_one_line_errors(text, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_nccl_tests(text, "log")


def test_bench_measured_sets_the_real_run_beside_the_simulation(tmp_path, capsys):
    topo = tmp_path / "t.yaml"
    topo.write_text("kind: full_mesh\ngpus: 8\nbandwidth: 80Gbps\nlatency: 2us\n")
    sizes = [2**20, 2**22, 2**24]
    # a "real" run 25% slower than the ring's closed form on this fabric, on 4 of its 8 GPUs
    rows = [(s, 1.25 * closed_form("all_reduce", "ring", 4, s, 2e-6, 10e9) * 1e6, 1.0) for s in sizes]
    log = tmp_path / "all_reduce.log"
    log.write_text(nccl_tests_output("all_reduce_perf", 4, rows))
    assert main(["bench", "--topology", str(topo), "--algo", "ring", "--measured", str(log), "--json",
                 "-o", str(tmp_path / "out")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["meta"]["ranks"] == 4 and shown["meta"]["op"] == "all_reduce"
    got = shown["rows"]
    assert [r["size_B"] for r in got] == sizes
    for r, (_, us, _) in zip(got, rows):
        assert r["measured_time_s"] == pytest.approx(round(us, 2) * 1e-6, rel=1e-12)
        assert r["time_error"] == pytest.approx(1 / 1.25 - 1, abs=2e-4)  # the times printed to 0.01 us
    frame = pl.read_parquet(tmp_path / "out" / "bench.parquet")
    assert {"measured_time_s", "measured_busbw_Bps", "time_error"} <= set(frame.columns)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "measured busbw (GB/s)" in page and '"name":"measured"' in page
    assert main(["bench", "--topology", str(topo), "--algo", "ring", "--measured", str(log)]) == 0
    out = capsys.readouterr().out
    assert "-20.0%" in out and "geometric mean 20.0%" in out
    # the measurement decides the sizes, the op and the ranks: contradicting flags are one-line errors
    for extra, needle in ((["-b", "8"], "leave -b/-e/-f/-i out"), (["-f", "4"], "leave -b/-e/-f/-i out"),
                          (["--op", "all_gather"], "the measurement is all_reduce"),
                          (["--ranks", "2"], "the measurement ran on 4 ranks, not 2")):
        assert main(["bench", "--topology", str(topo), "--measured", str(log), *extra]) == 2
        assert needle in capsys.readouterr().err
    assert main(["bench", "--topology", str(topo), "--measured", str(tmp_path / "missing.log")]) == 2
    assert "cannot read it" in capsys.readouterr().err

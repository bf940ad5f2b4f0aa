"""`netsim calibrate`: a fabric's per-connection bandwidth and latency fitted to nccl-tests outputs."""

import json

import polars as pl
import pytest

from netsim.cli import main
from netsim.topology import load_topology
from netsim.topology.config import topology_from_dict
from netsim.workloads import run_bench
from tests.workloads.test_nccl_tests import nccl_tests_output

SIZES = [2**k for k in range(12, 31, 3)]


def recorded(tmp_path, op, cap, latency, ranks=8):
    """A "real" run: nccl-tests' printout of the shipped nvlink8 box with a known cap and latency."""
    truth = topology_from_dict({"kind": "single_switch", "gpus": 8, "bandwidth": "450GB/s", "latency": "0.5us",
                                "connection_bandwidth": cap, "connection_latency": latency})
    rows = run_bench(truth, op, SIZES, ["ring"], ranks=ranks)
    path = tmp_path / f"{op}.log"
    path.write_text(nccl_tests_output(f"{op}_perf", ranks, [(r.size_B, r.time_s * 1e6, r.busbw_Bps / 1e9)
                                                            for r in rows]))
    return path


def test_calibrate_recovers_a_known_cap_and_latency_from_two_collectives(tmp_path, capsys):
    files = [recorded(tmp_path, "all_reduce", 200e9, 5e-6), recorded(tmp_path, "all_gather", 200e9, 5e-6)]
    out = tmp_path / "cal"
    assert main(["calibrate", *map(str, files), "--topology", "nvlink8", "--algo", "ring", "-o", str(out),
                 "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    # nccl-tests prints times to 0.01 us: the fit is exact to that rounding
    assert shown["meta"]["connection_bandwidth_Bps"] == pytest.approx(200e9, rel=1e-3)
    assert shown["meta"]["connection_latency_s"] == pytest.approx(5e-6, rel=1e-2)
    for run in shown["rows"]:
        assert run["time_error_after"] < 2e-3 < 0.05 < run["time_error_before"]
    calibrated = load_topology(out / "nvlink8_calibrated.yaml")
    assert calibrated.meta["connection_bandwidth"] == pytest.approx(200e9, rel=1e-3)
    assert calibrated.meta["connection_latency"] == pytest.approx(5e-6, rel=1e-2)
    assert "# calibrated by netsim calibrate from" in (out / "nvlink8_calibrated.yaml").read_text()
    assert pl.read_parquet(out / "fit.parquet")["op"].to_list() == ["all_reduce", "all_gather"]
    # calibrating the calibrated file again replaces its fields, it does not add a second pair
    assert main(["calibrate", str(files[0]), "--topology", str(out / "nvlink8_calibrated.yaml"), "--algo", "ring",
                 "-o", str(tmp_path / "again")]) == 0
    text = (tmp_path / "again" / "nvlink8_calibrated_calibrated.yaml").read_text()
    assert text.count("connection_bandwidth:") == 1 and text.count("connection_latency:") == 1
    assert text.count("# calibrated by netsim calibrate") == 1


def test_calibrate_refuses_what_it_cannot_fit(tmp_path, capsys):
    log = tmp_path / "bare.log"
    log.write_text("1048576 262144 float sum -1 41.57 25.22 44.14 0 40.93 25.62 44.83 0\n")
    assert main(["calibrate", str(log), "--topology", "nvlink8", "-o", str(tmp_path / "o")]) == 2
    assert "say which with --op" in capsys.readouterr().err
    assert main(["calibrate", str(log), "--topology", "nosuch", "--op", "all_reduce", "-o", str(tmp_path / "o")]) == 2
    assert "not the name of a shipped topology" in capsys.readouterr().err
    assert main(["calibrate", str(log), "--topology", "nvlink8", "--op", "all_reduce", "--ranks", "9",
                 "-o", str(tmp_path / "o")]) == 2
    assert "the topology 'nvlink8' has 8 GPUs" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing half-written

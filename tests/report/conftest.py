"""Every kind of report, written once per session from tiny inputs through the command line."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml

from netsim.cli import main
from netsim.report import write_sweep_report

# A user string that must reach the page as typed: markup that would run or draw if it were not escaped
# (a script, an element with an id, an image that would be fetched) and an entity that must not be decoded.
HOSTILE = 'R&D <script>window.__xss=1</script><b id="xss">bold</b> <img src="xss.png"> &amp; end'

TOPOLOGY = {"kind": "leaf_spine", "name": HOSTILE, "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
            "host_bandwidth": "100Gbps", "spine_bandwidth": "100Gbps", "host_latency": "1us", "spine_latency": "1us"}


@dataclass(frozen=True)
class Report:
    path: Path
    title: str  # the page's <title>
    plots: int  # plotly figures the page must draw
    hostile_in_plots: bool  # whether HOSTILE also appears in a figure's text (a title, a legend, a category)


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> dict[str, Report]:
    d = tmp_path_factory.mktemp("reports")
    topo = _write(d / "topology.yaml", TOPOLOGY)
    run = _write(d / "run.yaml", {
        "name": "browser-run", "description": HOSTILE, "topology": TOPOLOGY, "routing": ["ecmp", "spray"],
        "workload": [{"op": "all_reduce", "size": "4MiB", "label": HOSTILE}, {"op": "all_to_all", "size": "2MiB"}],
    })
    compare = _write(d / "compare.yaml", {
        "name": "browser-compare", "topology": TOPOLOGY, "seed": 3, "jobs": [  # fragmented: traffic crosses spines
            {"name": "a", "gpus": 2, "placement": "fragmented",
             "workload": [{"op": "all_to_all", "size": "2MiB", "label": HOSTILE}]},
            {"name": "b", "gpus": 2, "placement": "fragmented", "workload": [{"op": "all_reduce", "size": "2MiB"}]},
        ],
    })
    train = _write(d / "train.yaml", {
        "name": HOSTILE, "topology": {"kind": "full_mesh", "gpus": 2, "bandwidth": "10Gbps", "latency": "1ms"},
        "methods": ["ddp", "diloco"], "steps": 4, "inner_steps": 2, "batch": 2, "step_time": "10ms",
        "model": {"layers": 1, "width": 16, "heads": 2, "context": 8},
    })
    attention = _write(d / "attention.yaml", {
        "name": HOSTILE, "topology": TOPOLOGY, "schemes": ["ring", "tokenring"], "seq": 1024, "heads": 4,
        "head_dim": 16, "causal": True,
    })
    sweep_spec = _write(d / "sweep-spec.yaml", {
        "name": HOSTILE, "kind": "utilization",
        "base": {"method": "diloco", "model": {"layers": 2, "step_time": "100ms", "params": 1e8}, "workers": 2,
                 "inner_steps": 10, "fragments": 1, "overlap": 0},
        "grid": {"bandwidth": ["1Gbps", "10Gbps", "100Gbps"]},
        "zip": {"method": ["streaming_diloco", "streaming_diloco"], "fragments": [2, 2], "overlap": [0, 1]},
        "metrics": ["utilization", "wall_s"],
    })
    faults = _write(d / "faults.yaml", {
        "name": HOSTILE, "topology": TOPOLOGY,
        "job": {"replicas": 4, "compute": "500ms", "dp_bytes": "64MiB", "iterations": 100, "checkpoint_every": 20},
        "faults": [{"kind": "gpu_slow", "at": "10s", "rank": 1, "factor": 0.5}],
    })
    commands = {
        "sweep-table": ["sweep", str(sweep_spec), "--cache", str(d / "cache")],
        "faults": ["faults", str(faults)],
        "replay-alike": ["replay", str(Path(__file__).resolve().parents[2] / "traces" / "ddp4"), "--topology",
                         str(_write(d / "topology16.yaml", {**TOPOLOGY, "gpus_per_host": 4})), "--rescale", "16"],
        "run": ["run", str(run)],
        "attention": ["attention", str(attention)],
        "replay": ["replay", str(Path(__file__).resolve().parents[2] / "traces" / "pp2"), "--topology", str(topo)],
        "bench": ["bench", "--topology", str(topo), "-b", "1K", "-e", "64K", "-f", "4", "--algo", "ring,tree"],
        "compare": ["compare-routing", str(compare), "--policies", "ecmp,spray"],
        "sweep": ["sweep-bandwidth", "--methods", "ddp,diloco", "--grid", "1,10,100", "--layers", "2",
                  "--inner-steps", "4"],
        "train": ["train", str(train)],
    }
    for kind, argv in commands.items():
        assert main([*argv, "-o", str(d / kind)]) == 0, kind
    # the sweep's titles are built from numbers only: write its page again with a hostile title and description
    sweep = d / "sweep-hostile.html"
    write_sweep_report(sweep, pl.read_parquet(d / "sweep" / "sweep.parquet"),
                       pl.read_parquet(d / "sweep" / "thresholds.parquet"), HOSTILE, HOSTILE)
    return {
        "run": Report(d / "run" / "report.html", "netsim — browser-run", 4, True),  # topology, timeline, 2 heatmaps
        "bench": Report(d / "bench" / "report.html", f"netsim bench — all_reduce on {HOSTILE}", 2, True),
        # utilization and wall_s against bandwidth, a line per Streaming DiLoCo variant
        "sweep-table": Report(d / "sweep-table" / "report.html", f"netsim sweep — {HOSTILE}", 2, False),
        "faults": Report(d / "faults" / "report.html", f"netsim faults — {HOSTILE}", 1, False),
        # 16 ranks with a few distinct timelines (ddp4 rescaled): each drawn once, every rank folded below
        "replay-alike": Report(d / "replay-alike" / "report.html",
                               f"netsim replay — {Path(__file__).resolve().parents[2] / 'traces' / 'ddp4'}", 3, False),
        "compare": Report(d / "compare" / "report.html", "netsim compare-routing — browser-compare", 4, True),
        "sweep": Report(sweep, HOSTILE, 1, False),
        "train": Report(d / "train" / "report.html", f"netsim train — {HOSTILE}", 3, False),
        # a timeline per scheme, bytes per link, time against S and against N
        "attention": Report(d / "attention" / "report.html", f"netsim attention — {HOSTILE}", 5, False),
        # the timeline; no collective chart beyond the barrier's: pp2 has one barrier
        "replay": Report(d / "replay" / "report.html",
                         f"netsim replay — {Path(__file__).resolve().parents[2] / 'traces' / 'pp2'}", 2, False),
    }

"""Every number netsim writes names its unit: ``_s``, ``_B``, ``_Bps`` (or ``_per_s``), else it is a count, an
id, a fraction or a ratio listed here. A new column without a unit fails this test until it gets one."""

import polars as pl
import yaml

from netsim.units import column_heading, column_unit, format_value

# numbers without a unit, as written today: counts, ids, fractions, ratios, losses
UNITLESS = {
    "ranks", "count", "id", "chunks", "link", "batch", "transfers", "rank", "node", "call", "gpus", "step", "peer",
    "value", "worker", "point", "run", "seed", "root", "flops", "tag", "injected", "detected", "right_class_and_place",
    "among_candidates", "false_alarms", "checks", "syncs", "events_per_step", "messages", "target",
    "mean_utilization", "peak_utilization", "utilization", "max_link_peak", "busiest_link_utilization",
    "pct_of_ideal", "slowdown", "worst_step_load_ratio", "class_precision", "recall",
    "loss", "final_loss", "perplexity", "runs", "downtime_share", "detection_share", "restart_share",
    "lost_work_share", "slowed_share", "diagnosis_share", "checkpoint_share", "place_precision", "place_recall",
    "named_share", "places_named_mean", "places_named", "skipped_steps",
}


def numbers_without_unit(frame: pl.DataFrame, params: set[str] = frozenset()) -> set[str]:
    return {c for c, t in zip(frame.columns, frame.dtypes)
            if t.is_numeric() and not column_unit(c) and c not in UNITLESS and c not in params}


def test_every_output_column_names_its_unit(reports):
    seen = set()
    root = reports["run"].path.parents[1]  # every command's output directory is in here
    spec = yaml.safe_load((root / "sweep-spec.yaml").read_text())
    for path in sorted(root.glob("*/*.parquet")):
        frame = pl.read_parquet(path)
        # a sweep's parameters are the user's own paths into the scenario (bandwidth, fragments, ...)
        params = {*spec["grid"], *spec["zip"]} if path.name == "table.parquet" else set()
        assert not numbers_without_unit(frame, params), path
        seen.add(path.name)
    assert {"transfers.parquet", "collectives.parquet", "links.parquet", "summary.parquet", "bench.parquet",
            "compare.parquet", "steps.parquet", "sweep.parquet", "thresholds.parquet", "tasks.parquet",
            "timeline.parquet", "faults.parquet", "runs.parquet", "table.parquet", "trace.parquet"} <= seen


def test_the_unit_is_read_back_from_the_name():
    assert [column_unit(c) for c in ("time_mean_s", "size_B", "busbw_Bps", "iterations_per_s", "utilization",
                                     "ranks")] == ["s", "B", "B/s", "1/s", "fraction", ""]
    assert column_heading("busbw_Bps") == "busbw_Bps (B/s)" and column_heading("ranks") == "ranks"
    assert [format_value(c, v) for c, v in (("time_s", 0.0015), ("size_B", 2**20), ("busbw_Bps", 5e10),
                                            ("count", 3), ("slowdown", 1.23456), ("x", None), ("ok", True))] == \
        ["1.5ms", "1MiB", "400Gbps", "3", "1.235", "-", "yes"]

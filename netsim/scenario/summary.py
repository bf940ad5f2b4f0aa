"""The summary table of a run: one row per (variant, workload label)."""

from __future__ import annotations

import polars as pl

from netsim.collectives import BUSBW_FACTOR


def summarize(results) -> pl.DataFrame:
    """Mean time, algbw and busbw (nccl-tests definitions) per variant and workload item."""
    coll = results.collectives.with_columns((pl.col("end_s") - pl.col("start_s")).alias("time_s"))
    rows = (
        coll.group_by(["variant", "job", "label", "op", "algo", "ranks", "size_B"], maintain_order=True)
        .agg(pl.len().alias("count"), pl.col("time_s").mean().alias("time_mean_s"), pl.col("time_s").max().alias("time_max_s"))
    )
    busfactor = [BUSBW_FACTOR[op](n) for op, n in zip(rows["op"].to_list(), rows["ranks"].to_list())]
    links = results.links.group_by("variant", maintain_order=True).agg(
        pl.col("peak_utilization").max().alias("max_link_peak"),
        pl.col("carried_B").max().alias("max_link_B"),
    )
    return (
        rows.with_columns(
            # null where a call took no time (nothing to move): a rate there is undefined, not infinite
            pl.when(pl.col("time_mean_s") > 0).then(pl.col("size_B") / pl.col("time_mean_s")).alias("algbw_Bps"),
            pl.when(pl.col("time_mean_s") > 0).then(pl.col("size_B") / pl.col("time_mean_s") * pl.Series(busfactor))
            .alias("busbw_Bps"),
        )
        .join(links, on="variant", how="left")
    )


def busiest_links(links: pl.DataFrame) -> pl.DataFrame:
    """Per variant, the link that carried the most bytes over the whole run (links that carried any)."""
    return (links.filter(pl.col("carried_B") > 0).sort("carried_B", descending=True)
            .group_by("variant", maintain_order=True).first().sort("variant")
            .select("variant", "name", "carried_B", "peak_utilization"))


def timeline(results) -> dict:
    """A run's Chrome trace events (`netsim.program.timeline`): one process per routing variant and job,
    one thread per communicator, each collective call a slice; the busiest links' utilisation (the link
    timeline) as counters."""
    from netsim.program.timeline import chrome_trace

    calls = results.collectives
    if "variant" not in calls.columns:
        calls = calls.with_columns(pl.lit("").alias("variant"))
    keys = calls.select("variant", "job").unique(maintain_order=True).rows()
    pid = {k: i for i, k in enumerate(keys)}
    rows = calls.with_columns(
        pl.Series("rank", [pid[k] for k in calls.select("variant", "job").rows()], dtype=pl.Int64),
        pl.col("id").alias("node"), pl.lit("collective").alias("kind"), pl.col("label").alias("name"),
        pl.col("comm").alias("stream"), pl.lit(None, dtype=pl.Float64).alias("recorded_s"))
    names = {i: " / ".join(x for x in k if x) or "run" for k, i in pid.items()}
    series = []
    frame = results.frames.get("link_timeline")
    if frame is not None and len(frame):
        group = ["variant", "name"] if "variant" in frame.columns else ["name"]
        for key, part in frame.sort("time_s").group_by(group, maintain_order=True):
            series.append((" / ".join(str(x) for x in key if x) + " utilization", part["time_s"].to_list(),
                           part["utilization"].to_list()))
    return chrome_trace(rows, names=names, counters=series)

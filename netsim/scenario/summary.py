"""The summary table of a run: one row per (variant, workload label)."""

from __future__ import annotations

import polars as pl

from netsim.collectives import BUSBW_FACTOR


def summarize(results) -> pl.DataFrame:
    """Mean time, algbw and busbw (nccl-tests definitions) per variant and workload item."""
    coll = results.collectives.with_columns((pl.col("end") - pl.col("start")).alias("time"))
    rows = (
        coll.group_by(["variant", "job", "label", "op", "algo", "ranks", "bytes"], maintain_order=True)
        .agg(pl.len().alias("count"), pl.col("time").mean().alias("time_mean"), pl.col("time").max().alias("time_max"))
    )
    busfactor = [BUSBW_FACTOR[op](n) for op, n in zip(rows["op"].to_list(), rows["ranks"].to_list())]
    links = results.links.group_by("variant", maintain_order=True).agg(
        pl.col("peak_utilization").max().alias("max_link_peak"),
        pl.col("bytes").max().alias("max_link_bytes"),
    )
    return (
        rows.with_columns(
            # null where a call took no time (nothing to move): a rate there is undefined, not infinite
            pl.when(pl.col("time_mean") > 0).then(pl.col("bytes") / pl.col("time_mean")).alias("algbw"),
            pl.when(pl.col("time_mean") > 0).then(pl.col("bytes") / pl.col("time_mean") * pl.Series(busfactor))
            .alias("busbw"),
        )
        .join(links, on="variant", how="left")
    )


def busiest_links(links: pl.DataFrame) -> pl.DataFrame:
    """Per variant, the link that carried the most bytes over the whole run (links that carried any)."""
    return (links.filter(pl.col("bytes") > 0).sort("bytes", descending=True)
            .group_by("variant", maintain_order=True).first().sort("variant")
            .select("variant", "name", "bytes", "peak_utilization"))

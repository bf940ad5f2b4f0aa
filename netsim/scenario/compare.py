"""`compare-routing`: one run per routing policy, each job also alone, and an ideal reference.

Per policy and per (job, collective): mean time, busbw, busbw as a percentage of ideal (the
job alone on the fabric with ideal packet spraying, the paper's yardstick), slowdown against the
job running alone under the same policy, and, per collective step, the most-loaded fabric
link against the spraying lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import polars as pl

from netsim.routing import make_policy
from netsim.scenario.config import Scenario
from netsim.scenario.runner import simulate
from netsim.scenario.summary import summarize
from netsim.sim import Results
from netsim.topology import PathCache

KEYS = ["job", "label"]


@dataclass
class Comparison:
    table: pl.DataFrame  # per policy, job, collective
    steps: pl.DataFrame  # per policy and step: max_load_B, lower_bound_B
    links: pl.DataFrame  # per policy and link: carried_B
    runs: dict[str, Results]


def compare_routing(scenario: Scenario, policies: list[str],
                    progress: Callable[[str], None] | None = None, alone: bool = True) -> Comparison:
    """`alone=False` skips the runs of each job alone (no slowdown column)."""
    topo = scenario.topology
    for policy in policies:
        make_policy(policy, topo, PathCache(topo), scenario.config.seed)  # bad names fail before any run
    jobs = [job.name for job in scenario.config.job_list()]
    say = progress or (lambda _msg: None)
    ideal_runs = {}
    for job in jobs:
        say(f"ideal reference for job {job} (alone, ideal spraying)")
        ideal_runs[job] = simulate(scenario, "spray", only=job)
    ideal = pl.concat([summarize(Results.concat({"ideal": r})) for r in ideal_runs.values()]).select(
        *KEYS, pl.col("busbw_Bps").alias("busbw_ideal_Bps"), pl.col("time_mean_s").alias("time_ideal_s"))
    tables, steps, links, runs = [], [], [], {}
    for policy in policies:
        say(f"{policy}: all jobs together")
        together = simulate(scenario, policy, record_steps=True)
        runs[policy] = together
        summary = summarize(Results.concat({policy: together}))
        if len(jobs) > 1 and alone:
            solo = []
            for job in jobs:
                say(f"{policy}: job {job} alone")
                solo.append(summarize(Results.concat({policy: simulate(scenario, policy, only=job)})))
            alone_t = pl.concat(solo).select(*KEYS, pl.col("time_mean_s").alias("time_alone_s"))
        elif len(jobs) > 1:
            alone_t = summary.select(*KEYS, pl.lit(None, dtype=pl.Float64).alias("time_alone_s"))
        else:
            alone_t = summary.select(*KEYS, pl.col("time_mean_s").alias("time_alone_s"))
        tables.append(summary.join(alone_t, on=KEYS, how="left").join(ideal, on=KEYS, how="left"))
        if "steps" in together.frames:
            steps.append(together.steps.select(pl.lit(policy).alias("variant"), pl.all()))
        links.append(together.links.select(pl.lit(policy).alias("variant"), pl.all()))
    table = pl.concat(tables).with_columns(
        # undefined (null, not NaN) where the reference moved no bytes or took no time
        pl.when(pl.col("busbw_ideal_Bps") > 0).then(100 * pl.col("busbw_Bps") / pl.col("busbw_ideal_Bps")).alias("pct_of_ideal"),
        pl.when(pl.col("time_alone_s") > 0).then(pl.col("time_mean_s") / pl.col("time_alone_s")).alias("slowdown"),
    )
    step_frame = pl.concat(steps) if steps else pl.DataFrame()
    if len(step_frame):
        worst = (step_frame.filter(pl.col("lower_bound_B") > 0)
                 .with_columns(pl.col("tag").str.split_exact("/", 1).struct.field("field_0").alias("job"),
                               pl.col("tag").str.split_exact("/", 1).struct.field("field_1").alias("label"))
                 .group_by(["variant", *KEYS]).agg((pl.col("max_load_B") / pl.col("lower_bound_B")).max()
                                                   .alias("worst_step_load_ratio")))
        table = table.join(worst, on=["variant", *KEYS], how="left")
    return Comparison(table, step_frame, pl.concat(links), runs)

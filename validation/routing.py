"""Validation experiment for the routing A/B.

Leaf-spine fabrics of 8 to 64 leaves (4 single-GPU hosts per leaf at 100 Gbps, 4 spines) at 1:1,
2:1 and 4:1 oversubscription; 1, 4 or 8 jobs splitting the GPUs, placed at random; each job runs
a ring all-reduce (32 MiB) or a direct all-to-all (4 MiB); every routing policy; two seeds. For each run and
job: busbw as a percentage of ideal (the same job alone with ideal packet spraying) and the worst
collective step's most-loaded fabric link over the spraying lower bound.

Writes results/routing.csv (every run and job), results/routing_summary.csv (seed- and job-averaged)
and results/routing.html (the figure; plotly.js from its CDN, so it needs a connection to display);
results/routing.png is a snapshot of the figure, taken with headless Chromium (when installed) from a
self-contained copy in a temporary folder, so nothing but the results is written into the repository.
Run: python validation/routing.py [--quick]     (about 10 minutes on 2 cores; --quick: about 5 s)
"""

from __future__ import annotations

import itertools
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from netsim.scenario import scenario_from_dict
from netsim.scenario.compare import compare_routing
from text_report import results_dir, snapshot  # a sibling: validation/ is on the path

POLICIES = ["ecmp", "spray", "split:min", "planned", "c4p"]
LEAVES = [8, 16, 32, 64]
RATIOS = [1, 2, 4]
JOBS = [1, 4, 8]
SEEDS = [0, 1]
WORKLOADS = {"ring all-reduce": {"op": "all_reduce", "size": "32MiB", "algo": "ring"},
             "all-to-all": {"op": "all_to_all", "size": "4MiB", "algo": "direct"}}
MAX_ALL_TO_ALL_LEAVES = 64  # every fabric size (the compiled fluid engine runs 256-GPU all-to-alls in seconds)


def scenario(leaves: int, ratio: int, jobs: int, seed: int, workload: str):
    gpus = 4 * leaves
    data = {
        "name": f"l{leaves}-r{ratio}-j{jobs}-s{seed}",
        "topology": {"kind": "leaf_spine", "leaves": leaves, "spines": 4, "hosts_per_leaf": 4,
                     "host_bandwidth": "100Gbps", "oversubscription": ratio, "host_latency": "1us",
                     "spine_latency": "1us"},
        "seed": seed,
        "jobs": [{"name": f"j{i}", "gpus": gpus // jobs, "placement": "random",
                  "workload": [dict(WORKLOADS[workload], label=workload)]} for i in range(jobs)],
    }
    return scenario_from_dict(data, source=data["name"])


def one(args: tuple) -> list[dict]:
    leaves, ratio, jobs, seed, workload = args
    result = compare_routing(scenario(leaves, ratio, jobs, seed, workload), POLICIES, alone=False)
    rows = result.table.select("variant", "job", "pct_of_ideal", "worst_step_load_ratio").to_dicts()
    for r in rows:
        r.update(leaves=leaves, oversubscription=ratio, jobs=jobs, seed=seed, workload=workload)
    return rows


def grid(quick: bool) -> list[tuple]:
    leaves, ratios, jobs, seeds = ([8], [1, 4], [1, 4], [0]) if quick else (LEAVES, RATIOS, JOBS, SEEDS)
    cases = []
    for l, r, j, s, w in itertools.product(leaves, ratios, jobs, seeds, WORKLOADS):
        if w == "all-to-all" and l > MAX_ALL_TO_ALL_LEAVES:
            continue
        cases.append((l, r, j, s, w))
    return sorted(cases, key=lambda c: -c[0])  # big ones first: better load balance over the pool


def figure(summary: pl.DataFrame) -> go.Figure:
    """busbw % of ideal per policy, averaged over fabric sizes, per (oversubscription, jobs); one panel per workload."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(WORKLOADS), subplot_titles=list(WORKLOADS), shared_yaxes=True)
    averaged = (summary.group_by("workload", "oversubscription", "jobs", "variant")
                .agg(pl.col("pct_of_ideal").mean()).sort("oversubscription", "jobs"))
    for col, workload in enumerate(WORKLOADS, start=1):
        for k, policy in enumerate(POLICIES):
            part = averaged.filter((pl.col("workload") == workload) & (pl.col("variant") == policy))
            fig.add_trace(go.Bar(x=[f"{r}:1, {j} job{'s' if j > 1 else ''}" for r, j in
                                    zip(part["oversubscription"].to_list(), part["jobs"].to_list())],
                                 y=part["pct_of_ideal"].to_list(), name=policy, legendgroup=policy,
                                 marker_color=["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a"][k],
                                 showlegend=col == 1), row=1, col=col)
    fig.update_layout(title="busbw as % of ideal (each job alone with ideal spraying), averaged over 8-64 leaves "
                            "and seeds; random placement", barmode="group", height=520, width=1400)
    fig.update_yaxes(title_text="% of ideal", row=1, col=1)
    fig.update_xaxes(title_text="oversubscription, concurrent jobs")
    return fig


def main() -> int:
    quick = "--quick" in sys.argv
    cases = grid(quick)
    started = time.perf_counter()
    with Pool(2) as pool:
        rows = [r for chunk in pool.imap_unordered(one, cases) for r in chunk]
    print(f"{len(cases)} scenarios, {len(cases) * (len(POLICIES) + 1)} or more simulations, "
          f"{time.perf_counter() - started:.0f} s with 2 processes")
    runs = pl.DataFrame(rows).sort("workload", "leaves", "oversubscription", "jobs", "seed", "variant", "job")
    summary = (runs.group_by("workload", "leaves", "oversubscription", "jobs", "variant")
               .agg(pl.col("pct_of_ideal").mean(), pl.col("worst_step_load_ratio").mean(),
                    pl.len().alias("samples"))
               .sort("workload", "leaves", "oversubscription", "jobs", "variant"))
    suffix = "_quick" if quick else ""
    out = results_dir()
    runs.write_csv(out / f"routing{suffix}.csv", float_precision=4)
    summary.write_csv(out / f"routing_summary{suffix}.csv", float_precision=4)
    fig = figure(summary)
    fig.write_html(out / f"routing{suffix}.html", include_plotlyjs="cdn")
    snapshot(fig, out / f"routing{suffix}.png")
    pivot = summary.pivot(on="variant", index=["workload", "leaves", "oversubscription", "jobs"],
                          values="pct_of_ideal")
    with pl.Config(tbl_rows=200, tbl_width_chars=200, float_precision=1):
        print(pivot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

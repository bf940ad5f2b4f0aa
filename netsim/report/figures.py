"""Plotly figures of a run: the topology, link utilisation over time, the collective timeline."""

from __future__ import annotations

import html
from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go
import polars as pl

from netsim.topology import Topology

TIER_ORDER = ["site", "core", "spine", "agg", "switch", "leaf", "nic", "nvswitch", "gpu"]
UTIL_BINS = [(0.0, "#d9d9d9", "idle"), (0.25, "#9ecae1", "<=25%"), (0.5, "#4292c6", "25-50%"),
             (0.75, "#fd8d3c", "50-75%"), (float("inf"), "#d7301f", ">75%")]  # (upper bound, colour, name)


def plotly_text(value: object) -> str:
    """A string for a plotly text field (title, trace name, category, hover text) shown as typed.

    Plotly reads those fields as a subset of HTML (`<b>`, `<a href>`, `&amp;`), so a user's `<b>` would turn
    bold and `&amp;` into `&`; escaping `&`, `<` and `>` (entities plotly decodes) keeps the text literal.
    """
    return html.escape(str(value), quote=False)


def _texts(values: Iterable[object]) -> list[str]:
    return [plotly_text(v) for v in values]


def _bin_of(u: float) -> int:
    return next(i for i, (hi, _, _) in enumerate(UTIL_BINS) if u <= hi)


def node_positions(topo: Topology) -> np.ndarray:
    """(x, y) per node: one row per node kind (sites on top, GPUs at the bottom), spread evenly."""
    kinds = [k for k in TIER_ORDER if k in set(topo.node_kind)] + sorted(set(topo.node_kind) - set(TIER_ORDER))
    pos = np.zeros((topo.num_nodes, 2))
    for row, kind in enumerate(kinds):
        members = [v for v in range(topo.num_nodes) if topo.node_kind[v] == kind]
        xs = np.linspace(0.0, 1.0, len(members) + 2)[1:-1]
        for x, v in zip(xs, members):
            pos[v] = (x, len(kinds) - row)
    return pos


def topology_figure(topo: Topology, links: pl.DataFrame | None = None, title: str = "") -> go.Figure:
    """The fabric drawn by tier; cables coloured by mean utilisation when `links` is given.

    SVG traces (`go.Scatter`), not WebGL: the page must draw anywhere, including without a GPU.
    """
    pos = node_positions(topo)
    util = np.zeros(topo.num_links)
    if links is not None and len(links):
        util[links["link"].to_numpy()] = links["mean_utilization"].to_numpy()
    # one line per cable: the busier direction decides the colour
    src, dst = topo.link_src, topo.link_dst
    cable_util: dict[tuple[int, int], float] = {}
    for l in range(topo.num_links):
        a, b = int(src[l]), int(dst[l])
        key = (min(a, b), max(a, b))
        cable_util[key] = max(cable_util.get(key, 0.0), float(util[l]))
    fig = go.Figure()
    for i, (_, colour, name) in enumerate(UTIL_BINS):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for (a, b), u in cable_util.items():
            if _bin_of(u) == i:
                xs += [pos[a, 0], pos[b, 0], None]
                ys += [pos[a, 1], pos[b, 1], None]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, width=1),
                                     name=plotly_text(f"links {name}"), hoverinfo="skip"))
    kinds = sorted(set(topo.node_kind), key=lambda k: TIER_ORDER.index(k) if k in TIER_ORDER else 99)
    for kind in kinds:
        members = [v for v in range(topo.num_nodes) if topo.node_kind[v] == kind]
        fig.add_trace(go.Scatter(
            x=pos[members, 0], y=pos[members, 1], mode="markers", name=plotly_text(kind),
            text=_texts([topo.node_names[v] for v in members]), hoverinfo="text",
            marker=dict(size=6 if kind == "gpu" else 9),
        ))
    title = title or (f"Topology {topo.name}: {topo.num_nodes} nodes, {topo.num_links} links "
                      "(cables coloured by mean utilisation)")
    fig.update_layout(title=plotly_text(title), xaxis=dict(visible=False), yaxis=dict(visible=False),
                      height=460, legend=dict(orientation="h"))
    return fig


def utilisation_heatmap(timeline: pl.DataFrame, variant: str) -> go.Figure:
    """The hottest links (rows: fabric links first, then links inside servers) against time, utilisation in percent."""
    t = timeline.filter(pl.col("variant") == variant) if "variant" in timeline.columns else timeline
    fig = go.Figure()
    if len(t):
        names = t.select("link", "name").unique(maintain_order=True)
        times = np.unique(t["time_s"].to_numpy())
        z = t["utilization"].to_numpy().reshape(len(names), len(times)) * 100.0
        fig.add_trace(go.Heatmap(z=z, x=times * 1e3, y=_texts(names["name"].to_list()), colorscale="Viridis",
                                 zmin=0, zmax=100, colorbar=dict(title="util %")))
    fig.update_layout(title=plotly_text(f"Link utilisation over time, hottest links (fabric first) — {variant}"),
                      xaxis_title="simulated time (ms)", yaxis_title="link", height=max(360, 14 * t["link"].n_unique() + 120))
    return fig


def collective_timeline(collectives: pl.DataFrame) -> go.Figure:
    """One bar per collective call, per variant: when it started and how long it took."""
    fig = go.Figure()
    c = collectives.with_columns(((pl.col("end_s") - pl.col("start_s")) * 1e3).alias("ms"))
    for label in c["label"].unique(maintain_order=True).to_list():
        part = c.filter(pl.col("label") == label)
        fig.add_trace(go.Bar(
            y=_texts(part["variant"].to_list()), x=part["ms"].to_list(), base=(part["start_s"] * 1e3).to_list(),
            orientation="h", name=plotly_text(label),
            hovertext=_texts(f"{label}: {ms:.4g} ms" for ms in part["ms"].to_list()), hoverinfo="text",
        ))
    fig.update_layout(title="Timeline of collectives per variant", xaxis_title="simulated time (ms)",
                      yaxis_title="variant", barmode="overlay", height=300 + 30 * c["variant"].n_unique())
    return fig


def busbw_figure(bench: pl.DataFrame, title: str) -> go.Figure:
    """Bus bandwidth (GB/s) against message size, one line per algorithm, log-scaled size axis."""
    fig = go.Figure()
    for algo in bench["algo"].unique(maintain_order=True).to_list():
        part = bench.filter((pl.col("algo") == algo) & (pl.col("size_B") > 0))
        fig.add_trace(go.Scatter(x=part["size_B"].to_list(), y=(part["busbw_Bps"] / 1e9).to_list(), mode="lines+markers",
                                 name=plotly_text(algo), text=_texts(part["chosen"].to_list()),
                                 hovertemplate="%{x} B: %{y:.2f} GB/s (%{text})<extra></extra>"))
    if "measured_busbw_Bps" in bench.columns:  # a real nccl-tests run of the same sizes (`bench --measured`)
        real = bench.filter(pl.col("measured_busbw_Bps").is_not_null() & (pl.col("size_B") > 0)).unique(
            "size_B", maintain_order=True)
        fig.add_trace(go.Scatter(x=real["size_B"].to_list(), y=(real["measured_busbw_Bps"] / 1e9).to_list(),
                                 mode="lines+markers", name="measured", line=dict(dash="dash", color="black"),
                                 hovertemplate="%{x} B: %{y:.2f} GB/s measured<extra></extra>"))
    fig.update_layout(title=plotly_text(title), xaxis=dict(title="message size (B, log)", type="log"),
                      yaxis=dict(title="busbw (GB/s)", rangemode="tozero"), height=480)
    return fig


def time_figure(bench: pl.DataFrame, title: str) -> go.Figure:
    """Time per call against message size, one line per algorithm, both axes log-scaled: latency-bound
    sizes are the flat start, bandwidth-bound ones the slope-1 end."""
    fig = go.Figure()
    for algo in bench["algo"].unique(maintain_order=True).to_list():
        part = bench.filter((pl.col("algo") == algo) & (pl.col("size_B") > 0) & (pl.col("time_s") > 0))
        fig.add_trace(go.Scatter(x=part["size_B"].to_list(), y=(part["time_s"] * 1e6).to_list(), mode="lines+markers",
                                 name=plotly_text(algo), text=_texts(part["chosen"].to_list()),
                                 hovertemplate="%{x} B: %{y:.4g} us (%{text})<extra></extra>"))
    fig.update_layout(title=plotly_text(title), xaxis=dict(title="message size (B, log)", type="log"),
                      yaxis=dict(title="time per call (us, log)", type="log"), height=480)
    return fig


def grouped_bars(table: pl.DataFrame, column: str, title: str, axis: str) -> go.Figure:
    """One bar per (job: collective) and policy."""
    fig = go.Figure()
    for policy in table["variant"].unique(maintain_order=True).to_list():
        part = table.filter(pl.col("variant") == policy)
        fig.add_trace(go.Bar(x=_texts(f"{j}: {l}" for j, l in zip(part["job"].to_list(), part["label"].to_list())),
                             y=part[column].to_list(), name=plotly_text(policy)))
    fig.update_layout(title=plotly_text(title), barmode="group", yaxis_title=axis, xaxis_title="job: collective",
                      height=420)
    return fig


def load_distribution(links: pl.DataFrame) -> go.Figure:
    """Bytes carried per fabric link (switch to switch), one box per policy."""
    fabric = links.filter(~pl.col("tier").is_in(["host", "pcie", "nvlink"]))
    fig = go.Figure()
    for policy in fabric["variant"].unique(maintain_order=True).to_list():
        part = fabric.filter(pl.col("variant") == policy)
        fig.add_trace(go.Box(y=(part["carried_B"] / 2**20).to_list(), name=plotly_text(policy), boxpoints="outliers"))
    fig.update_layout(title="Bytes per fabric link (switch-to-switch), per policy", yaxis_title="MiB per link",
                      height=420)
    return fig


def step_ratio(steps: pl.DataFrame) -> go.Figure:
    """Per collective step: the most-loaded fabric link over the spraying lower bound."""
    fig = go.Figure()
    s = steps.filter(pl.col("lower_bound_B") > 0)
    for policy in s["variant"].unique(maintain_order=True).to_list():
        part = s.filter(pl.col("variant") == policy)
        fig.add_trace(go.Box(y=(part["max_load_B"] / part["lower_bound_B"]).to_list(), name=plotly_text(policy)))
    fig.update_layout(title="Per collective step: max fabric-link load / lower bound (1 = optimal)",
                      yaxis_title="max load / lower bound", height=420)
    return fig

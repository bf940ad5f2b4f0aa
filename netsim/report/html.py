"""The report: one self-contained HTML page (plotly.js inlined, works offline)."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from netsim.faults.spec import MODE_LABELS, PARTS
from netsim.report.figures import (
    busbw_figure, collective_timeline, grouped_bars, load_distribution, plotly_text, step_ratio, time_figure,
    topology_figure, utilisation_heatmap,
)
from netsim.scenario.summary import busiest_links
from netsim.sim import Results
from netsim.topology import Topology
from netsim.units import column_heading, format_bandwidth, format_size, format_time, format_value

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f2f2f2; } td:first-child, td:nth-child(2) { text-align: left; }
.note { color: #555; font-size: 0.9em; }
"""


def summary_html(summary: pl.DataFrame, links: pl.DataFrame | None = None) -> str:
    """The collectives table; below it, per variant, the run's busiest link (one figure per run, not per row)."""
    head = ["variant", "collective", "op / algo", "ranks", "size", "calls", "mean time", "algbw", "busbw"]
    rows = []
    jobs = summary["job"].n_unique() > 1
    for r in summary.iter_rows(named=True):
        rows.append([
            r["variant"], f"{r['job']}: {r['label']}" if jobs else r["label"], f"{r['op']} / {r['algo']}",
            str(r["ranks"]), format_size(r["size_B"]), str(r["count"]), format_time(r["time_mean_s"]),
            format_bandwidth(r["algbw_Bps"]), format_bandwidth(r["busbw_Bps"]),
        ])
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    table = "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + cells + "</table>"
    if links is None or "variant" not in links.columns:
        return table
    lines = [f"busiest link under {r['variant']} (whole run): {r['name']}, {format_size(r['carried_B'])}, peak "
             f"{100 * r['peak_utilization']:.0f}% of its capacity" for r in busiest_links(links).iter_rows(named=True)]
    return table + "".join(f'<p class="note">{html.escape(line)}</p>' for line in lines)


SHARED_PLOTLY_JS = "plotly.min.js"
_shared = {"on": False}


def share_plotly(on: bool = True) -> None:
    """Pages written from now on reference one `plotly.min.js` written beside them instead of inlining it
    (about 4.5 MB saved per page; the page then needs that file beside it). The default is off: every page
    self-contained, working offline on its own."""
    _shared["on"] = bool(on)


def write_page(path: Path, page: str) -> None:
    """Write a report page (and, with `share_plotly`, the plotly.js it references, beside it)."""
    path.write_text(page, encoding="utf-8")
    if _shared["on"]:
        from plotly.offline import get_plotlyjs

        (path.parent / SHARED_PLOTLY_JS).write_text(get_plotlyjs(), encoding="utf-8")


def _page(title: str, parts: list[str], figures: list[tuple[str, go.Figure]]) -> str:
    for i, (heading, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        # fixed div ids (plotly draws random ones): the same results give a byte-identical page
        inline = (SHARED_PLOTLY_JS if _shared["on"] else True) if i == 0 else False
        parts.append(fig.to_html(full_html=False, include_plotlyjs=inline, default_width="100%",
                                 div_id=f"figure-{i}"))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def write_bench_report(path: str | Path, bench: pl.DataFrame, title: str, description: str) -> Path:
    """The `netsim bench` page: busbw against size per algorithm, and the table."""
    head = ["algo", "ran", "size (B)", "time (us)", "algbw (GB/s)", "busbw (GB/s)"]
    measured = "measured_time_s" in bench.columns
    head += ["measured time (us)", "measured busbw (GB/s)", "time error"] if measured else []

    def real(r: dict) -> tuple:
        if not measured:
            return ()
        return (_number(r["measured_time_s"] and r["measured_time_s"] * 1e6, "{:.2f}"),
                _number(r["measured_busbw_Bps"] and r["measured_busbw_Bps"] / 1e9, "{:.2f}"),
                _number(r["time_error"] and 100 * r["time_error"], "{:+.1f}%"))

    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            r["algo"], r["chosen"], r["size_B"], f"{r['time_s'] * 1e6:.2f}", f"{r['algbw_Bps'] / 1e9:.2f}",
            f"{r['busbw_Bps'] / 1e9:.2f}", *real(r)))
        + "</tr>" for r in bench.iter_rows(named=True))
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>"]
    table = "<h2>Results</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + cells + "</table>"
    page = _page(title, parts, [("Bus bandwidth against size", busbw_figure(bench, title)),
                                ("Time against size", time_figure(bench, f"{title}: time per call"))])
    out = Path(path)
    write_page(out, page.replace("</body>", table + "</body>"))
    return out


def _number(value: float | None, form: str) -> str:
    """A table cell: undefined values (nothing moved, no time taken) shown as '-'."""
    return "-" if value is None else form.format(value)


def write_compare_report(path: str | Path, table: pl.DataFrame, steps: pl.DataFrame, links: pl.DataFrame,
                         title: str, description: str) -> Path:
    """The `compare-routing` page: busbw % of ideal, slowdowns, link-load distributions, step loads."""
    head = ["policy", "job", "collective", "mean time", "busbw", "% of ideal", "slowdown vs alone",
            "worst step load / bound"]
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
            r["variant"], r["job"], r["label"], format_time(r["time_mean_s"]), format_bandwidth(r["busbw_Bps"]),
            _number(r["pct_of_ideal"], "{:.1f}%"), _number(r["slowdown"], "{:.3f}"),
            _number(r.get("worst_step_load_ratio"), "{:.3f}")))
        + "</tr>" for r in table.iter_rows(named=True))
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>",
             "<h2>Summary</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + cells + "</table>"]
    figures = [
        ("busbw as % of ideal", grouped_bars(table, "pct_of_ideal", "busbw as % of ideal (the job alone, ideal "
                                             "spraying)", "% of ideal")),
        ("Slowdown against running alone", grouped_bars(table, "slowdown", "Slowdown: time with all jobs / "
                                                        "time alone (same policy)", "slowdown (x)")),
        ("Link loads", load_distribution(links)),
    ]
    if len(steps) and (steps["lower_bound_B"] > 0).any():  # no fabric traffic: the figure would be empty
        figures.append(("Per-step maximum load", step_ratio(steps)))
    out = Path(path)
    write_page(out, _page(title, parts, figures))
    return out


def write_sweep_report(path: str | Path, sweep: pl.DataFrame, found: pl.DataFrame, title: str,
                       description: str) -> Path:
    """The `sweep-bandwidth` page: utilisation against bandwidth per method, and the thresholds."""
    fig = go.Figure()
    for method in sweep["method"].unique(maintain_order=True).to_list():
        part = sweep.filter(pl.col("method") == method)
        fig.add_trace(go.Scatter(x=(part["bandwidth_Bps"] * 8 / 1e9).to_list(), y=(100 * part["utilization"]).to_list(),
                                 mode="lines+markers", name=plotly_text(method)))
    fig.update_layout(title="Compute utilisation against inter-datacenter bandwidth",
                      xaxis=dict(title="bandwidth (Gbit/s)", type="log"), yaxis=dict(title="compute utilisation (%)"),
                      height=480)
    targets = found["target"].unique(maintain_order=True).to_list()
    head = "<tr><th>method</th>" + "".join(f"<th>{100 * t:g}%</th>" for t in targets) + "</tr>"
    rows = ""
    for method in found["method"].unique(maintain_order=True).to_list():
        values = found.filter(pl.col("method") == method)["bandwidth_Bps"].to_list()
        rows += f"<tr><td>{html.escape(method)}</td>" + "".join(
            f"<td>{'never' if b is None else format_bandwidth(b)}</td>" for b in values) + "</tr>"
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>",
             "<h2>Lowest grid bandwidth reaching each utilisation</h2><table>" + head + rows + "</table>"]
    out = Path(path)
    write_page(out, _page(title, parts, [("Utilisation against bandwidth", fig)]))
    return out


def write_training_report(path: str | Path, steps: pl.DataFrame, summary: pl.DataFrame, title: str,
                          description: str) -> Path:
    """The `netsim train` page: mean loss against simulated wall-clock, step and bytes, per method."""
    mean = (steps.group_by("method", "step", maintain_order=True)
            .agg(pl.col("loss").mean(), pl.col("time_s").max(), pl.col("sent_B").max()).sort("method", "step"))
    figures = []
    for x, axis, scale in (("time_s", "simulated wall-clock (s)", 1.0), ("step", "step", 1.0),
                           ("sent_B", "bytes sent (MB)", 1e-6)):
        fig = go.Figure()
        for method in summary["method"].to_list():
            part = mean.filter(pl.col("method") == method)
            fig.add_trace(go.Scatter(x=(part[x] * scale).to_list(), y=part["loss"].to_list(), mode="lines",
                                     name=plotly_text(method)))
        fig.update_layout(title=f"Training loss (mean over workers) against {axis}", xaxis_title=axis,
                          yaxis_title="loss (nats per byte)", height=420)
        figures.append((f"Loss against {axis}", fig))
    head = ["method", "final loss", "simulated wall-clock", "time to target loss", "bytes sent", "compute utilisation"]
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
            r["method"], f"{r['final_loss']:.4f}", format_time(r["wall_s"]),
            "-" if r["time_to_target_s"] is None else format_time(r["time_to_target_s"]), format_size(r["sent_B"]),
            f"{100 * r['utilization']:.1f}%")) + "</tr>" for r in summary.iter_rows(named=True))
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>",
             "<h2>Summary</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + cells + "</table>"]
    out = Path(path)
    write_page(out, _page(title, parts, figures))
    return out


def write_report(path: str | Path, results: Results, topology: Topology, summary: pl.DataFrame,
                 title: str, description: str = "") -> Path:
    """Write the report page; returns its path."""
    variants = summary["variant"].unique(maintain_order=True).to_list()
    first = variants[0]
    links = results.links.filter(pl.col("variant") == first) if "links" in results.frames else None
    figures: list[tuple[str, go.Figure]] = [
        ("Topology", topology_figure(topology, links, title=f"Topology {topology.name} — cables coloured by mean "
                                     f"utilisation under '{first}'")),
        ("Collectives", collective_timeline(results.collectives)),
    ]
    if "link_timeline" in results.frames:
        for v in variants:
            figures.append((f"Links — {v}", utilisation_heatmap(results.link_timeline, v)))
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    parts.append("<h2>Summary</h2>" + summary_html(summary, results.links if "links" in results.frames else None))
    parts.append('<p class="note">algbw = size / time; busbw = algbw x the nccl-tests factor (2(n-1)/n for '
                 "all-reduce, (n-1)/n for reduce-scatter, all-gather and all-to-all). Bandwidths in bits per "
                 "second.</p>")
    page = _page(title, parts, figures)
    out = Path(path)
    write_page(out, page)
    return out


LANE_COLOURS = {"compute": "#4c78a8", "send-q": "#f58518", "send-qg": "#f58518", "send-out": "#54a24b",
                "send-kv": "#e45756", "send-dkv": "#b279a2", "send-a2a": "#9d755d"}


def attention_gantt(tasks: pl.DataFrame, scheme: str) -> go.Figure:
    """Per rank, one row per lane (compute, send-Q, send-out, send-KV, ...): every task as a bar."""
    part = tasks.filter(pl.col("scheme") == scheme).sort("rank", "lane")
    fig = go.Figure()
    for lane in part["lane"].unique(maintain_order=True).to_list():
        rows = part.filter(pl.col("lane") == lane)
        fig.add_trace(go.Bar(
            y=[f"rank {r} {lane}" for r in rows["rank"].to_list()], x=((rows["end_s"] - rows["start_s"]) * 1e3).to_list(),
            base=(rows["start_s"] * 1e3).to_list(), orientation="h", name=plotly_text(lane),
            marker_color=LANE_COLOURS.get(lane, "#777"),
            customdata=list(zip(rows["step"].to_list(), rows["peer"].to_list(), rows["size_B"].to_list())),
            hovertemplate="step %{customdata[0]}, peer %{customdata[1]}, %{customdata[2]} B<br>"
                          "%{base:.3f} - %{x:.3f} ms<extra></extra>"))
    lanes = part.select("rank", "lane").unique().height
    fig.update_layout(barmode="overlay", title=f"{plotly_text(scheme)}: per rank and lane, each step's tasks",
                      xaxis=dict(title="time (ms)"), yaxis=dict(autorange="reversed"),
                      height=max(320, 22 * lanes + 120))
    return fig


def write_attention_report(path: str | Path, summary: pl.DataFrame, tasks: pl.DataFrame, links: pl.DataFrame,
                           sweep: pl.DataFrame | None, title: str, description: str) -> Path:
    """The `netsim attention` page: a table per scheme, a Gantt chart per scheme, bytes per link and
    direction, and the time against sequence length and against the number of GPUs."""
    head = ["scheme", "GPUs", "time per layer", "per step", "compute", "exposed comm", "bytes sent",
            "busiest link (direction)", "its mean utilisation"]
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
            r["scheme"], str(r["gpus"]), format_time(r["time_s"]), format_time(r["step_s"]), format_time(r["compute_s"]),
            format_time(r["exposed_comm_s"]), format_size(r["sent_B"]), r["busiest_link"],
            f"{100 * r['busiest_link_utilization']:.1f}%")) + "</tr>" for r in summary.iter_rows(named=True))
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>",
             "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + cells + "</table>"]
    figures = [(f"Timeline: {s}", attention_gantt(tasks, s)) for s in summary["scheme"].to_list()]
    top = (links.group_by("name").agg(pl.col("carried_B").sum().alias("total")).sort("total", descending=True)
           .head(24)["name"].to_list())
    fig = go.Figure()
    for scheme in summary["scheme"].to_list():
        part = links.filter((pl.col("scheme") == scheme) & pl.col("name").is_in(top))
        fig.add_trace(go.Bar(x=part["name"].to_list(), y=(part["carried_B"] / 1e6).to_list(), name=plotly_text(scheme)))
    fig.update_layout(barmode="group", title="Bytes per directed link (the busiest 24; a cable's two directions "
                      "are two bars)", yaxis=dict(title="MB"), height=480)
    figures.append(("Bytes per link and direction", fig))
    if sweep is not None and len(sweep):
        for axis, label in (("seq", "sequence length (tokens)"), ("gpus", "GPUs")):
            part = sweep.filter(pl.col("axis") == axis)
            if not len(part):
                continue
            fig = go.Figure()
            for scheme in part["scheme"].unique(maintain_order=True).to_list():
                rows = part.filter(pl.col("scheme") == scheme).sort("value")
                fig.add_trace(go.Scatter(x=rows["value"].to_list(), y=(rows["time_s"] * 1e3).to_list(),
                                         mode="lines+markers", name=plotly_text(scheme)))
            fig.update_layout(title=f"Time per layer against {label}", xaxis=dict(title=label, type="log"),
                              yaxis=dict(title="time per layer (ms)", type="log"), height=420)
            figures.append((f"Time against {label}", fig))
    out = Path(path)
    write_page(out, _page(title, parts, figures))
    return out


TRACE_COLOURS = {"compute": "#4c78a8", "collective": "#e45756", "send": "#f58518", "recv": "#54a24b"}


def write_replay_report(path: str | Path, result, title: str, description: str) -> Path:
    """The `netsim replay` page: the summary, a Gantt chart per rank (compute, collectives, sends,
    receives), and per collective call its simulated against its recorded time and its busbw."""
    rows = result.rows()
    table = "<table>" + "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in rows) + \
        "</table>"
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description)}</p>", table]
    t = result.timeline.filter(pl.col("end_s") > pl.col("start_s"))
    groups = alike_ranks(t)
    gantt = _replay_gantt(t, {ranks[0]: _ranks_label(ranks) for ranks in groups})
    figures = [("Timeline" + (f" (ranks with the same timeline drawn once: {len(groups)} rows for "
                              f"{result.ranks} ranks)" if len(groups) < result.ranks else ""), gantt)]
    c = result.collectives
    if len(c):
        fig = go.Figure()
        labels = [f"{g}#{k} {op}" for g, k, op in zip(c["group"].to_list(), c["call"].to_list(), c["op"].to_list())]
        fig.add_trace(go.Bar(x=labels, y=(c["time_s"] * 1e3).to_list(), name="simulated"))
        if c["recorded_s"].is_not_null().any():
            fig.add_trace(go.Bar(x=labels, y=(c["recorded_s"].fill_null(0) * 1e3).to_list(), name="recorded"))
        fig.update_layout(barmode="group", title="Collective calls: simulated and recorded time",
                          yaxis=dict(title="ms"), height=420)
        figures.append(("Collectives", fig))
    page = _page(title, parts, figures)
    if len(groups) < result.ranks:  # every rank, one row each, folded away until asked for
        full = _replay_gantt(t, {r: f"rank {r}" for r in sorted(set(t["rank"].to_list()))})
        every = full.to_html(full_html=False, include_plotlyjs=False, default_width="100%", div_id="figure-every-rank")
        page = page.replace("</body>", f"<details id='every-rank'><summary>Every rank, one row each ({result.ranks} "
                                       f"rows)</summary>{every}</details><script>document.getElementById('every-rank')"
                                       ".addEventListener('toggle', () => Plotly.Plots.resize('figure-every-rank'));"
                                       "</script></body>")
    out = Path(path)
    write_page(out, page)
    return out


def alike_ranks(timeline: pl.DataFrame) -> list[list[int]]:
    """Ranks grouped by timeline: the same kinds of node at the same instants (to 1e-6 of the run), in rank
    order of each group's first rank."""
    span = float(timeline["end_s"].max() or 1.0) if len(timeline) else 1.0
    signature: dict[tuple, list[int]] = {}
    for (rank,), part in sorted(timeline.group_by("rank"), key=lambda g: g[0]):
        key = tuple(sorted(zip(part["kind"].to_list(), (part["start_s"] / span).round(6).to_list(),
                               (part["end_s"] / span).round(6).to_list())))
        signature.setdefault(key, []).append(int(rank))
    return sorted(signature.values(), key=lambda ranks: ranks[0])


def _ranks_label(ranks: list[int]) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    runs, first = [], ranks[0]
    for a, b in zip(ranks, ranks[1:] + [None]):
        if b != a + 1:
            runs.append(f"{first}" if first == a else f"{first}-{a}")
            first = b
    shown = ",".join(runs)
    return f"ranks {shown if len(shown) < 40 else shown[:37] + '...'} ({len(ranks)} alike)"


def _replay_gantt(t: pl.DataFrame, rows: dict[int, str]) -> go.Figure:
    """One row per rank in `rows` (rank -> its row label): compute, collectives, sends and receives."""
    t = t.filter(pl.col("rank").is_in(list(rows)))
    gantt = go.Figure()
    for kind in ("compute", "collective", "send", "recv"):
        part = t.filter(pl.col("kind") == kind)
        if not len(part):
            continue
        gantt.add_trace(go.Bar(y=[rows[r] for r in part["rank"].to_list()],
                               x=((part["end_s"] - part["start_s"]) * 1e3).to_list(), base=(part["start_s"] * 1e3).to_list(),
                               orientation="h", name=kind, marker_color=TRACE_COLOURS[kind], opacity=0.8,
                               customdata=list(zip(part["name"].to_list(), part["size_B"].to_list())),
                               hovertemplate="%{customdata[0]}, %{customdata[1]} B<br>%{base:.3f} ms + %{x:.3f} ms"
                                             "<extra></extra>"))
    gantt.update_layout(barmode="overlay", title="Per rank: compute, collectives, sends and receives",
                        xaxis=dict(title="simulated time (ms)", side="top"), yaxis=dict(autorange="reversed"),
                        height=max(300, 28 * len(rows) + 140))
    return gantt


def _among(count: int) -> str:
    return f" (+{count} among candidates)" if count else ""


def write_faults_report(path: str | Path, title: str, runs: pl.DataFrame | None, faults: pl.DataFrame | None,
                        campaign=None) -> Path:
    """The `netsim faults` page: for one run, the downtime breakdown with and without detection and the
    faults; for a campaign, recall and precision per fault kind, detection latencies, and the overhead
    with and without detection."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    figures = []
    parts_of = ("lost_work_s", "detection_s", "restart_s", "slowed_s")
    if runs is not None:
        fig = go.Figure()
        labels = ["with detection" if m == "detector" else "without (watchdog)" for m in runs["mode"].to_list()]
        for key in parts_of:
            fig.add_trace(go.Bar(x=labels, y=runs[key].to_list(), name=key.removesuffix("_s").replace("_", " ")))
        fig.update_layout(barmode="stack", title="Time lost against the fault-free run",
                          yaxis=dict(title="time lost (s)", rangemode="tozero"), height=420)
        figures.append(("Downtime", fig))
        totals = [("wall-clock", "wall_s"), ("fault-free", "fault_free_s"), ("overhead", "overhead_s"),
                  ("  lost work", "lost_work_s"),
                  ("  detection", "detection_s"), ("  restart", "restart_s"), ("  slowed iterations", "slowed_s")]
        modes = runs["mode"].to_list()
        head = "<tr><th></th>" + "".join(f"<th>{'with detection' if m == 'detector' else 'without (watchdog)'}</th>"
                                         for m in modes) + "</tr>"
        body = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(
            f"<td>{html.escape(format_time(v))}</td>" for v in runs[key].to_list()) + "</tr>"
            for label, key in totals if key in runs.columns)
        if "iterations_per_s" in runs.columns:
            body += "<tr><td>iterations / s</td>" + "".join(f"<td>{v:.4g}</td>" for v in runs["iterations_per_s"]) + \
                "</tr>"
        parts.append(f"<h2>Runs</h2><table>{head}{body}</table>")
        head = "".join(f"<th>{html.escape(column_heading(c))}</th>" for c in faults.columns)
        body = "".join("<tr>" + "".join(
            f"<td>{html.escape(format_value(c, v))}</td>"
            for c, v in zip(faults.columns, row)) + "</tr>" for row in faults.rows())
        parts.append(f"<h2>Faults</h2><table><tr>{head}</tr>{body}</table>")
    if campaign is not None:
        c = campaign.classes
        head = "<tr><th>fault</th><th>class</th><th>recall</th><th>class precision</th><th>place precision</th>" \
               "<th>place recall</th><th>median latency</th><th>overhead with</th><th>overhead without</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(r['kind'])}</td><td>{html.escape(r['class'])}</td>"
            f"<td>{r['right_class_and_place']}/{r['injected']}{_among(r['among_candidates'])}</td>"
            f"<td>{'-' if r['class_precision'] is None else format(r['class_precision'], '.2f')}</td>"
            f"<td>{'-' if r['place_precision'] is None else format(r['place_precision'], '.2f')}</td>"
            f"<td>{format(r['place_recall'], '.2f')}</td>"
            f"<td>{'-' if r['latency_median_s'] is None else format_time(r['latency_median_s'])}</td>"
            f"<td>{format_time(r['overhead_with_s'])}</td><td>{format_time(r['overhead_without_s'])}</td></tr>"
            for r in c.iter_rows(named=True))
        rate = campaign.false_alarms / campaign.checks if campaign.checks else 0.0
        parts.append(f"<table>{head}{body}</table><p>false alarms: {campaign.false_alarms} in {campaign.checks} "
                     f"checks ({rate:.2g} per check)</p>")
        shares = [p for p in PARTS if p + "_share" in campaign.downtime.columns]
        head = "<tr><th></th><th>runs</th><th>wall-clock</th><th>lost to errors</th>" + "".join(
            f"<th>{html.escape(p.replace('_', ' '))}</th>" for p in shares) + "</tr>"
        body = "".join(
            f"<tr><td>{'with detection' if r['mode'] == 'detector' else 'without (watchdog)'}</td><td>{r['runs']}</td>"
            f"<td>{html.escape(format_time(r['wall_s']))}</td><td>{100 * r['downtime_share']:.1f}%</td>"
            + "".join(f"<td>{100 * r[p + '_share']:.1f}%</td>" for p in shares) + "</tr>"
            for r in campaign.downtime.iter_rows(named=True))
        parts.append(f"<h2>Error-induced downtime, the whole campaign</h2><p>The share of all runs' wall-clock "
                     f"that errors cost, and its parts (they add up to it).</p><table>{head}{body}</table>")
        fig = go.Figure()
        labels = ["with detection" if m == "detector" else "without (watchdog)"
                  for m in campaign.downtime["mode"].to_list()]
        for p in shares:
            fig.add_trace(go.Bar(x=labels, y=(100 * campaign.downtime[p + "_share"]).to_list(),
                                 name=p.replace("_", " ")))
        fig.update_layout(barmode="stack", title="Error-induced downtime share of the campaign's wall-clock",
                          yaxis=dict(title="% of wall-clock", rangemode="tozero"), height=420)
        figures.append(("Downtime share", fig))
        runs_ = campaign.runs
        det = runs_.filter((pl.col("mode") == "detector") & pl.col("latency_s").is_not_null())
        fig = go.Figure()
        for kind in det["kind"].unique(maintain_order=True).to_list():
            fig.add_trace(go.Box(y=det.filter(pl.col("kind") == kind)["latency_s"].to_list(), name=plotly_text(kind)))
        fig.update_layout(title="Detection latency per fault kind (log scale)",
                          yaxis=dict(title="detection latency (s, log)", type="log"), height=420)
        figures.append(("Detection latency", fig))
        fig = go.Figure()
        for mode, label in (("detector", "with detection"), ("none", "without (watchdog)")):
            part = runs_.filter(pl.col("mode") == mode).group_by("kind", maintain_order=True).agg(
                pl.col("overhead_s").mean())
            fig.add_trace(go.Bar(x=part["kind"].to_list(), y=part["overhead_s"].to_list(), name=label))
        fig.update_layout(barmode="group", title="Mean time lost per run (log scale: link faults cost seconds, "
                          "hangs without detection up to the watchdog; none or negative: not drawn, see the table)",
                          yaxis=dict(title="time lost (s, log)", type="log"), height=420)
        figures.append(("Overhead", fig))
    out = Path(path)
    write_page(out, _page(title, parts, figures))
    return out


def write_production_report(path: str | Path, title: str, result) -> Path:
    """The `netsim faults --production` page: the error-induced downtime share per mode and its parts (a
    table, and bars on a log scale: the parts differ by orders of magnitude), then the fault timeline of
    the first seed — per mode, each fault a marker where it struck (its kind), a line to where it was
    detected and another to where the job was back."""
    downtime, faults = result.downtime, result.faults
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{result.days:g} days of fault-free training per run (iteration {format_time(result.iteration_s)}), "
             f"{downtime['runs'][0]} fault stream(s); the same faults in every mode. Checkpoint writes are paid "
             "with or without faults: they are shown, not counted as error-induced.</p>"]
    modes = downtime["mode"].to_list()
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(MODE_LABELS.get(m, m))}</th>" for m in modes) + "</tr>"
    rows = [("wall-clock", [format_time(v) for v in downtime["wall_s"]]),
            ("error-induced downtime", [f"{100 * v:.2f}%" for v in downtime["downtime_share"]])]
    rows += [(f"  {p.replace('_', ' ')}", [f"{100 * v:.3f}%" for v in downtime[p + "_share"]]) for p in PARTS]
    body = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{html.escape(v)}</td>" for v in values)
                   + "</tr>" for label, values in rows)
    parts.append(f"<h2>Downtime share of the wall-clock</h2><table>{head}{body}</table>")
    head = "<tr><th>source</th><th>MTBF</th><th>per</th><th>shows as</th><th>where the rate comes from</th></tr>"
    body = "".join(f"<tr><td>{html.escape(name)}</td><td>{c.mtbf_hours:,.0f} h</td><td>{html.escape(c.per)}</td>"
                   f"<td>{html.escape(', '.join(f'{k} {100 * v:.0f}%' for k, v in c.kinds.items()))}</td>"
                   f"<td>{html.escape(c.source)}</td></tr>" for name, c in result.sources.items())
    parts.append(f"<h2>Fault sources</h2><table>{head}{body}</table>")
    figures = []
    fig = go.Figure()
    for p in PARTS:
        fig.add_trace(go.Bar(x=[MODE_LABELS.get(m, m) for m in modes], y=(100 * downtime[p + "_share"]).to_list(),
                             name=p.replace("_", " ")))
    fig.update_layout(barmode="group", title="Each part's share of the wall-clock (log scale; a part that cost "
                      "nothing is not drawn)", yaxis=dict(title="% of wall-clock (log)", type="log"), height=440)
    figures.append(("Downtime parts", fig))
    first = faults.filter(pl.col("seed") == faults["seed"].min()) if len(faults) else faults
    fig = go.Figure()
    day = 86400.0
    for kind in first["kind"].unique(maintain_order=True).to_list() if len(first) else []:
        sel = first.filter(pl.col("kind") == kind)
        fig.add_trace(go.Scatter(x=(sel["struck_s"] / day).to_list(),
                                 y=[MODE_LABELS.get(m, m) for m in sel["mode"].to_list()], mode="markers",
                                 name=plotly_text(kind), marker=dict(size=9),
                                 text=[plotly_text(t) for t in sel["target"].to_list()],
                                 hovertemplate="%{text}<br>struck at day %{x:.3f}<extra>" + plotly_text(kind)
                                 + "</extra>"))
    for row in first.iter_rows(named=True):
        y = MODE_LABELS.get(row["mode"], row["mode"])
        if row["struck_s"] is None:
            continue
        for end, colour in ((row["detected_s"], "rgba(200,0,0,0.5)"), (row["recovered_s"], "rgba(0,0,0,0.25)")):
            if end is not None:
                fig.add_trace(go.Scatter(x=[row["struck_s"] / day, end / day], y=[y, y], mode="lines",
                                         line=dict(color=colour, width=6), showlegend=False, hoverinfo="skip"))
    fig.update_layout(title="Fault timeline, first stream (markers: a fault strikes; red: until detected; grey: "
                      "until the job is back)", xaxis=dict(title="simulated time (days)"), height=420)
    figures.append(("Fault timeline", fig))
    if len(faults):
        table = faults.filter(pl.col("mode") == modes[0]).group_by("component", "kind").agg(
            pl.len().alias("struck"), (pl.col("detected_s") - pl.col("struck_s")).median().alias("latency_s"),
            (pl.col("recovered_s") - pl.col("struck_s")).median().alias("back_s")).sort("component", "kind")
        head = "<tr><th>component</th><th>kind</th><th>struck</th><th>median to detection</th>" \
               "<th>median until back</th></tr>"
        body = "".join(f"<tr><td>{html.escape(r['component'])}</td><td>{html.escape(r['kind'])}</td>"
                       f"<td>{r['struck']}</td><td>{'-' if r['latency_s'] is None else format_time(r['latency_s'])}</td>"
                       f"<td>{'-' if r['back_s'] is None else format_time(r['back_s'])}</td></tr>"
                       for r in table.iter_rows(named=True))
        parts.append(f"<h2>Faults ({html.escape(MODE_LABELS.get(modes[0], modes[0]))}), every stream</h2>"
                     f"<table>{head}{body}</table>")
    out = Path(path)
    write_page(out, _page(title, parts, figures))
    return out


def _variant(row: dict, params: list[str]) -> str:
    return ", ".join(f"{p}={row[p]}" for p in params) if params else "all"


def write_sweep_table_report(path: str | Path, table: pl.DataFrame, params: list[str], metrics: list[str],
                             title: str, along: list[str] | None = None) -> Path:
    """The `netsim sweep` page: each metric against each parameter swept along an axis (`along`: the grid's;
    default all), one line per combination of the other parameters — variants are never averaged into one
    line — on a y axis from zero with the metric's unit; a heatmap when exactly two parameters were swept
    and both are axes; then the table, numbers formatted with their units."""
    skip = {"point", "run", "error", *params, *(f"{p}_{unit}" for p in params for unit in ("Bps", "s", "B"))}
    numeric = [c for c in table.columns if c not in skip and table[c].dtype.is_numeric()]
    shown = [m for m in (metrics or numeric) if m in numeric][:4]
    ok = table.filter(pl.col("error").is_null()) if "error" in table.columns else table
    axes = [p for p in (params if along is None else along) if p in params and ok[p].n_unique() > 1]
    figures = []
    for metric in shown:
        label = column_heading(metric)
        positive = ok[metric].drop_nulls().min() is not None and ok[metric].drop_nulls().min() >= 0
        for param in axes or params[:1]:
            others = [q for q in params if q != param and ok[q].n_unique() > 1]
            fig = go.Figure()
            keyed = ok.with_columns(pl.Series("_variant", [_variant(r, others) for r in ok.iter_rows(named=True)]))
            for variant in keyed["_variant"].unique(maintain_order=True).to_list():
                part = keyed.filter(pl.col("_variant") == variant)
                fig.add_trace(go.Scatter(x=[str(x) for x in part[param].to_list()], y=part[metric].to_list(),
                                         mode="lines+markers", name=plotly_text(variant)))
            fig.update_layout(title=plotly_text(f"{metric} against {param}"), xaxis=dict(title=plotly_text(param)),
                              yaxis=dict(title=plotly_text(label), rangemode="tozero" if positive else "normal"),
                              height=420, legend=dict(orientation="h", y=-0.25))
            figures.append((f"{metric} against {param}", fig))
        if len(params) == 2 and len(axes) == 2:
            a, b = params
            agg = ok.group_by(a, b, maintain_order=True).agg(pl.col(metric).first())
            xs = [str(x) for x in agg[a].unique(maintain_order=True).to_list()]
            ys = [str(y) for y in agg[b].unique(maintain_order=True).to_list()]
            z = [[None] * len(xs) for _ in ys]
            for r in agg.iter_rows(named=True):
                z[ys.index(str(r[b]))][xs.index(str(r[a]))] = r[metric]
            fig = go.Figure(go.Heatmap(x=xs, y=ys, z=z, colorbar=dict(title=plotly_text(label))))
            fig.update_layout(title=plotly_text(f"{metric}: {a} x {b}"), xaxis=dict(title=plotly_text(a)),
                              yaxis=dict(title=plotly_text(b)), height=420)
            figures.append((f"{metric}: {a} x {b}", fig))
    cols = [c for c in table.columns if c != "run"][:14]
    head = "".join(f"<th>{html.escape(column_heading(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(c, v))}</td>" for c, v in zip(cols, row))
                   + "</tr>" for row in table.select(cols).head(500).rows())
    parts = [f"<h1>{html.escape(title)}</h1>", f"<table><tr>{head}</tr>{body}</table>"]
    out = Path(path)
    write_page(out, _page(title, parts, figures))
    return out

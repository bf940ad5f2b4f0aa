"""The report pages as files: self-contained, SVG-only figures, user text escaped, byte-identical reruns."""

import html
import json
import re

import polars as pl
import pytest

from netsim.report import write_compare_report
from netsim.report.figures import plotly_text
from netsim.topology import full_mesh

from tests.report.conftest import HOSTILE

KINDS = ["run", "bench", "compare", "sweep", "train"]
# plotly trace types drawn with WebGL: *gl, *3d, the map family and a few more
WEBGL = re.compile(r"gl$|3d$|mapbox$|^(scattermap|densitymap|choroplethmap|surface|cone|streamtube|volume|isosurface|"
                   r"splom|parcoords|pointcloud)$")


def figure_data(page: str) -> list[list[dict]]:
    """The traces of each `Plotly.newPlot(id, data, layout, config)` call on the page."""
    decoder = json.JSONDecoder()
    out = []
    for call in page.split("Plotly.newPlot(")[1:]:
        rest = call.lstrip()
        _div_id, end = decoder.raw_decode(rest)
        data, _ = decoder.raw_decode(rest[end:].lstrip().removeprefix(",").lstrip())
        out.append(data)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_page_is_self_contained_svg_only_and_escapes_user_text(reports, kind):
    report = reports[kind]
    page = report.path.read_text(encoding="utf-8")
    assert "<script src=" not in page and "<link" not in page  # plotly.js inlined: works offline
    figures = figure_data(page)
    assert len(figures) == report.plots
    types = {t.get("type", "scatter") for data in figures for t in data}
    assert not {t for t in types if WEBGL.search(t)}, types  # no WebGL: pages draw without a GPU
    assert all(data for data in figures)
    assert "<script>window.__xss" not in page and '<b id="xss">' not in page and "<img" not in page
    assert f"<title>{html.escape(report.title)}</title>" in page


def test_rerun_gives_a_byte_identical_page(reports, tmp_path):
    from netsim.cli import main

    first = reports["bench"].path
    topo = first.parent.parent / "topology.yaml"
    assert main(["bench", "--topology", str(topo), "-b", "1K", "-e", "64K", "-f", "4", "--algo", "ring,tree",
                 "-o", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.html").read_bytes() == first.read_bytes()


def test_plotly_text_keeps_markup_and_entities_literal():
    assert plotly_text(HOSTILE) == html.escape(HOSTILE, quote=False)
    assert plotly_text("a<b>&amp;") == "a&lt;b&gt;&amp;amp;"  # plotly decodes these back to what was typed
    assert plotly_text(3) == "3"


def test_compare_page_leaves_out_the_step_figure_when_no_step_crosses_the_fabric(tmp_path):
    table = pl.DataFrame({"variant": ["ecmp"], "job": ["a"], "label": ["x"], "time_mean_s": [1e-3], "busbw_Bps": [1e9],
                          "pct_of_ideal": [100.0], "slowdown": [1.0], "worst_step_load_ratio": [None]})
    steps = pl.DataFrame({"variant": ["ecmp"], "max_load_B": [0.0], "lower_bound_B": [0.0]})
    topo = full_mesh(2, 1e9, 1e-6)
    links = pl.DataFrame({"variant": ["ecmp"], "tier": ["fabric"], "carried_B": [0], "link": [0],
                          "name": [topo.node_names[0]]})
    path = write_compare_report(tmp_path / "r.html", table, steps, links, "t", "d")
    assert len(figure_data(path.read_text(encoding="utf-8"))) == 3


def test_webgl_pattern():
    assert WEBGL.search("scattergl") and WEBGL.search("heatmapgl") and WEBGL.search("scattermapbox")
    assert not any(WEBGL.search(t) for t in ("scatter", "heatmap", "bar", "box"))

"""Every report opened in headless Chromium: plots drawn with data, no errors, no network, user text as typed.

Needs Playwright's Python package and a Chromium executable (NETSIM_CHROMIUM, /usr/bin/chromium or `chromium`
on PATH); Playwright's own browser download is not used. Without either the tests skip, saying why.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.report.conftest import HOSTILE

KINDS = ["run", "bench", "compare", "sweep", "train", "attention", "replay", "sweep-table", "faults", "replay-alike"]
# headless, no GPU, and nothing that reaches out to the network on its own
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Per plotly div: is it a drawn plot, its trace types, points per trace, SVG layers, marks drawn, its text.
PLOTS_JS = """() => [...document.querySelectorAll('.plotly-graph-div')].map(gd => ({
    drawn: gd.classList.contains('js-plotly-plot') && !!gd._fullLayout,
    types: (gd._fullData || []).map(t => t.type),
    points: (gd._fullData || []).map(t => Math.max(0, ...['x', 'y', 'z'].map(k => (t[k] && t[k].length) || 0))),
    svgs: gd.querySelectorAll('svg.main-svg').length,
    marks: [...gd.querySelectorAll('.cartesianlayer g.trace path, .cartesianlayer image')]
        .filter(e => e.tagName === 'image' || (e.getAttribute('d') || '').length > 2).length,
    text: [...gd.querySelectorAll('svg.main-svg text')].map(e => e.textContent).join('\\n'),
}))"""

ALL_DRAWN_JS = """() => [...document.querySelectorAll('.plotly-graph-div')]
    .every(gd => gd._fullLayout && gd.querySelector('svg.main-svg'))"""


def chromium_executable() -> str | None:
    override = os.environ.get("NETSIM_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright): browser tests skipped")
    executable = chromium_executable()
    if executable is None:
        where = os.environ.get("NETSIM_CHROMIUM") or "/usr/bin/chromium or `chromium` on PATH"
        pytest.skip(f"no Chromium executable ({where}; apt-get install chromium, or set NETSIM_CHROMIUM): "
                    "browser tests skipped")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_report(browser, path: Path):
    """The page once every plot is drawn, with what it logged, threw and requested."""
    url = path.resolve().as_uri()
    page = browser.new_page()
    page.set_default_timeout(20_000)
    log = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: log["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("request", lambda r: log["requests"].append(r.url))
    # anything but the page itself is refused, so a stray fetch fails here rather than reaching out
    page.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page.goto(url, wait_until="load")
    page.wait_for_function(ALL_DRAWN_JS)
    return page, url, log


@pytest.mark.parametrize("kind", KINDS)
def test_report_draws_in_a_browser_offline_without_errors(browser, reports, kind):
    report = reports[kind]
    page, url, log = open_report(browser, report.path)
    try:
        plots = page.evaluate(PLOTS_JS)
        assert log["errors"] == []
        assert [m for m in log["console"] if m.startswith(("error", "warning"))] == []
        assert log["requests"] == [url]  # no CDN, no fonts, no images: the page works offline
        assert page.evaluate("() => document.querySelectorAll('canvas').length") == 0  # SVG only, no WebGL
        assert len(plots) == report.plots
        for i, plot in enumerate(plots):
            where = f"{kind} plot {i}: {plot['types']}"
            assert plot["drawn"] and plot["svgs"] >= 1, where
            assert plot["types"] and max(plot["points"]) > 0, where
            assert not any(t.endswith("gl") for t in plot["types"]), where
            assert plot["marks"] > 0, where  # lines, markers, bars, boxes or the heatmap image are on the SVG
        # the user's string is shown as typed: text, never markup
        assert page.title() == report.title
        assert HOSTILE in page.evaluate("() => document.body.innerText")
        assert page.evaluate("() => window.__xss") is None
        assert page.evaluate("() => document.querySelector('#xss, img')") is None
        if report.hostile_in_plots:
            assert any(HOSTILE in plot["text"] for plot in plots)
    finally:
        page.close()


AXES_JS = """() => [...document.querySelectorAll('.plotly-graph-div')].map(gd => ({
    id: gd.id, names: (gd._fullData || []).map(t => t.name),
    ytitle: (gd._fullLayout.yaxis && gd._fullLayout.yaxis.title && gd._fullLayout.yaxis.title.text) || '',
    xtitle: (gd._fullLayout.xaxis && gd._fullLayout.xaxis.title && gd._fullLayout.xaxis.title.text) || '',
    yrange: gd._fullLayout.yaxis ? gd._fullLayout.yaxis.range : null,
    ytype: gd._fullLayout.yaxis ? gd._fullLayout.yaxis.type : null,
}))"""


def test_reports_people_can_read(browser, reports):
    """What a reader saw wrong, asserted in the drawn pages: sweep variants are never merged into one line,
    axes say their units and start at zero (or are marked log), bench has a log-log time plot, identical
    replay ranks are drawn once, and the fault report's numbers carry units."""
    page, _, _ = open_report(browser, reports["sweep-table"].path)
    try:
        plots = page.evaluate(AXES_JS)
        for plot in plots:
            assert len(plot["names"]) == len(set(plot["names"])) == 2, plot  # overlap=0 and overlap=1 apart
            assert all("overlap=0" in n or "overlap=1" in n for n in plot["names"]), plot
            assert plot["yrange"][0] <= 0 + 1e-12, plot  # from zero: a 3% gap looks like 3%
        assert {p["ytitle"] for p in plots} == {"utilization (fraction, 1 = all the time)", "wall_s (s)"}
    finally:
        page.close()
    page, _, _ = open_report(browser, reports["bench"].path)
    try:
        plots = page.evaluate(AXES_JS)
        assert any(p["ytype"] == "log" and "us" in p["ytitle"] and "log" in p["xtitle"] for p in plots)
        assert all("GB/s" in p["ytitle"] or "us" in p["ytitle"] for p in plots)
    finally:
        page.close()
    page, _, _ = open_report(browser, reports["replay-alike"].path)
    try:
        import re

        found = re.search(r"(\d+) rows for 16 ranks", page.evaluate("() => document.body.innerText"))
        assert found and int(found.group(1)) < 16
        assert page.evaluate("() => document.querySelector('details#every-rank') !== null")
    finally:
        page.close()
    page, _, _ = open_report(browser, reports["faults"].path)
    try:
        text = page.evaluate("() => document.body.innerText")
        assert "with detection" in text and "wall-clock" in text and "True" not in text
        assert not any(len(w) > 12 and w.replace(".", "").isdigit() for w in text.split())  # no raw floats
    finally:
        page.close()


def test_a_report_sharing_plotly_js_draws_from_the_file_beside_it(browser, tmp_path):
    """`netsim --shared-plotly ...`: the page references plotly.min.js beside it (16 KB instead of 4.6 MB)
    and draws from it, requesting nothing else."""
    from netsim.cli import main

    out = tmp_path / "b"
    assert main(["--shared-plotly", "bench", "--topology", "nvlink8", "-b", "1M", "-e", "4M", "-o", str(out)]) == 0
    page_path, js = out / "report.html", out / "plotly.min.js"
    assert js.stat().st_size > 1_000_000 and page_path.stat().st_size < 100_000
    url, allowed = page_path.resolve().as_uri(), {page_path.resolve().as_uri(), js.resolve().as_uri()}
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.route("**/*", lambda route: route.continue_() if route.request.url in allowed else route.abort())
    try:
        page.goto(url, wait_until="load")
        page.wait_for_function(ALL_DRAWN_JS)
        assert set(requests) == allowed
        assert len(page.evaluate(PLOTS_JS)) == 2
    finally:
        page.close()
    assert main(["bench", "--topology", "nvlink8", "-b", "1M", "-e", "4M", "-o", str(tmp_path / "c")]) == 0
    assert not (tmp_path / "c" / "plotly.min.js").exists()  # the default stays self-contained

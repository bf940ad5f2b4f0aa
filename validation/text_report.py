"""What the validations share: where they write, and printing a text report that is also kept as a file.

Every script writes into `out/validation/` of the checkout (ignored by git), or into the folder named by
the environment variable NETSIM_RESULTS. The checked-in `validation/results/` are the recorded
references the README quotes; refresh them on purpose with ``NETSIM_RESULTS=validation/results``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """The folder the validations write into (created if missing)."""
    out = Path(os.environ.get("NETSIM_RESULTS") or ROOT / "out" / "validation")
    out.mkdir(parents=True, exist_ok=True)
    return out


def publish(name: str, lines: list[str]) -> None:
    """Print `lines` and write them to `results_dir()`/`name`.txt."""
    text = "\n".join(lines) + "\n"
    print(text, end="")
    path = results_dir() / f"{name}.txt"
    path.write_text(text)
    print(f"(written to {path})")


def publish_checks(name: str, lines: list[str], checks: list[tuple[str, bool]], started: float) -> int:
    """`lines`, then each check (`ok` or `MISS` and what it says) and the seconds since `started`, printed and
    written as `publish` does; the exit status: 0 when every check holds, else 1."""
    import time

    lines = lines + ["", "checks:"] + [f"  [{'ok' if ok else 'MISS'}] {text}" for text, ok in checks]
    publish(name, lines + [f"({time.perf_counter() - started:.0f} s)"])
    return 0 if all(ok for _, ok in checks) else 1


def snapshot(fig, png: Path, width: int = 1400, height: int = 540) -> None:
    """A PNG of a plotly figure by headless Chromium (when installed), from a self-contained page in a temporary
    folder; without Chromium the old PNG stays and a line says so."""
    import shutil
    import subprocess
    import tempfile

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print(f"no chromium: {png.name} not refreshed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "figure.html"
        fig.write_html(page, include_plotlyjs=True)
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={tmp}/profile", f"--window-size={width},{height}", f"--screenshot={png}",
                        page.as_uri()], check=True, capture_output=True, timeout=120)

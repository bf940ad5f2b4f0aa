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

"""Run a plain torch.distributed test script on N local ranks, as torchrun would (`netsim.training.launch`),
with ``BACKEND`` and ``OUT`` in its environment."""

from __future__ import annotations

from pathlib import Path

from netsim.training.launch import failure_report, run_ranks


def launch(script: str | Path, nproc: int, backend: str, out: Path, record: Path | None = None,
           env: dict | None = None, timeout: float = 120) -> None:
    """Run `script` on `nproc` ranks with ``BACKEND=backend`` and ``OUT=out`` (created) in their
    environment, recording to `record` if given; a rank that fails is an AssertionError with its output."""
    out.mkdir(parents=True)
    codes = run_ranks(script, [], nproc, logs=out, record=record, timeout=timeout, route=False,
                      env={"BACKEND": backend, "OUT": str(out), **(env or {})})
    assert not any(codes.values()), failure_report(codes, out)

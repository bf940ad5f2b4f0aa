"""Utilisation against bandwidth for several methods, and the lowest bandwidth reaching each target."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from netsim.errors import ConfigError
from netsim.workloads.limits import number
from netsim.workloads.methods import check_method
from netsim.workloads.utilization import UtilizationConfig, utilization

DEFAULT_GRID = np.logspace(-1, 3, 50) * 1e9 / 8  # 0.1 to 1000 Gbit/s, in bytes/s
DEFAULT_TARGETS = (0.5, 0.8, 0.9, 0.95, 0.99)


def sweep_bandwidth(methods: list[str], grid: np.ndarray, config: UtilizationConfig) -> pl.DataFrame:
    """One `utilization` run per (method, bandwidth): `config` with its method and bandwidth replaced."""
    for method in methods:
        check_method(method, field="methods")
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or not len(grid) or not (np.isfinite(grid) & (grid > 0)).all():
        raise ConfigError("expected a non-empty list of finite bandwidths > 0", field="grid")
    rows = []
    for method in methods:
        for bw in grid:
            r = utilization(replace(config, method=method, bandwidth=float(bw)))
            rows.append({"method": method, "bandwidth_Bps": float(bw), "utilization": r.utilization,
                         "wall_s": r.wall_s, "sent_per_worker_B": r.sent_per_worker_B,
                         "peak_demand_Bps": r.peak_demand_Bps})
    return pl.DataFrame(rows)


def thresholds(frame: pl.DataFrame, targets: tuple[float, ...]) -> pl.DataFrame:
    """Per method and target: the lowest grid bandwidth whose utilisation reaches the target (null: none)."""
    for target in targets:
        number(target, "targets", lo=0, lo_open=True, hi=1)
    rows = []
    for method in frame["method"].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("method") == method).sort("bandwidth_Bps")
        for target in targets:
            hit = part.filter(pl.col("utilization") >= target)
            rows.append({"method": method, "target": target,
                         "bandwidth_Bps": float(hit["bandwidth_Bps"][0]) if len(hit) else None})
    return pl.DataFrame(rows, schema={"method": pl.Utf8, "target": pl.Float64, "bandwidth_Bps": pl.Float64})

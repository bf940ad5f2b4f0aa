"""Calibrate a fabric from a user's own nccl-tests runs: a per-connection bandwidth and latency, fitted.

Two numbers describe what a cluster's software adds to its cables, and `netsim calibrate` fits both from
real `*_perf` outputs (`netsim.workloads.nccl_tests`):

    connection_bandwidth   B, the most one connection gets
    connection_latency     L, what every transfer pays before its first byte lands

While the cap binds, a call's simulated time is linear in 1/B and in L: t = c + w / B + s L, where w (the
bytes on the call's critical path) and s (its transfers) come from simulations at two caps and with a probe
latency, and c is what the links' own latency adds. Least squares on the relative error over every size of
every run, sum((t_i / m_i - 1)^2), is then a linear problem in (1/B, L); L is floored at 0. The starting cap
is the median busbw of each run's three largest sizes (a ring's busbw is its per-connection rate).

Both are written into a copy of the topology file (fields any topology kind takes), and the fit is
reported as the geometric mean of |simulated / measured - 1| before and after, per run.

>>> from netsim.topology import load_topology
>>> from netsim.workloads.nccl_tests import MeasuredRow, Measurement
>>> topo = load_topology("nvlink8")
>>> def ring(size):   # a "real" 8-GPU ring all-reduce: 100 GB/s per connection, 20 us per transfer
...     t = 14 * 20e-6 + 2 * 7 / 8 * size / 100e9
...     return MeasuredRow(size, t, size / t * 2 * 7 / 8, None, None)
>>> fit = calibrate(topo, [Measurement("log", "all_reduce", 8, tuple(ring(2**k) for k in range(16, 31, 2)))],
...                 algo="ring")
>>> round(fit.connection_bandwidth / 1e9, 2), round(fit.connection_latency * 1e6, 2)   # (links: 1 us a hop)
(100.0, 19.0)
>>> [r.error_after < 1e-5 < r.error_before for r in fit.runs]   # exact after; the topology as given was not
[True]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from netsim.errors import ConfigError
from netsim.topology import Topology
from netsim.workloads.collective_bench import geometric_mean_error, run_bench
from netsim.workloads.nccl_tests import Measurement

PLATEAU_SIZES = 3  # the largest sizes of a run whose busbw is its plateau
PROBE = 1e-6  # seconds of per-transfer latency added to find each call's latency count


@dataclass(frozen=True)
class RunFit:
    source: str
    op: str
    ranks: int
    sizes: int
    plateau_busbw_Bps: float
    error_before: float  # geometric mean of |simulated / measured - 1|, the topology as given
    error_after: float  # the same, calibrated


@dataclass(frozen=True)
class Calibration:
    connection_bandwidth: float  # bytes/s
    connection_latency: float  # seconds
    runs: tuple[RunFit, ...]
    link_limited: bool  # the topology's links are below the measured plateau: the cap cannot bind


def _with(topo: Topology, **meta) -> Topology:
    return replace(topo, meta={**topo.meta, **meta})


def _times(topo: Topology, m: Measurement, op: str, ranks: int, algo: str, network: str, routing: str,
           seed: int) -> np.ndarray:
    rows = run_bench(topo, op, [r.size_B for r in m.rows], [algo], ranks=ranks, network=network, routing=routing,
                     seed=seed)
    return np.array([r.time_s for r in rows])


def calibrate(topo: Topology, measurements: list[Measurement], *, op: str | None = None, ranks: int | None = None,
              algo: str = "auto", network: str = "fluid", routing: str = "ecmp", seed: int = 0) -> Calibration:
    """Fit `connection_bandwidth` and `connection_latency` of `topo` to the measured runs (see the module
    docstring). `op` and `ranks` apply to runs whose output does not name them."""
    if not measurements:
        raise ConfigError("give at least one nccl-tests output", field="FILE")
    base = _with(topo, connection_bandwidth=None, connection_latency=None)
    plan = []
    for m in measurements:
        run_op = m.op or op
        if run_op is None:
            raise ConfigError("the output does not name its test (no '*_perf' line); say which with --op",
                              source=m.source, field="--op")
        n = m.ranks or ranks or len(topo.gpus)
        if not 2 <= n <= len(topo.gpus):
            raise ConfigError(f"the run has {n} ranks; the topology {topo.name!r} has {len(topo.gpus)} GPUs",
                              source=m.source, field="--ranks")
        measured = np.array([r.time_s for r in m.rows])
        if (measured <= 0).any():
            raise ConfigError("a size measured in 0 us: nothing to fit", source=m.source, field="time")
        top = sorted(m.rows, key=lambda r: r.size_B)[-PLATEAU_SIZES:]
        plan.append((m, run_op, n, measured, float(np.median([r.busbw_Bps for r in top]))))
    start = float(np.median([p[4] for p in plan]))
    if not start > 0:
        raise ConfigError("the largest sizes show no bandwidth (busbw 0): nothing to fit", field="FILE")
    rows, target = [], []
    for m, run_op, n, measured, _ in plan:  # t = c + w x + s L with x = 1 / B, from three simulations
        def times(cap: float, latency: float) -> np.ndarray:
            return _times(_with(base, connection_bandwidth=cap, connection_latency=latency), m, run_op, n, algo,
                          network, routing, seed)
        t_a, t_b, t_l = times(start, 0.0), times(0.8 * start, 0.0), times(start, PROBE)
        w = (t_b - t_a) / (1 / (0.8 * start) - 1 / start)
        c = t_a - w / start
        s = (t_l - t_a) / PROBE
        rows.append(np.column_stack([w / measured, s / measured]))
        target.append(1 - c / measured)
    a, b = np.vstack(rows), np.concatenate(target)
    x, latency = np.linalg.lstsq(a, b, rcond=None)[0] if a[:, 0].any() else (1 / start, 0.0)
    if latency < 0:  # floored: refit the bandwidth alone
        x, latency = float(a[:, 0] @ b / (a[:, 0] @ a[:, 0])), 0.0
    cap = 1 / x if x > 0 else start
    fitted = _with(base, connection_bandwidth=cap, connection_latency=float(latency))
    runs = []
    for m, run_op, n, measured, plateau in plan:
        before = _times(topo, m, run_op, n, algo, network, routing, seed)
        after = _times(fitted, m, run_op, n, algo, network, routing, seed)
        runs.append(RunFit(m.source, run_op, n, len(measured), plateau,
                           geometric_mean_error(list(np.abs(before / measured - 1))),
                           geometric_mean_error(list(np.abs(after / measured - 1)))))
    link_limited = bool(float(np.median(topo.capacity)) < cap)
    return Calibration(float(cap), float(latency), tuple(runs), link_limited)


# the fields a calibration writes, and its comment: replaced, not stacked, when a file is calibrated again
_FIELD = re.compile(r"^(connection_bandwidth\s*:|connection_latency\s*:|# calibrated by netsim calibrate ).*\n?",
                    re.MULTILINE)


def calibrated_yaml(original: str, fit: Calibration, sources: list[str]) -> str:
    """The topology file's text with the fitted fields set (earlier values of them replaced) and a comment
    saying where they come from."""
    text = _FIELD.sub("", original).rstrip("\n")
    note = ", ".join(sources)
    return (f"{text}\n# calibrated by netsim calibrate from {note}\n"
            f"connection_bandwidth: {fit.connection_bandwidth / 1e9:.6g}GB/s\n"
            f"connection_latency: {fit.connection_latency * 1e6:.6g}us\n")


__all__ = ["Calibration", "RunFit", "calibrate", "calibrated_yaml"]

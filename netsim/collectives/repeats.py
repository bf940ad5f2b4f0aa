"""Repeated steps: simulate the first steps of a long run of identical steps, skip the rest by their period.

A ring all-reduce on n ranks is 2(n - 1) steps in which every rank sends the same piece size to the same
neighbour: on 16,384 GPUs with one ring per NIC rail, 32,766 identical steps of 131,072 transfers (4.3e9
transfers). Once such a run settles, every further step takes the same time: the period. Compression
(``Simulation(compress=M)``, ``--compress M``, a scenario's ``network.compress``) simulates the first M steps
of each run of at least 2M identical steps, and shifts every rank's entry into the step after the run by
the skipped steps times the period::

    steps:  b ... b+M-1 | b+M ........ b+R-1 | b+R ...              (R identical steps from b)
            simulated   | skipped            | simulated, shifted by (R - M) x period
                         ▲
    each rank r:  arrives at the step after its M-th (T_r) ──► hook: period ──► r enters step b+R at
                                                                               T_r + (R - M) x period

Two figures say how long a step of the run takes once it has settled:

- the pace: how fast the latest rank moved through the last M/2 kept steps;
- the bound: the least a step can take back to back, the larger of (a) the busiest link's bytes over its
  capacity, or a capped flow's bytes over its cap (`NetworkModel.step_times`, routed as the run routes
  them), and (b) round each cycle of senders (a ring) the mean of the transfers' times alone, latency
  included (max-plus algebra: rank d enters step k + 1 no sooner than its sender entered step k plus the
  transfer's time). A ring whose NIC hop is slower than its NVLink hops, whose ECMP hashes put two hops on
  one spine link, or with one long-latency hop, reaches this only once the lateness has travelled round
  the ring, one rank per step, which the pace of a few steps misses.

Each rank leaves the run at its arrival after the kept steps plus the skipped steps at the pace; where the
bound is above the pace (the kept steps had not settled), no sooner than its entry into the run plus every
step of the run at the bound (what lateness the kept steps gathered is not carried on: in a max-plus system
the transient does not add up).

The ranks keep the offsets they had after M steps. The skipped steps' transfers are not simulated: they are
missing from the transfers table, the link meters and the bytes, and traffic beside the collective does not
meet them. The hook waits for every rank's M-th step (the shift is at least one step past the last of them,
so no rank starts early).

How exact it is: a run that is periodic gives the full simulation's time to rounding (a contention-free
ring is its closed form); hierarchical all-reduce on a rail fabric and a ring on a 2:1 leaf-spine, where
only latency differs from hop to hop, come within 0.01% (`validation/compression.py`). Where hops collide
the steps do not settle — the flows of a hop with a backlog share its link with those of a hop without one,
and the ranks' paces wander — and the result is an estimate, 0.4-9% off on contended rings, mostly early
(their full runs' steps take 2-10% more than the bound), and 3.3% early on a ring with one 20x slower hop. Each compressed
run is noted (`Simulation.meta["compressed"]`: the steps, the pace, the bound, the longest shift, how far
the window's per-step times spread around the pace, and `periodic` when that spread is within 1% and the
pace within 1% of the bound or above it).

Only runs in which every virtual rank sends and receives in each step are compressed (a rank that sits the
run out would otherwise be held back by the shift), and only steps that are one object: a buffer that does
not split evenly over the ranks gives steps that differ by a byte, which are simulated in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from numba import njit

from netsim.sim.simulation import MIN_COMPRESS

PERIODIC = 0.01  # kept steps whose times stay this close to their pace, and it to the bound, are periodic


@dataclass(frozen=True)
class Run:
    """Steps `start` .. `start + length - 1` of a schedule are one step object; `kept` of them are simulated."""

    start: int
    length: int
    kept: int

    @property
    def skipped(self) -> int:
        return self.length - self.kept


def _everyone(step, ranks: int) -> bool:
    """Every virtual rank sends and receives in `step`."""
    return len(step.src) >= ranks and bool(np.bincount(step.src, minlength=ranks).all()) and \
        bool(np.bincount(step.dst, minlength=ranks).all())


def repeated_runs(steps: Sequence, ranks: int, keep: int) -> list[Run]:
    """Runs of one step object repeated at least 2 x `keep` times in a row (every rank in it), each to keep
    `keep` steps of. `keep` 0: none (compression off)."""
    if keep <= 0:
        return []
    if keep < MIN_COMPRESS:
        raise ValueError(f"compression keeps at least {MIN_COMPRESS} steps of a run, got {keep}")
    runs: list[Run] = []
    k = 0
    checked: dict[int, bool] = {}
    while k < len(steps):
        j = k + 1
        while j < len(steps) and steps[j] is steps[k]:
            j += 1
        if j - k >= 2 * keep:
            ok = checked.get(id(steps[k]))
            if ok is None:
                ok = checked[id(steps[k])] = _everyone(steps[k], ranks)
            if ok:
                runs.append(Run(k, j - k, keep))
        k = j
    return runs


def kept_steps(steps: Sequence, runs: list[Run]) -> list:
    """The steps simulated: each run cut to its kept steps."""
    out: list = []
    k = 0
    for run in runs:
        out += steps[k:run.start + run.kept]
        k = run.start + run.length
    return out + list(steps[k:])


def simulated_transfers(steps: Sequence, ranks: int, keep: int) -> int:
    """Transfers a schedule's steps create when runs are compressed to `keep` steps (all of them with 0)."""
    return sum(len(s.src) for s in kept_steps(steps, repeated_runs(steps, ranks, keep)))


@njit(cache=True)
def _cycle_means(succ, weight):
    """The largest mean weight over the cycles of the functional graph v -> succ[v] (edge weight weight[v])."""
    n = len(succ)
    state = np.zeros(n, dtype=np.int64)  # 0 unseen, 1 on the current walk, 2 done
    best = 0.0
    for start in range(n):
        v = start
        while state[v] == 0:
            state[v] = 1
            v = succ[v]
        if state[v] == 1:  # a new cycle through v
            total, length, u = weight[v], 1, succ[v]
            while u != v:
                total += weight[u]
                length += 1
                u = succ[u]
            best = max(best, total / length)
        v = start
        while state[v] == 1:
            state[v] = 2
            v = succ[v]
    return best


def cycle_bound(src: np.ndarray, dst: np.ndarray, alone: np.ndarray, ranks: int, wait_sends: bool) -> float:
    """The least period the ranks' waiting on each other allows a repeated step, from each transfer's time
    alone: rank d enters step k + 1 no sooner than its sender s entered step k plus the transfer's time, so
    round a cycle of senders (a ring) a step takes at least the cycle's mean transfer time (max-plus algebra:
    the largest cycle mean). Counted where every rank sends one transfer a step (rings; else 0); with
    `wait_sends`, also the longest transfer (a rank waits for its own sends)."""
    bound = float(alone.max()) if wait_sends and len(alone) else 0.0
    if len(src) == ranks and (np.bincount(src, minlength=ranks) == 1).all():
        succ = np.empty(ranks, dtype=np.int64)
        weight = np.empty(ranks)
        succ[src], weight[src] = dst, alone
        bound = max(bound, float(_cycle_means(succ, weight)))
    return bound


def release(run: Run, cells: np.ndarray, boundary: int, ranks: int, arrived: np.ndarray, shifted: np.ndarray,
            bound: float, note: Callable[[dict], None] | None, tag: str):
    """The hook callback of one compressed run: when every rank has reached the step after the kept ones
    (`arrived[r]`, compressed step `boundary`), measure the pace on the last half of the kept steps (the
    latest rank's entry instant per step, `cells` as `lower` lays them out) and release each rank's
    `shifted[r]` gate: its arrival plus the skipped steps at the pace; where `bound` (the least a step
    takes once settled) is above the pace, the kept steps had not settled, and a rank leaves the run no
    sooner than its entry into it plus every step of the run at the bound."""
    window = max(1, run.kept // 2)

    def callback(dataflow_run, _gate: int) -> None:
        t_arr = dataflow_run.fired(arrived)
        latest = [float(np.nanmax(dataflow_run.fired(cells[k * ranks:(k + 1) * ranks])))
                  for k in range(boundary - window, boundary)] + [float(t_arr.max())]
        per_step = np.diff(latest)
        pace = (latest[-1] - latest[0]) / window
        leave = t_arr + run.skipped * pace
        settled = pace >= bound * (1 - 1e-9)
        if not settled:
            entered = dataflow_run.fired(cells[(boundary - run.kept) * ranks:(boundary - run.kept + 1) * ranks])
            leave = np.maximum(leave, entered + run.length * bound)
        now = latest[-1]
        dataflow_run.count_down(shifted, delay=np.maximum(leave - now, 0.0))
        if note is not None:
            spread = float(np.abs(per_step - pace).max() / pace) if pace > 0 else 0.0
            note({"tag": tag, "steps": run.length, "simulated": run.kept, "pace_s": pace, "bound_s": bound,
                  "shift_s": float((leave - t_arr).max()), "spread": spread,
                  "periodic": spread <= PERIODIC and pace >= bound * (1 - PERIODIC)})

    return callback


__all__ = ["MIN_COMPRESS", "Run", "cycle_bound", "kept_steps", "release", "repeated_runs", "simulated_transfers"]

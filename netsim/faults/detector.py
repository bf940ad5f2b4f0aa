"""A C4D-like detector: it reads collective-library telemetry and names what is wrong and where.

Every `interval_s` it gets a `Sample` — either the telemetry of the last completed iteration (per
collective call: when each rank entered, when it ended; per connection: bytes and seconds moving them),
each measurement with lognormal noise, or, when a collective has stopped making progress, a `Stall`
(who entered it, since when, which connections stopped). It may also get link-state reports (a switch
port going down), as a fabric reports them. It decides:

- communication hang: every rank entered a collective, and it has not completed for `hang_s`; the
  culprit is the rank whose connections stopped moving bytes (its row and column of the connection
  matrix are empty);
- non-communication hang: some ranks never entered the collective within `hang_s`: those ranks;
- communication slow: `window` samples in a row where a collective took more than `slow_ratio` x its
  healthy median; localised on the connection latency matrix (seconds per byte against healthy): the
  slow cells sharing one rank -> that rank's NIC; else the cable crossed by the most slow cells and the
  fewest fast ones -> that cable (a tie: all of them, as candidates); a link reported down -> at once;
- non-communication slow: `window` samples in a row where some rank entered the collectives later
  than the others by more than `late_ratio` x the healthy compute time: the latest rank.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from netsim.faults.spec import DetectorConfig


@dataclass(frozen=True)
class Sample:
    time: float
    calls: dict[str, float]  # call name -> duration (end - last entry), noisy
    late: dict[int, float]  # rank -> how much later than the median it entered, worst over calls, noisy
    cells: dict[tuple[int, int], float]  # connection -> seconds per byte, noisy


@dataclass(frozen=True)
class Stall:
    time: float
    since: float
    members: tuple[int, ...]
    entered: tuple[int, ...]
    silent: tuple[int, ...]  # ranks whose connections stopped moving bytes


@dataclass(frozen=True)
class Detection:
    time: float
    cls: str  # comm_hang, noncomm_hang, comm_slow, noncomm_slow
    culprit: tuple  # ("rank", r), ("link", cable), or ("unknown",)
    detail: str = ""


@dataclass
class Detector:
    config: DetectorConfig
    compute_s: float
    paths: dict[tuple[int, int], frozenset[int]]  # connection -> links it uses
    cable_of: dict[int, str]  # link id -> cable name
    baseline_calls: dict[str, list[float]] = field(default_factory=dict)
    baseline_cells: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    samples: int = 0
    recent: deque = field(default_factory=deque)
    checks: int = 0  # samples judged (for the false-alarm rate)
    medians: dict[str, float] | None = None  # healthy call durations, once learnt

    def reset(self) -> None:
        """Forget the healthy medians and the window (after a recovery changed the job: re-learn them)."""
        self.baseline_calls.clear()
        self.baseline_cells.clear()
        self.medians = None
        self.samples = 0
        self.recent.clear()

    def learnt(self) -> bool:
        return self.samples >= self.config.baseline

    def link_down(self, time: float, link: int) -> Detection:
        return Detection(time, "comm_slow", ("link", self.cable_of[link]), "link state: down")

    def observe(self, sample: Sample | Stall) -> Detection | None:
        cfg = self.config
        if isinstance(sample, Stall):
            if sample.time - sample.since < cfg.hang_s:
                return None
            missing = tuple(r for r in sample.members if r not in sample.entered)
            if missing:
                return Detection(sample.time, "noncomm_hang", ("rank", missing[0]) if len(missing) == 1 else
                                 ("ranks", missing), f"{len(missing)} ranks never entered")
            culprit = ("rank", sample.silent[0]) if len(sample.silent) == 1 else ("unknown",)
            return Detection(sample.time, "comm_hang", culprit, "every rank entered; no progress")
        if not self.learnt():
            self.samples += 1
            for name, d in sample.calls.items():
                self.baseline_calls.setdefault(name, []).append(d)
            for cell, v in sample.cells.items():
                self.baseline_cells.setdefault(cell, []).append(v)
            return None
        self.checks += 1
        if self.medians is None:  # learnt: the healthy medians, once
            self.medians = {name: float(np.median(v)) for name, v in self.baseline_calls.items()}
        base = self.medians
        slow = any(d > cfg.slow_ratio * base.get(name, d) for name, d in sample.calls.items())
        worst = max(sample.late.items(), key=lambda kv: kv[1]) if sample.late else (None, 0.0)  # summed over calls
        late = worst[1] > cfg.late_ratio * self.compute_s
        flag = "noncomm" if late else "comm" if slow else None
        self.recent.append((flag, sample))
        while len(self.recent) > cfg.window:
            self.recent.popleft()
        if flag is None or len(self.recent) < cfg.window or any(f != flag for f, _ in self.recent):
            return None
        if flag == "noncomm":
            return Detection(sample.time, "noncomm_slow", ("rank", worst[0]), f"enters {worst[1]:.3g} s late")
        return Detection(sample.time, "comm_slow", self._localise(sample), "collectives slower than healthy")

    def _localise(self, sample: Sample) -> tuple:
        cfg = self.config
        base = {c: float(np.median(v)) for c, v in self.baseline_cells.items()}
        slow = [c for c, v in sample.cells.items() if c in base and v > cfg.slow_ratio * base[c]]
        fast = [c for c, v in sample.cells.items() if c in base and c not in slow]
        if not slow:
            return ("unknown",)
        common = set(slow[0])
        for c in slow[1:]:
            common &= set(c)
        if len(slow) >= 2 and len(common) == 1:  # every slow cell has the rank on one side
            return ("rank", common.pop())
        slow_set = set(slow)
        whole = []  # ranks all of whose cells (its row and its column) are slow: that rank's side
        for rank in {r for c in slow for r in c}:
            mine = [c for c in sample.cells if rank in c and c in base]
            if len(mine) >= 2 and all(c in slow_set for c in mine):
                whole.append(rank)
        if len(whole) == 1:
            return ("rank", whole[0])
        def cables(cell) -> set[str]:  # a cable is slow in both directions: compare cables, not links
            return {self.cable_of[l] for l in self.paths.get(cell, ())}

        # each cable scored by the slow cells crossing it, then by the fast ones that do not (a cable
        # shared by slow cells and carrying no fast one is the best explanation)
        score: dict[str, list[int]] = {}
        for c in slow:
            for cable in cables(c):
                score.setdefault(cable, [0, 0])[0] += 1
        for c in fast:
            for cable in cables(c):
                if cable in score:
                    score[cable][1] -= 1
        if not score:
            return ("unknown",)
        best = max(tuple(v) for v in score.values())
        top = sorted(c for c, v in score.items() if tuple(v) == best)
        if best[0] < 2 and len(slow) > 1:
            return ("unknown",)
        return ("link", top[0]) if len(top) == 1 else ("links", tuple(top))

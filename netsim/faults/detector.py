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
  healthy median; localised on the connection latency matrix (seconds per byte against healthy) by
  intersecting the paths of the slow cells, the fast ones exculpating (`Detector._localise`): a rank's own
  cable (its NIC) -> that rank, a fabric cable -> that cable, a tie -> the tied cables as candidates; a
  link reported down -> at once;
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
    late: dict[int, float]  # rank -> how much later than the median it entered, summed over calls, noisy
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
    capacity: np.ndarray  # link id -> bytes/s
    owner: dict[int, int] = field(default_factory=dict)  # link id -> the rank whose own cable it is (GPU, NIC)
    baseline_calls: dict[str, list[float]] = field(default_factory=dict)
    baseline_cells: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    samples: int = 0
    recent: deque = field(default_factory=deque)
    checks: int = 0  # samples judged (for the false-alarm rate)
    medians: dict[str, float] | None = None  # healthy call durations, once learnt
    places: dict[str, tuple] = field(init=False)  # cable name -> what a fault there is named as

    def __post_init__(self) -> None:
        # the rank whose own cable it is, else the cable
        self.places = {name: ("link", name) for name in self.cable_of.values()}
        self.places.update({self.cable_of[l]: ("rank", r) for l, r in self.owner.items()})

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
        """Intersect the paths of the slow connections, with the fast ones as exculpating evidence.

        Each cable explains the slow cells whose paths cross it (in either direction: a faulty cable is
        slow both ways). A fast cell counts against a cable when it crosses one of its links that a slow
        cell crosses too (a fast flow through the very link that slows the others is unlikely), or one that
        is as narrow as anything on the fast cell's path (any loss of bandwidth there would have slowed it).
        The other direction of a wide link is no evidence: an uplink of twice a NIC's bandwidth at half
        speed still carries one NIC's flow unslowed. Cables are pooled into places (a rank's own cables are
        that rank; any other cable is itself); the place explaining the most slow cells, then with the
        least evidence against, is the culprit; a tie names the tied places' cables as candidates."""
        base = {c: float(np.median(v)) for c, v in self.baseline_cells.items()}
        ratio = {c: v / base[c] for c, v in sample.cells.items() if c in base}
        slow = [c for c, x in ratio.items() if x > self.config.slow_ratio]
        if not slow:
            return ("unknown",)
        slow_links = {l for c in slow for l in self.paths.get(c, ())}
        explains: dict[tuple, set] = {}
        crossed: dict[tuple, set[str]] = {}  # per place, its cables that slow cells cross
        for c in slow:
            for l in self.paths.get(c, ()):
                place = self.places[self.cable_of[l]]
                explains.setdefault(place, set()).add(c)
                crossed.setdefault(place, set()).add(self.cable_of[l])
        against: dict[tuple, set] = {}
        for c, x in ratio.items():
            links = self.paths.get(c, ())
            if x > self.config.slow_ratio or not links:
                continue
            narrowest = min(self.capacity[l] for l in links) * (1 + 1e-9)
            for l in links:
                if l in slow_links or self.capacity[l] <= narrowest:
                    against.setdefault(self.places[self.cable_of[l]], set()).add(c)
        if not explains:
            return ("unknown",)
        score = {p: (len(e), -len(against.get(p, ()))) for p, e in explains.items()}
        best = max(score.values())
        if best[0] < 2 and len(slow) > 1:  # no place explains two of several slow cells: no single fault
            return ("unknown",)
        top = sorted(p for p, v in score.items() if v == best)
        return top[0] if len(top) == 1 else ("links", tuple(sorted({c for p in top for c in crossed[p]})))

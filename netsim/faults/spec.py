"""What a fault study is made of: the job, the faults, the detector's settings, the recovery policy.

Fault kinds (`FAULT_KINDS`, the one registry; a fault names its target by rank or by link name):

- ``link_down``: a fabric link (both directions of the cable) stops; routing moves traffic to the other
  paths (slower where they are shared); a link with no alternative (a NIC's own cable) hangs the job;
- ``link_flap``: down for `down_s` of every `period_s` (`down`, `period` in a scenario file), from `at` on;
- ``link_degraded`` / ``nic_degraded``: a cable, or a rank's NIC cable, works at `factor` of its bandwidth;
- ``gpu_slow``: a rank computes at `factor` of its speed;
- ``rank_hang_compute``: a rank stops in compute: it never reaches the next collective;
- ``rank_hang_comm``: a rank stops inside a collective: its connections stop moving bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.errors import ConfigError

FAULT_KINDS = {
    "link_down": "a fabric cable stops (routing moves traffic to other paths; no alternative: the job hangs)",
    "link_flap": "a cable goes down for `down` of every `period` (seconds)",
    "link_degraded": "a cable works at `factor` of its bandwidth",
    "nic_degraded": "a rank's NIC cable works at `factor` of its bandwidth",
    "gpu_slow": "a rank computes at `factor` of its speed",
    "rank_hang_compute": "a rank stops in compute and never reaches the next collective",
    "rank_hang_comm": "a rank stops inside a collective: its connections stop moving bytes",
}
HANGS = ("rank_hang_compute", "rank_hang_comm")
CLASSES = ("comm_hang", "noncomm_hang", "comm_slow", "noncomm_slow")
# the detector class each fault kind should be found as (a cable down with no alternative path is a
# communication hang of the ranks behind it, and is judged as one)
EXPECTED_CLASS = {"link_down": "comm_slow", "link_flap": "comm_slow", "link_degraded": "comm_slow",
                  "nic_degraded": "comm_slow", "gpu_slow": "noncomm_slow", "rank_hang_compute": "noncomm_hang",
                  "rank_hang_comm": "comm_hang"}


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float  # seconds from the job's start
    rank: int | None = None  # gpu_slow, nic_degraded, rank_hang_*
    link: str | None = None  # link_*: a cable, named by one direction ("a->b") or its ends ("a<->b")
    factor: float = 0.5  # *_degraded, gpu_slow
    down_s: float = 5.0  # link_flap
    period_s: float = 60.0  # link_flap

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})", field="kind")
        if not 0 <= self.at < 1e9:
            raise ConfigError(f"expected a time >= 0, got {self.at!r}", field="at")
        needs_rank = self.kind in ("gpu_slow", "nic_degraded") + HANGS
        if needs_rank and (self.rank is None or self.rank < 0):
            raise ConfigError(f"{self.kind} needs the rank it hits", field="rank")
        if self.kind.startswith("link") and not self.link:
            raise ConfigError(f"{self.kind} needs the link it hits", field="link")
        if self.kind in ("link_degraded", "nic_degraded", "gpu_slow") and not 0 < self.factor < 1:
            raise ConfigError(f"expected a factor in (0, 1), got {self.factor!r}", field="factor")
        if self.kind == "link_flap" and not 0 < self.down_s < self.period_s:
            raise ConfigError("expected 0 < down_s < period_s", field="down_s")


@dataclass(frozen=True)
class JobSpec:
    """A data-parallel job of `replicas` replicas of `tp` GPUs (tensor parallel inside a server): per
    iteration `compute_s` of compute, one all-reduce of `tp_bytes` in each replica (0: none), then the
    gradient all-reduce of `dp_bytes` across replicas, sharded over the replica's GPUs (GPU j of every
    replica reduces 1/tp of it). A checkpoint every `checkpoint_every` iterations."""

    replicas: int = 8
    tp: int = 1
    compute_s: float = 0.5
    tp_bytes: int = 0
    dp_bytes: int = 256 * 2**20
    iterations: int = 1000
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        for name in ("replicas", "tp", "iterations", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"expected an integer >= 1, got {value!r}", field=name)
        if self.replicas < 2:
            raise ConfigError("a data-parallel job needs at least 2 replicas", field="replicas")
        if not 0 < self.compute_s < 1e6:
            raise ConfigError(f"expected seconds > 0, got {self.compute_s!r}", field="compute_s")
        if self.tp_bytes < 0 or self.dp_bytes < 1:
            raise ConfigError("expected tp_bytes >= 0 and dp_bytes >= 1", field="dp_bytes")

    @property
    def ranks(self) -> int:
        return self.replicas * self.tp


@dataclass(frozen=True)
class DetectorConfig:
    """C4D-like detection. Telemetry is sampled every `interval_s`; each measurement carries lognormal
    noise of sigma `noise`. A collective in which some rank has waited `hang_s` without it completing is
    a hang (non-communication when some ranks never entered, else communication). Over the last
    `window` samples: collectives longer than `slow_ratio` x their healthy median are communication-slow;
    a rank entering collectives later than the others by more than `late_ratio` of the healthy compute
    time is non-communication-slow. The healthy medians are learnt over the first `baseline` samples."""

    interval_s: float = 1.0
    noise: float = 0.02
    hang_s: float = 10.0
    window: int = 5
    slow_ratio: float = 1.25
    late_ratio: float = 0.1
    baseline: int = 5


@dataclass(frozen=True)
class RecoveryConfig:
    """What happens once a fault is localised. A slowdown is tolerated when running slow to the end costs
    less than a restart (restart time and the work since the checkpoint). `policy`: ``restart`` (isolate the
    faulty node, restart from the last checkpoint on a spare: `restart_s`), ``replan`` (link faults: re-plan paths around the link and
    go on — C4P; node faults fall back to restart), ``elastic`` (go on with one data-parallel replica fewer,
    re-forming the communicators in `reform_s`, until a spare joins after `spare_s` and the job restarts
    on it from the last checkpoint), or ``none`` (no detector: a hang is noticed by the collective
    watchdog after `watchdog_s`, then restart; slowness is never noticed)."""

    policy: str = "restart"
    restart_s: float = 300.0
    watchdog_s: float = 1800.0
    reform_s: float = 30.0
    spare_s: float = 600.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"unknown recovery policy {self.policy!r} (known: {', '.join(POLICIES)})", field="policy")


POLICIES = {"restart": "isolate the node, restart from the last checkpoint on a spare",
            "replan": "re-plan paths around a faulty link (C4P) and go on; node faults restart",
            "elastic": "go on with one replica fewer until a spare joins",
            "none": "no detector: hangs end at the watchdog timeout, then restart; slowness stays"}

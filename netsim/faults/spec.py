"""What a fault study is made of: the job, the faults, the detector's settings, the recovery policy.

Fault kinds (`FAULT_KINDS`, the one registry; a fault names its target by rank or by link name):

- ``link_down``: a fabric link (both directions of the cable) stops; routing moves traffic to the other
  paths (slower where they are shared); a link with no alternative (a NIC's own cable) hangs the job;
- ``link_flap``: down for `down_s` of every `period_s` (`down`, `period` in a scenario file), from `at` on;
- ``link_degraded`` / ``nic_degraded``: a cable, or a rank's NIC cable, works at `factor` of its bandwidth;
- ``gpu_slow``: a rank computes at `factor` of its speed;
- ``rank_hang_compute``: a rank stops in compute: it never reaches the next collective;
- ``rank_hang_comm``: a rank stops inside a collective: its connections stop moving bytes;
- ``switch_down``: a switch stops (named by `node`): every cable of it goes down at once; traffic moves
  around a spine, while the servers whose only path it was (under a leaf) hang the job.
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
    "switch_down": "a switch (`node`) stops: all its cables go down at once",
}
HANGS = ("rank_hang_compute", "rank_hang_comm")
# how the modes of a production study are named in tables and reports (netsim.faults.production.MODES)
MODE_LABELS = {"detector": "with detection", "manual": "manual diagnosis", "none": "watchdog only"}
# what a run's time lost to faults is made of (they add up to its wall-clock less the fault-free run's)
PARTS = ("detection", "diagnosis", "restart", "lost_work", "slowed", "checkpoint")
CLASSES = ("comm_hang", "noncomm_hang", "comm_slow", "noncomm_slow")
# the detector class each fault kind should be found as (a cable down with no alternative path is a
# communication hang of the ranks behind it, and is judged as one)
EXPECTED_CLASS = {"link_down": "comm_slow", "link_flap": "comm_slow", "link_degraded": "comm_slow",
                  "nic_degraded": "comm_slow", "gpu_slow": "noncomm_slow", "rank_hang_compute": "noncomm_hang",
                  "rank_hang_comm": "comm_hang", "switch_down": "comm_slow"}
LINK_KINDS = ("link_down", "link_flap", "link_degraded")  # target: a cable
CUT_KINDS = ("link_down", "link_flap", "switch_down")  # cables that stop: a link-state event, at once


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float  # seconds from the job's start
    rank: int | None = None  # gpu_slow, nic_degraded, rank_hang_*
    link: str | None = None  # link_*: a cable, named by one direction ("a->b") or its ends ("a<->b")
    factor: float = 0.5  # *_degraded, gpu_slow
    down_s: float = 5.0  # link_flap
    period_s: float = 60.0  # link_flap
    node: str | None = None  # switch_down: the switch's name

    @property
    def target(self) -> str:
        """What it hits, in words: a cable's or a switch's name, or "rank N"."""
        return self.link or self.node or f"rank {self.rank}"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})", field="kind")
        if not 0 <= self.at < 1e9:
            raise ConfigError(f"expected a time >= 0, got {self.at!r}", field="at")
        needs_rank = self.kind in ("gpu_slow", "nic_degraded") + HANGS
        if needs_rank and (not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank < 0):
            raise ConfigError(f"{self.kind} needs the rank it hits (an integer >= 0, got {self.rank!r})",
                              field="rank")
        if self.kind in LINK_KINDS and not self.link:
            raise ConfigError(f"{self.kind} needs the link it hits", field="link")
        if self.kind == "switch_down" and not self.node:
            raise ConfigError("switch_down needs the switch it hits", field="node")
        if self.kind in ("link_degraded", "nic_degraded", "gpu_slow") and not 0 < self.factor < 1:
            raise ConfigError(f"expected a factor in (0, 1), got {self.factor!r}", field="factor")
        if self.kind == "link_flap" and not 0 < self.down_s < self.period_s:
            raise ConfigError("expected 0 < down_s < period_s", field="down_s")


@dataclass(frozen=True)
class JobSpec:
    """A data-parallel job of `replicas` replicas, each a pipeline of `pp` stages of `tp` GPUs (tensor
    parallel inside a server). Per iteration, every stage: `microbatches` forward passes (receiving the
    previous stage's activations, `pp_bytes` per microbatch, sending its own on) and as many backward
    passes (gradients the other way), `compute_s` of compute in all (a third forward, two thirds
    backward); one all-reduce of `tp_bytes` in each stage's tensor-parallel group (0: none); then the
    stage's gradient all-reduce of `dp_bytes` / `pp` across replicas, sharded over the stage's GPUs (GPU j
    of a stage reduces 1/tp of it with GPU j of the same stage in every replica). A checkpoint every
    `checkpoint_every` iterations.

    Rank of GPU j of stage s of replica r: ``(r * pp + s) * tp + j``.

    A limit of the detector on pipelines: a slow GPU delays every stage of its replica (each waits on its
    neighbours), and the stage that enters its data-parallel all-reduce latest is the first one (its
    backward ends last), so a slow GPU is named as its replica's first stage, not as itself."""

    replicas: int = 8
    tp: int = 1
    compute_s: float = 0.5
    tp_bytes: int = 0
    dp_bytes: int = 256 * 2**20
    iterations: int = 1000
    checkpoint_every: int = 100
    pp: int = 1
    pp_bytes: int = 0
    microbatches: int = 1

    def __post_init__(self) -> None:
        for name in ("replicas", "tp", "iterations", "checkpoint_every", "pp", "microbatches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"expected an integer >= 1, got {value!r}", field=name)
        if self.replicas < 2:
            raise ConfigError("a data-parallel job needs at least 2 replicas", field="replicas")
        if not 0 < self.compute_s < 1e6:
            raise ConfigError(f"expected seconds > 0, got {self.compute_s!r}", field="compute_s")
        if self.tp_bytes < 0 or self.dp_bytes < 1:
            raise ConfigError("expected tp_bytes >= 0 and dp_bytes >= 1", field="dp_bytes")
        if self.pp_bytes < 0 or (self.pp > 1 and not self.pp_bytes):
            raise ConfigError("a pipeline (pp > 1) needs the activation bytes per microbatch (pp_bytes > 0)",
                              field="pp_bytes")

    @property
    def ranks(self) -> int:
        return self.replicas * self.pp * self.tp

    def replica_of(self, rank: int) -> int:
        return rank // (self.pp * self.tp)

    def stage_of(self, rank: int) -> int:
        return rank // self.tp % self.pp

    def rank(self, replica: int, stage: int, j: int) -> int:
        return (replica * self.pp + stage) * self.tp + j

    def dp_group(self, stage: int, j: int) -> str:
        return f"dp{j}" if self.pp == 1 else f"dp{stage}.{j}"

    def tp_group(self, replica: int, stage: int) -> str:
        return f"tp{replica}" if self.pp == 1 else f"tp{replica}.{stage}"

    def route_key(self, a: int, b: int) -> tuple | None:
        """The route key of the connection a -> b (as the program executor hashes it), or None when no
        collective or pipeline transfer of the job connects them."""
        if a == b:
            return None
        ra, rb, sa, sb = self.replica_of(a), self.replica_of(b), self.stage_of(a), self.stage_of(b)
        if ra == rb and sa == sb:
            return ("", self.tp_group(ra, sa))
        if sa == sb and a % self.tp == b % self.tp:
            return ("", self.dp_group(sa, a % self.tp))
        if ra == rb and abs(sa - sb) == 1 and a % self.tp == b % self.tp:
            return ("trace", PIPE_FORWARD if sb == sa + 1 else PIPE_BACKWARD)
        return None


PIPE_FORWARD, PIPE_BACKWARD = 0, 1  # the tags of activations (to the next stage) and gradients (to the previous)


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

    def __post_init__(self) -> None:
        for name in ("interval_s", "hang_s", "late_ratio"):
            if not 0 < getattr(self, name) < 1e9:
                raise ConfigError(f"expected a number > 0, got {getattr(self, name)!r}", field=name)
        if not 0 <= self.noise <= 1:
            raise ConfigError(f"expected a noise sigma in [0, 1], got {self.noise!r}", field="noise")
        if not 1 < self.slow_ratio < 1e9:
            raise ConfigError(f"expected a ratio > 1, got {self.slow_ratio!r}", field="slow_ratio")
        for name in ("window", "baseline"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"expected an integer >= 1, got {getattr(self, name)!r}", field=name)


@dataclass(frozen=True)
class RecoveryConfig:
    """What happens once a fault is localised. A slowdown is tolerated when running slow to the end costs
    less than a restart (restart time and the work since the checkpoint). `policy`:

    - ``restart``: isolate the faulty node, restart from the last checkpoint on a spare (`restart_s`, then
      `checkpoint_load_s` to read the checkpoint back);
    - ``replan``: link faults: re-plan paths around the link and go on (C4P); node faults restart;
    - ``elastic``: go on with one data-parallel replica fewer, re-forming the communicators in `reform_s`,
      until a spare joins after `spare_s` and the communicators are re-formed again with it (no rollback);
    - ``checkfree``: pipeline jobs: a failed intermediate stage is rebuilt on a spare from the average of
      its two neighbouring stages' weights — no rollback to a checkpoint, `restart_s` to re-launch, and
      `checkfree_iterations` more iterations to win back the loss the averaged stage costs; a fault in the
      first or last stage (no neighbour on one side) restarts from the checkpoint;
    - ``manual``: production without a detector: a hang is noticed when the collective watchdog fires
      (`watchdog_s`), a slowdown when people notice the throughput dropped (`notice_slow_s`); then an
      engineer responds (`respond_s`) and bisects the job's servers with collective tests, one round of
      `bisect_round_s` per halving (log2 of the servers), waits for a replacement (`replace_s`) and
      restarts from the checkpoint;
    - ``none``: no detector and nobody looking: a hang ends at the watchdog, then a restart on a spare;
      slowness stays.

    Checkpoints: every `checkpoint_every` iterations (0: the job's own interval), the job stops
    `checkpoint_write_s` to write one (0: not modelled) and a restart reads it back in `checkpoint_load_s`.
    A checkpoint to remote storage takes minutes each way, so it is written rarely; one kept in the
    servers' memory (replicated to peers) takes seconds, so it can be written often and little is redone.
    """

    policy: str = "restart"
    restart_s: float = 300.0
    watchdog_s: float = 1800.0
    reform_s: float = 30.0
    spare_s: float = 600.0
    checkpoint_write_s: float = 0.0
    checkpoint_load_s: float = 0.0
    checkpoint_every: int = 0
    checkfree_iterations: int = 0
    notice_slow_s: float = 4 * 3600.0
    respond_s: float = 1800.0
    bisect_round_s: float = 600.0
    replace_s: float = 2 * 3600.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"unknown recovery policy {self.policy!r} (known: {', '.join(POLICIES)})", field="policy")
        for name in ("restart_s", "watchdog_s", "reform_s", "spare_s", "checkpoint_write_s", "checkpoint_load_s",
                     "notice_slow_s", "respond_s", "bisect_round_s", "replace_s"):
            if not 0 <= getattr(self, name) < 1e9:
                raise ConfigError(f"expected seconds >= 0, got {getattr(self, name)!r}", field=name)
        for name in ("checkfree_iterations", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"expected an integer >= 0, got {getattr(self, name)!r}", field=name)

    @property
    def watchdog_only(self) -> bool:
        """No detector samples telemetry (``none``, ``manual``): hangs end at the watchdog."""
        return self.policy in ("none", "manual")


POLICIES = {"restart": "isolate the node, restart from the last checkpoint on a spare",
            "replan": "re-plan paths around a faulty link (C4P) and go on; node faults restart",
            "elastic": "go on with one replica fewer until a spare joins (re-forming, no rollback)",
            "checkfree": "pipelines: rebuild a failed stage from its neighbours' weights, no rollback",
            "manual": "no detector: the watchdog or people notice, an engineer bisects, a replacement node",
            "none": "no detector: hangs end at the watchdog timeout, then restart; slowness stays"}

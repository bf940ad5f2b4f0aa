"""A long training job with faults: injection, telemetry, detection, recovery, and what it all cost.

`run_job` drives three SimPy processes on one clock: the job (whole runs of iterations at once, each
run as long as its fabric state holds — see `netsim.faults.iteration`), the faults (they change the
fabric state; slowdowns take effect at the next iteration boundary, at most one iteration late; hangs
stop the job inside the iteration they hit) and the detector (every `interval_s`, a telemetry sample of
the last completed iteration with noise, or a stall report). A detection starts the recovery policy.
Without a detector (`policy: none`) a hang ends when the collective watchdog fires; slowness stays.

A restart re-launches the job on spares: node faults are gone afterwards (a faulty link is not: routing
leaves out the cables the detector named). Per fault: when it struck, when it was detected and
localised, whether the class and place were right,
when the job was back. Per run: wall time against the fault-free run, split into lost work (iterations
redone from the last checkpoint, and the partial iteration a hang stopped), detection (the job stalled
until the fault was found), restart (restart, re-forming communicators), and slowed iterations
(iterations that ran slower, or on fewer replicas, than healthy ones); effective throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import simpy

from netsim.errors import ConfigError, TopologyError
from netsim.faults.detector import Detection, Detector, Sample, Stall
from netsim.faults.iteration import IterationCache, State, job_gpus
from netsim.faults.spec import CUT_KINDS, PARTS, EXPECTED_CLASS, HANGS, DetectorConfig, Fault, JobSpec, RecoveryConfig
from netsim.topology import Topology


QUIET_WINDOWS = 2  # an unchanged state is sampled for this many detector windows, then no more (see `quiet`)


def cable_names(topo: Topology) -> dict[int, str]:
    names = topo.node_names
    return {l: "<->".join(sorted((names[int(a)], names[int(b)])))
            for l, (a, b) in enumerate(zip(topo.link_src, topo.link_dst))}


def cable_links(topo: Topology, text: str) -> list[int]:
    """Both directions of the cable named "a->b", "b->a" or "a<->b"."""
    try:
        return topo.links_named(text if "<->" in text else text.replace("->", "<->"))
    except TopologyError as exc:
        raise ConfigError(str(exc), field="link") from None


def switch_links(topo: Topology, name: str) -> list[int]:
    """Every link into or out of the switch named `name`."""
    try:
        node = topo.node(name)
    except (KeyError, TopologyError):
        raise ConfigError(f"no node {name!r} in topology {topo.name!r}", field="node") from None
    if topo.node_kind[node] in ("gpu", "nic"):
        raise ConfigError(f"{name!r} is a {topo.node_kind[node]}, not a switch", field="node")
    return [l for l in range(topo.num_links) if int(topo.link_src[l]) == node or int(topo.link_dst[l]) == node]


def nic_cable(topo: Topology, gpu: int) -> list[int]:
    """The cable a GPU's traffic leaves the server by: its NIC's uplink (or the GPU's own cable)."""
    kinds, names = topo.node_kind, topo.node_names
    offsets, ids = topo.out_csr
    out = ids[offsets[gpu]:offsets[gpu + 1]].tolist()
    for l in out:
        nic = int(topo.link_dst[l])
        if kinds[nic] == "nic":
            up = [k for k in ids[offsets[nic]:offsets[nic + 1]].tolist()
                  if kinds[int(topo.link_dst[k])] not in ("gpu", "nvswitch")]
            if up:
                return topo.links_named(f"{names[nic]}<->{names[int(topo.link_dst[up[0]])]}")
    return topo.links_named(f"{names[gpu]}<->{names[int(topo.link_dst[out[0]])]}")


def rank_cables(topo: Topology, gpus: np.ndarray) -> dict[int, int]:
    """Link id -> the rank whose own cable it is: its NIC's cable and the GPU's link to that NIC (a fault
    there is that rank's); a NIC shared by several ranks is nobody's own (named as a cable)."""
    owners: dict[int, set[int]] = {}
    kinds = topo.node_kind
    (out_off, out_ids), (in_off, in_ids) = topo.out_csr, topo.in_csr
    for r, g in enumerate(gpus.tolist()):
        touching = sorted(out_ids[out_off[g]:out_off[g + 1]].tolist() + in_ids[in_off[g]:in_off[g + 1]].tolist())
        to_nic = [l for l in touching if "nic" in (kinds[int(topo.link_src[l])], kinds[int(topo.link_dst[l])])]
        own = set(to_nic) | set(nic_cable(topo, g))
        for l in own:
            owners.setdefault(l, set()).add(r)
    return {l: next(iter(rs)) for l, rs in owners.items() if len(rs) == 1}


def telemetry_of(rec) -> tuple:
    """An iteration's measurements before noise, in the order they are listed: per call its duration (end
    less the last entry); per call and member, how much later than the call's median entry it entered
    (lateness is summed per rank over the calls: a slow GPU is late in each call it takes part in) — as
    (index of the rank in `order`, excess), `order` being the ranks by first appearance; per connection
    that moved bytes, seconds per byte."""
    names = [c.name for c in rec.calls]
    durations = np.array([c.exit - max(c.enter) for c in rec.calls])
    order: dict[int, int] = {}
    late_ranks, excess = [], []
    for c in rec.calls:
        median = float(np.median(c.enter))
        for m, e in zip(c.ranks, c.enter):
            late_ranks.append(order.setdefault(m, len(order)))
            excess.append(max(e - median, 0.0))
    keys = [k for k, v in rec.connections.items() if v[0] > 0]
    per_byte = np.array([rec.connections[k][1] / rec.connections[k][0] for k in keys])
    return names, durations, np.array(late_ranks, dtype=np.int64), np.array(excess), list(order), keys, per_byte


@dataclass
class FaultRecord:
    fault: Fault
    struck: float | None = None  # when it took effect (a hang: when the collective stopped)
    detected: float | None = None
    cls: str | None = None
    culprit: tuple | None = None
    correct: bool | None = None
    recovered: float | None = None


@dataclass
class RunResult:
    wall_s: float
    fault_free_s: float
    iterations: int
    breakdown: dict[str, float]
    faults: list[FaultRecord]
    detections: list[Detection]
    false_alarms: int
    checks: int
    healthy_iteration_s: float

    @property
    def throughput(self) -> float:
        """Iterations per second of wall time."""
        return self.iterations / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict:
        return {"wall_s": self.wall_s, "fault_free_s": self.fault_free_s, "overhead_s": self.wall_s - self.fault_free_s,
                "iterations_per_s": self.throughput, "healthy_iteration_s": self.healthy_iteration_s,
                **{f"{k}_s": v for k, v in self.breakdown.items()}, "false_alarms": self.false_alarms,
                "checks": self.checks}


def run_job(topo: Topology, job: JobSpec, faults: list[Fault], *, detector: DetectorConfig | None = None,
            recovery: RecoveryConfig | None = None, routing: str = "ecmp", seed: int = 0,
            cache: IterationCache | None = None, skip_quiet: bool = True) -> RunResult:
    """Run `job` for its iterations with `faults`; see the module docstring (`skip_quiet`: see
    `JobRun.quiet`; off, the detector samples every interval to the end)."""
    return JobRun(topo, job, faults, detector=detector, recovery=recovery, routing=routing, seed=seed,
                  cache=cache, skip_quiet=skip_quiet).run()


class JobRun:
    """One run of a job with faults: the job, fault and detector processes (its methods) on one clock, and
    what they share — the fabric state, progress, a hang going on, the recovery's exclusions."""

    def __init__(self, topo: Topology, job: JobSpec, faults: list[Fault], *, detector: DetectorConfig | None = None,
                 recovery: RecoveryConfig | None = None, routing: str = "ecmp", seed: int = 0,
                 cache: IterationCache | None = None, skip_quiet: bool = True):
        self.topo, self.job = topo, job
        self.quiet_ok = skip_quiet
        self.config = detector or DetectorConfig()
        self.recovery = recovery or RecoveryConfig()
        self.gpus = gpus = job_gpus(topo, job)
        for f in faults:
            if f.rank is not None and f.rank >= job.ranks:
                raise ConfigError(f"rank {f.rank} is outside the job's {job.ranks} ranks", field="rank")
        self.cache = cache or IterationCache(topo, job, routing, seed)
        # the detector maps cells to links as the job's iterations are routed (the cache's policy and seed)
        self.det = Detector(self.config, job.compute_s, self.cache.paths(), cable_names(topo), topo.capacity,
                            rank_cables(topo, gpus))
        self.rng = np.random.default_rng([seed, 0x43344431])
        self.env = simpy.Environment()
        self.healthy_t = self.cache(State(tuple(range(job.replicas)))).time
        self.records = [FaultRecord(f) for f in sorted(faults, key=lambda f: f.at)]
        # what each fault does to the fabric state
        self.links_of = {id(r): self.fault_links(r.fault) for r in self.records}
        self.state = State(tuple(range(job.replicas)))
        self.done = 0.0  # iterations' worth of progress
        self.saved = 0.0  # the progress the last checkpoint holds
        self.every = self.recovery.checkpoint_every or job.checkpoint_every  # iterations between checkpoints
        self.hang: dict | None = None  # the hang going on: its record, since when, whether in communication
        self.chunk: tuple | None = None  # the run of iterations going on: (start, iteration time, state)
        self.excluded: frozenset[int] = frozenset()  # links routing leaves out (found by the detector)
        self.fixed: set[int] = set()  # ids of the fault records a recovery mended
        self.dropped: int | None = None  # a replica left out (elastic)
        self.paused = False
        self.last_completed: tuple | None = None  # (state, record) of the last iteration that completed
        self.wall_end: float | None = None
        self.acc = dict.fromkeys(PARTS, 0.0)
        self.detections: list[Detection] = []
        self.false_alarms = 0
        self.active: list[FaultRecord] = []
        self.flaps_down: set[int] = set()
        self.wake = self.env.event()
        self.finished = self.env.event()
        self.waiters: list = []  # hangs waiting for the job to run again
        self.writing = False  # a checkpoint is being written
        self.recovering = False  # a recovery is under way (they run one at a time)
        self.change = self.env.event()  # anything changed (state, hang, pause, end): the detector looks again
        self.in_state = 0  # detector samples since the last change
        self.telemetry: dict[int, tuple] = {}  # per iteration record: its measurements before noise
        rec = self.recovery
        self.limit = 1000 * job.iterations * self.healthy_t + 100 * (rec.restart_s + rec.watchdog_s + rec.spare_s)

    def fault_links(self, f: Fault) -> list[int]:
        """The links a fault acts on (none for a GPU's or a rank's own faults)."""
        if f.link:
            return cable_links(self.topo, f.link)
        if f.node:
            return switch_links(self.topo, f.node)
        return nic_cable(self.topo, int(self.gpus[f.rank])) if f.kind == "nic_degraded" else []

    def run(self) -> RunResult:
        env = self.env
        env.process(self.training())
        for r in self.records:
            env.process(self.injector(r))
        env.process(self.detector_process())
        try:
            env.run(until=self.finished)  # faults drawn past the job's end never strike
        except RuntimeError as exc:  # nothing left to happen and the job has not finished: a hang for ever
            if self.finished.triggered or "No scheduled events left" not in str(exc):
                raise
        if self.wall_end is None:
            raise ConfigError("the job never finishes: a hang that nothing recovers (give recovery a watchdog, "
                              "or a policy other than none)", field="faults")
        job = self.job
        return RunResult(self.wall_end, job.iterations * self.healthy_t, job.iterations, self.acc, self.records,
                         self.detections, self.false_alarms, self.det.checks, self.healthy_t)

    def state_now(self) -> State:
        down, degraded, slow = set(self.excluded), [], []
        for r in self.active:
            f = r.fault
            if id(r) in self.fixed:
                continue
            if f.kind in ("link_down", "switch_down"):
                down |= set(self.links_of[id(r)])
            elif f.kind == "link_flap" and id(r) in self.flaps_down:
                down |= set(self.links_of[id(r)])
            elif f.kind in ("link_degraded", "nic_degraded"):
                degraded += [(l, f.factor) for l in self.links_of[id(r)] if l not in self.excluded]
            elif f.kind == "gpu_slow":
                slow.append((f.rank, f.factor))
        replicas = tuple(x for x in range(self.job.replicas) if x != self.dropped)
        return State(replicas, frozenset(down), tuple(sorted(degraded)), tuple(sorted(slow)))

    def resumed(self):
        """An event for the next change (the job may run again then)."""
        event = self.env.event()
        self.waiters.append(event)
        return event

    def release(self) -> None:
        """Hangs waiting for the job to run again look again."""
        waiters, self.waiters = self.waiters, []
        for event in waiters:
            event.succeed()

    def poke(self) -> None:  # the fabric state changed: the job re-plans its current run of iterations
        self.release()
        if not self.wake.triggered:
            self.wake.succeed()
        if not self.change.triggered:
            self.change.succeed()

    def training(self):
        while self.done < self.job.iterations - 1e-9:
            if self.env.now > self.limit:
                raise ConfigError(f"the job has not finished after {self.limit:.3g} simulated seconds (1000 x its "
                                  "healthy run): its faults slow it beyond what this study simulates", field="faults")
            if self.hang is not None or self.paused:
                self.wake = self.env.event()
                yield self.wake
                continue
            state = self.state = self.state_now()
            rec = self.cache(state)
            if rec.hung:  # a rank lost its only path (a NIC's own cable down): communication stops at once
                cause = next((r for r in self.active if r.fault.kind in CUT_KINDS and id(r) not in
                              self.fixed and set(self.links_of[id(r)]) & state.down), None)
                self.strike_hang(cause, self.env.now, comm=True)
                continue
            t_iter = rec.time
            share = len(state.replicas) / self.job.replicas  # progress per iteration (fewer replicas: less)
            left = math.ceil((self.job.iterations - self.done) / share - 1e-9)
            to_checkpoint = math.ceil((self.saved + self.every - self.done) / share - 1e-9)
            start = self.env.now
            self.chunk = (start, t_iter, state)
            self.wake = self.env.event()
            pending = [r.fault.at for r in self.records if r.struck is None and r.fault.at >= start]
            horizon = min(pending, default=math.inf)
            # stop at the next checkpoint, or at the boundary after the next fault strikes (it may hang or
            # slow the job)
            k = max(1, min(left, to_checkpoint))
            if horizon < math.inf:
                k = max(1, min(k, math.floor((horizon - start) / t_iter) + 1))
            done = self.env.timeout(k * t_iter)
            yield self.env.any_of([done, self.wake])
            if done.processed:
                finished = k
            else:
                finished = min(k, math.floor((self.env.now - start) / t_iter + 1e-9))
                stopped = self.hang is not None or self.paused
                if not stopped and finished < k:  # a state change: it acts from the next boundary
                    self.wake = self.env.event()
                    tick = self.env.timeout(max(start + (finished + 1) * t_iter - self.env.now, 0.0))
                    yield self.env.any_of([tick, self.wake])
                    stopped = self.hang is not None or self.paused  # a hang may stop this last iteration too
                    if not stopped:
                        if not tick.processed:  # another change: it too acts from this boundary
                            yield tick
                        finished += 1
                if stopped:
                    self.acc["lost_work"] += self.env.now - (start + finished * t_iter)  # the iteration it stopped
            progress = min(finished * share, self.job.iterations - self.done)
            self.done += progress
            self.acc["slowed"] += finished * t_iter - progress * self.healthy_t
            if finished:
                self.last_completed = (state, rec)
            self.chunk = None
            due = self.done >= min(self.saved + self.every, self.job.iterations) - 1e-9
            if due and self.hang is None and not self.paused:
                yield from self.checkpoint()
        self.wall_end = self.env.now
        self.poke()
        self.finished.succeed()

    def checkpoint(self):
        """Write a checkpoint of the progress so far (the job stops `checkpoint_write_s` for it)."""
        write = self.recovery.checkpoint_write_s
        if write and self.done < self.job.iterations - 1e-9:  # the last one is the finished model
            self.writing = True
            yield self.env.timeout(write)
            self.acc["checkpoint"] += write
            self.writing = False
            self.release()  # (the fabric did not change: the detector need not look again)
        self.saved = self.done

    def strike_hang(self, r: FaultRecord | None, t: float, comm: bool) -> None:
        chunk = self.chunk
        if chunk is None:
            start, t_iter = self.env.now, self.cache(self.state).time
        else:
            start, t_iter, _ = chunk
        into = (t - start) % t_iter if t_iter < math.inf else 0.0
        boundary = t - into
        compute_end = boundary + self.job.compute_s
        if comm:
            since = max(t, compute_end)
        else:
            since = compute_end if t < compute_end else boundary + t_iter + self.job.compute_s
        self.hang = {"record": r, "since": since, "comm": comm}
        self.acc["lost_work"] += max(since - t, 0.0)  # the others compute on until they stall: rolled back later
        if r is not None:
            r.struck = since
        self.poke()

    def injector(self, r: FaultRecord):
        f = r.fault
        yield self.env.timeout(f.at)
        self.active.append(r)
        if f.kind in HANGS:
            # a rank that hangs while the job is not running (restarting, stopped by another hang, writing a
            # checkpoint) stops it when it runs again
            while self.paused or self.hang is not None or self.writing:
                yield self.resumed()
            if self.wall_end is None:
                self.strike_hang(r, self.env.now, comm=f.kind == "rank_hang_comm")
            return
        chunk = self.chunk
        if chunk is not None and f.kind not in CUT_KINDS:  # slowdowns: from the next boundary
            start, t_iter, _ = chunk
            r.struck = start + math.ceil((self.env.now - start) / t_iter - 1e-12) * t_iter
        else:
            r.struck = self.env.now  # a link going down is a link-state event at once
        if f.kind in CUT_KINDS and not self.recovery.watchdog_only:  # the fabric reports its ports down
            report = (Detection(self.env.now, "comm_slow", ("switch", f.node), "switch ports down")
                      if f.kind == "switch_down" else self.det.link_down(self.env.now, self.links_of[id(r)][0]))
            self.env.process(self.handle(report, record=r))
        if f.kind == "link_flap":
            self.env.process(self.flapper(r))
        self.poke()

    def flapper(self, r: FaultRecord):
        f = r.fault
        while id(r) not in self.fixed and self.done < self.job.iterations:
            self.flaps_down.add(id(r))
            self.poke()
            yield self.env.timeout(f.down_s)
            self.flaps_down.discard(id(r))
            self.poke()
            yield self.env.timeout(f.period_s - f.down_s)

    def sample(self) -> Sample | Stall | None:
        hang = self.hang
        if hang is not None:
            if self.env.now < hang["since"]:
                return None
            members = tuple(range(self.job.ranks))
            r = hang["record"]
            culprit = r.fault.rank if r is not None else None
            entered = tuple(m for m in members if hang["comm"] or m != culprit)
            if r is not None and r.fault.kind in CUT_KINDS:  # cables with no alternative: the ranks behind fall silent
                cut = set(self.links_of[id(r)])
                silent = tuple(m for m in members if set(nic_cable(self.topo, int(self.gpus[m]))) & cut)
            else:
                silent = (culprit,) if hang["comm"] and culprit is not None else ()
            return Stall(self.env.now, hang["since"], members, entered, silent)
        chunk = self.chunk
        if self.paused:
            return None
        if chunk is not None and self.env.now - chunk[0] >= chunk[1]:  # an iteration of this run has completed
            rec = self.cache(chunk[2])
        elif self.last_completed is not None:
            rec = self.last_completed[1]
        else:
            return None
        base = self.telemetry.get(id(rec))
        if base is None:
            base = self.telemetry[id(rec)] = telemetry_of(rec)
        names, durations, late_ranks, excess, order, keys, per_byte = base
        n = len(durations) + len(excess) + len(per_byte)
        # one noise factor per measurement, drawn in the order the measurements are listed
        z = self.rng.lognormal(0.0, self.config.noise, n) if self.config.noise else np.ones(n)
        a, b = len(durations), len(durations) + len(excess)
        calls = dict(zip(names, (durations * z[:a]).tolist()))
        summed = np.zeros(len(order))
        np.add.at(summed, late_ranks, excess * z[a:b])  # in order: each rank's calls added one by one
        late = dict(zip(order, summed.tolist()))
        cells = dict(zip(keys, (per_byte * z[b:]).tolist()))
        return Sample(self.env.now, calls, late, cells)

    def detector_process(self):
        interval = self.config.interval_s
        while self.wall_end is None:
            if self.recovery.watchdog_only:
                yield from self.watch()
                continue
            if self.quiet():  # nothing new to see until something changes: count the samples, skip them
                since = self.env.now
                self.change = self.env.event()
                yield self.change
                skipped = math.floor((self.env.now - since) / interval + 1e-9)  # (not judged: not checks)
                yield self.env.timeout(since + (skipped + 1) * interval - self.env.now)
            else:
                yield self.env.timeout(interval)
            if self.env.now > self.limit:
                raise ConfigError(f"the job has not finished after {self.limit:.3g} simulated seconds (1000 x its "
                                  "healthy run): its faults slow it beyond what this study simulates", field="faults")
            if self.wall_end is not None:
                return
            if self.change.triggered:  # something changed since the last sample
                self.change = self.env.event()
                self.in_state = 0
            observed = self.sample()
            if observed is None:
                continue
            self.in_state += 1
            found = self.det.observe(observed)
            if found is not None:
                yield from self.handle(found)

    def quiet(self) -> bool:
        """Whether the detector may stop sampling until something changes: the job runs (no hang, no
        pause), the detector has learnt the healthy medians, and the last `QUIET_WINDOWS` windows of samples,
        all in the current fabric state, raised no flag. Later samples of an unchanged state differ only by
        their noise; skipping them is what lets a month of a large job run in minutes. Skipped samples are not
        counted as checks (the noise's own false-alarm rate is measured on fault-free runs, where nothing is
        skipped: `clean_runs`)."""
        det = self.det
        return (self.quiet_ok and self.hang is None and not self.paused and not self.change.triggered
                and det.learnt() and self.in_state >= QUIET_WINDOWS * self.config.window
                and len(det.recent) >= self.config.window and all(flag is None for flag, _ in det.recent))

    def watch(self):
        """Without a detector: wait for the watchdog to fire on a hang, or (``manual``) for people to notice
        a slowdown; then recover. Waits for a change when neither can happen."""
        rec = self.recovery
        deadline, r = math.inf, None
        if self.hang is not None:
            deadline, r = self.hang["since"] + rec.watchdog_s, self.hang["record"]
        elif rec.policy == "manual" and not self.paused:
            slow = [x for x in self.active if x.struck is not None and x.detected is None and id(x) not in self.fixed
                    and x.fault.kind not in HANGS]
            if slow and self.cache(self.state_now()).time > self.healthy_t * (1 + 1e-9):
                r = min(slow, key=lambda x: x.struck)
                deadline = r.struck + rec.notice_slow_s
        self.change = self.env.event()
        if deadline == math.inf:
            yield self.change
            return
        yield self.env.any_of([self.env.timeout(max(deadline - self.env.now, 0.0)), self.change])
        if self.env.now < deadline - 1e-9 or self.wall_end is not None:
            return
        yield from self.one_at_a_time()  # (a slowdown noticed during a checkpoint write: after it)
        if rec.policy == "none":
            yield from self.recover(r, Detection(self.env.now, "watchdog", ("unknown",)))
            return
        # manual: the bisection finds the faulty part, which is replaced (or a cable taken out of service)
        found = Detection(self.env.now, "manual", self.true_culprit(r) if r is not None else ("unknown",))
        if r is not None:
            r.detected, r.cls, r.culprit, r.correct = found.time, found.cls, found.culprit, True
        yield from self.recover(r, found)

    def true_culprit(self, r: FaultRecord) -> tuple:
        f = r.fault
        if f.rank is not None:
            return ("rank", f.rank)
        return ("switch", f.node) if f.node else ("link", f.link)

    def match(self, found: Detection) -> FaultRecord | None:
        hang = self.hang
        if found.cls in ("comm_hang", "noncomm_hang") and hang is not None and hang["record"] is not None:
            return hang["record"]  # the fault behind the stall (found before, perhaps, as something milder)
        for r in self.records:
            if r.struck is not None and r.detected is None and r.struck <= found.time:
                return r
        return None

    def handle(self, found: Detection, record: FaultRecord | None = None):
        """A detection: match it to the fault behind it (`record`: the fault a link-state report is about),
        judge it, recover."""
        self.detections.append(found)
        r = record or self.match(found)
        if r is None:
            self.false_alarms += 1
            self.det.reset()
            return
        # a link-state report (its own process) waits for a hang by another fault to be dealt with first
        yield from self.one_at_a_time(r if record is not None else None)
        if id(r) in self.fixed or self.wall_end is not None:  # mended meanwhile (or the job ended)
            return
        self.recovering = True
        try:
            yield from self.judged(r, found)
        finally:
            self.recovering = False
            self.release()

    def judged(self, r: FaultRecord, found: Detection):
        r.detected, r.cls, r.culprit = found.time, found.cls, found.culprit
        hang = self.hang
        if r.fault.kind in CUT_KINDS and hang is not None and hang["record"] is r:  # no alternative: a hang
            behind = {m for m in range(self.job.ranks) if set(nic_cable(self.topo, int(self.gpus[m]))) & set(self.links_of[id(r)])}
            r.correct = (found.cls == "comm_hang" and found.culprit[0] == "rank" and found.culprit[1] in behind
                         or self.culprit_matches(r, found.culprit))  # the fabric's report named it
        else:
            r.correct = found.cls == EXPECTED_CLASS[r.fault.kind] and self.culprit_matches(r, found.culprit)
        yield from self.recover(r, found)

    def culprit_matches(self, r: FaultRecord, culprit: tuple) -> bool:
        f = r.fault
        if f.rank is not None:
            return culprit == ("rank", f.rank)
        if f.node is not None:
            return culprit == ("switch", f.node)
        return culprit[0] == "link" and set(cable_links(self.topo, culprit[1])) == set(self.links_of[id(r)])

    def culprit_links(self, culprit: tuple) -> set[int]:
        if culprit[0] == "link":
            return set(cable_links(self.topo, culprit[1]))
        if culprit[0] == "links":
            return {l for c in culprit[1] for l in cable_links(self.topo, c)}
        if culprit[0] == "switch":
            return set(switch_links(self.topo, culprit[1]))
        return set()

    def exclude(self, links: set[int]) -> None:
        """Routing leaves `links` out from now on; the detector maps cells to the new routes."""
        self.excluded = self.excluded | frozenset(links)
        self.det.paths = self.cache.paths(self.excluded)

    def recover(self, r: FaultRecord | None, found: Detection):
        hang = self.hang
        if hang is not None:
            stalled = self.env.now - hang["since"]
            # found before the others stalled (a link-state report): they computed only until now, not until
            # the stall the hang charged them for
            self.acc["detection" if stalled >= 0 else "lost_work"] += stalled
        suspects = self.culprit_links(found.culprit)
        link_fault = r is not None and r.fault.rank is None
        policy = self.recovery.policy
        if suspects and self.cache(replace(self.state, down=self.state.down | frozenset(suspects))).hung:
            suspects = set()  # routing around them would cut ranks off: do not
        if suspects and policy in ("replan", "elastic"):  # route around the suspect cables and go on (C4P)
            self.exclude(suspects)
            if link_fault and set(self.links_of[id(r)]) <= suspects:
                self.fixed.add(id(r))
                r.recovered = self.env.now
            self.det.reset()
            self.poke()
            return
        if policy == "elastic" and r is not None and r.fault.rank is not None and hang is None:
            yield from self.elastic(r)
            return
        if hang is None and found.cls in ("comm_slow", "noncomm_slow"):
            # a slowdown: restart only when it costs more over the rest of the run than a restart does
            slow_t = self.cache(self.state_now()).time  # the state the fault makes (the job may not be in it yet)
            remaining = (self.job.iterations - self.done) * (slow_t - self.healthy_t)
            if remaining < self.recovery.restart_s + (self.done - self.saved) * self.healthy_t:
                if r is not None:
                    r.recovered = None  # tolerated: cheaper to run slow to the end
                self.det.reset()
                return
        self.paused = True
        self.hang = None
        self.poke()
        rec = self.recovery
        if policy == "manual":  # an engineer responds, then bisects the servers with collective tests
            servers = max(1, len({int(h) for h in self.topo.gpu_attr("host")[:self.job.ranks]}))
            diagnosis = rec.respond_s + math.ceil(math.log2(servers)) * rec.bisect_round_s
            yield self.env.timeout(diagnosis)
            self.acc["diagnosis"] += diagnosis
        if self.checkfree(r):  # the stage rebuilt from its neighbours: no rollback, extra iterations instead
            extra = min(rec.checkfree_iterations, self.done)
            self.acc["lost_work"] += extra * self.healthy_t
            self.done -= extra
            relaunch = rec.restart_s
        else:  # restart from the last checkpoint on a spare (the faulty node replaced; a faulty link isolated)
            lost = self.done - self.saved
            self.acc["lost_work"] += lost * self.healthy_t
            self.done = self.saved
            relaunch = rec.restart_s + rec.checkpoint_load_s + (rec.replace_s if policy == "manual" else 0.0)
        yield self.env.timeout(relaunch)
        self.acc["restart"] += relaunch
        if r is not None:
            cut = self.cache(self.state_now()).hung  # ranks with no path left: the job moves to other servers
            if link_fault and hang is None and not cut:  # a restart does not mend a link: routing leaves it out
                self.exclude(suspects)
                if set(self.links_of[id(r)]) <= suspects:
                    self.fixed.add(id(r))
            else:  # a node fault, or cables with no alternative: the job moves to a spare node
                self.fixed.add(id(r))
            r.recovered = self.env.now
        self.paused = False
        self.det.reset()
        self.poke()

    def checkfree(self, r: FaultRecord | None) -> bool:
        """Whether CheckFree rebuilds this fault's stage: the policy, a rank's fault, a stage with a
        neighbour on each side."""
        if self.recovery.policy != "checkfree" or r is None or r.fault.rank is None:
            return False
        return 0 < self.job.stage_of(r.fault.rank) < self.job.pp - 1

    def elastic(self, r: FaultRecord):
        """Go on without the faulty rank's replica (the job stops `reform_s` to re-form its communicators);
        a spare joins `spare_s` later (its own process: the detector watches on meanwhile)."""
        yield from self.reform()
        self.dropped = self.job.replica_of(r.fault.rank)
        self.fixed.add(id(r))
        r.recovered = self.env.now
        self.det.reset()
        self.env.process(self.spare_joins())

    def reform(self):
        """The job stops `reform_s` to re-form its communicators (one recovery at a time, none during a
        checkpoint write); the partial iteration is lost."""
        self.paused = True
        self.poke()
        yield self.env.timeout(self.recovery.reform_s)
        self.acc["restart"] += self.recovery.reform_s
        self.paused = False
        self.poke()

    def spare_joins(self):
        yield self.env.timeout(self.recovery.spare_s)  # the spare joins: full size again
        yield from self.one_at_a_time(no_hang=True)
        self.recovering = True
        yield from self.reform()
        self.dropped = None
        self.recovering = False
        self.poke()

    def one_at_a_time(self, hang_of: FaultRecord | None = None, no_hang: bool = False):
        """Wait until no other recovery runs and no checkpoint is being written (and, with `hang_of`, until
        no hang by another fault is going on: the hang's own recovery comes first; with `no_hang`, until no
        hang at all is)."""
        while (self.recovering or self.writing or (self.hang is not None and (
                no_hang or (hang_of is not None and self.hang["record"] is not hang_of)))):
            yield self.resumed()

__all__ = ["PARTS", "FaultRecord", "JobRun", "RunResult", "cable_links", "cable_names", "nic_cable", "rank_cables",
           "run_job", "switch_links"]

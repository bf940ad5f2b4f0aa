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
from netsim.faults.iteration import IterationCache, State, connection_links, job_gpus
from netsim.faults.spec import EXPECTED_CLASS, HANGS, DetectorConfig, Fault, JobSpec, RecoveryConfig
from netsim.topology import Topology


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


def nic_cable(topo: Topology, gpu: int) -> list[int]:
    """The cable a GPU's traffic leaves the server by: its NIC's uplink (or the GPU's own cable)."""
    kinds = topo.node_kind
    out = [l for l in range(topo.num_links) if int(topo.link_src[l]) == gpu]
    names = topo.node_names
    for l in out:
        nic = int(topo.link_dst[l])
        if kinds[nic] == "nic":
            up = [k for k in range(topo.num_links) if int(topo.link_src[k]) == nic and kinds[int(topo.link_dst[k])]
                  not in ("gpu", "nvswitch")]
            if up:
                return topo.links_named(f"{names[nic]}<->{names[int(topo.link_dst[up[0]])]}")
    return topo.links_named(f"{names[gpu]}<->{names[int(topo.link_dst[out[0]])]}")


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
            cache: IterationCache | None = None) -> RunResult:
    """Run `job` for its iterations with `faults`; see the module docstring."""
    detector = detector or DetectorConfig()
    recovery = recovery or RecoveryConfig()
    gpus = job_gpus(topo, job)
    for f in faults:
        if f.rank is not None and f.rank >= job.ranks:
            raise ConfigError(f"rank {f.rank} is outside the job's {job.ranks} ranks", field="rank")
    cache = cache or IterationCache(topo, job, routing, seed)
    cables = cable_names(topo)
    det = Detector(detector, job.compute_s, connection_links(topo, job, routing, seed), cables)
    rng = np.random.default_rng([seed, 0x43344431])
    env = simpy.Environment()
    healthy = State(tuple(range(job.replicas)))
    healthy_t = cache(healthy).time
    records = [FaultRecord(f) for f in sorted(faults, key=lambda f: f.at)]
    # what each fault does to the fabric state
    links_of = {id(r): (cable_links(topo, r.fault.link) if r.fault.link else
                        nic_cable(topo, int(gpus[r.fault.rank])) if r.fault.kind == "nic_degraded" else [])
                for r in records}
    run = {"state": healthy, "done": 0, "hang": None, "chunk": None, "excluded": frozenset(), "fixed": set(),
           "dropped": None, "wall_end": None}
    acc = dict.fromkeys(("lost_work", "detection", "restart", "slowed"), 0.0)
    detections: list[Detection] = []
    false_alarms = [0]
    active: list[FaultRecord] = []
    flaps_down: set[int] = set()

    def state_now() -> State:
        down, degraded, slow = set(run["excluded"]), [], []
        for r in active:
            f = r.fault
            if id(r) in run["fixed"]:
                continue
            if f.kind == "link_down":
                down |= set(links_of[id(r)])
            elif f.kind == "link_flap" and id(r) in flaps_down:
                down |= set(links_of[id(r)])
            elif f.kind in ("link_degraded", "nic_degraded"):
                degraded += [(l, f.factor) for l in links_of[id(r)] if l not in run["excluded"]]
            elif f.kind == "gpu_slow":
                slow.append((f.rank, f.factor))
        replicas = tuple(x for x in range(job.replicas) if x != run["dropped"])
        return State(replicas, frozenset(down), tuple(sorted(degraded)), tuple(sorted(slow)))

    wake = {"event": env.event()}

    def poke() -> None:  # the fabric state changed: the job re-plans its current run of iterations
        if not wake["event"].triggered:
            wake["event"].succeed()

    limit = 1000 * job.iterations * healthy_t + 100 * (recovery.restart_s + recovery.watchdog_s + recovery.spare_s)

    def training():
        while run["done"] < job.iterations - 1e-9:
            if env.now > limit:
                raise RuntimeError(f"the job made no progress for {limit:.3g} simulated seconds")
            if run["hang"] is not None or run.get("paused"):
                wake["event"] = env.event()
                yield wake["event"]
                continue
            state = run["state"] = state_now()
            rec = cache(state)
            if rec.hung:  # a rank lost its only path (a NIC's own cable down): communication stops at once
                cause = next((r for r in active if r.fault.kind in ("link_down", "link_flap") and id(r) not in
                              run["fixed"] and set(links_of[id(r)]) & state.down), None)
                strike_hang(cause, env.now, comm=True)
                continue
            t_iter = rec.time
            share = len(state.replicas) / job.replicas  # progress per iteration (fewer replicas: less)
            left = math.ceil((job.iterations - run["done"]) / share - 1e-9)
            start = env.now
            run["chunk"] = (start, t_iter, state)
            wake["event"] = env.event()
            pending = [r.fault.at for r in records if r.struck is None and r.fault.at >= start]
            horizon = min(pending, default=math.inf)
            # stop at the boundary after the next fault strikes (it may hang or slow the job)
            k = left if horizon == math.inf else max(1, min(left, math.floor((horizon - start) / t_iter) + 1))
            done = env.timeout(k * t_iter)
            yield env.any_of([done, wake["event"]])
            if done.processed:
                finished = k
            else:
                finished = min(k, math.floor((env.now - start) / t_iter + 1e-9))
                stopped = run["hang"] is not None or run.get("paused")
                if not stopped and finished < k:  # a state change: it acts from the next boundary
                    yield env.timeout(max(start + (finished + 1) * t_iter - env.now, 0.0))
                    finished += 1
                elif stopped:
                    acc["lost_work"] += env.now - (start + finished * t_iter)  # the iteration it stopped
            progress = min(finished * share, job.iterations - run["done"])
            run["done"] += progress
            acc["slowed"] += finished * t_iter - progress * healthy_t
            if finished:
                run["last_completed"] = (state, rec)
            run["chunk"] = None
        run["wall_end"] = env.now

    def strike_hang(r: FaultRecord | None, t: float, comm: bool) -> None:
        chunk = run["chunk"]
        if chunk is None:
            start, t_iter = env.now, cache(run["state"]).time
        else:
            start, t_iter, _ = chunk
        into = (t - start) % t_iter if t_iter < math.inf else 0.0
        boundary = t - into
        compute_end = boundary + job.compute_s
        if comm:
            since = max(t, compute_end)
        else:
            since = compute_end if t < compute_end else boundary + t_iter + job.compute_s
        run["hang"] = {"record": r, "since": since, "comm": comm}
        acc["lost_work"] += max(since - t, 0.0)  # the others compute on until they stall: rolled back later
        if r is not None:
            r.struck = since
        poke()

    def injector(r: FaultRecord):
        f = r.fault
        yield env.timeout(f.at)
        active.append(r)
        if f.kind in HANGS:
            strike_hang(r, env.now, comm=f.kind == "rank_hang_comm")
            return
        chunk = run["chunk"]
        if chunk is not None and f.kind not in ("link_down", "link_flap"):  # slowdowns: from the next boundary
            start, t_iter, _ = chunk
            r.struck = start + math.ceil((env.now - start) / t_iter - 1e-12) * t_iter
        else:
            r.struck = env.now  # a link going down is a link-state event at once
        if f.kind in ("link_down", "link_flap") and recovery.policy != "none":
            report = det.link_down(env.now, links_of[id(r)][0])
            env.process(handle(report, immediate=True))
        if f.kind == "link_flap":
            env.process(flapper(r))
        poke()

    def flapper(r: FaultRecord):
        f = r.fault
        while id(r) not in run["fixed"] and run["done"] < job.iterations:
            flaps_down.add(id(r))
            poke()
            yield env.timeout(f.down_s)
            flaps_down.discard(id(r))
            poke()
            yield env.timeout(f.period_s - f.down_s)

    def sample() -> Sample | Stall | None:
        hang = run["hang"]
        if hang is not None:
            if env.now < hang["since"]:
                return None
            members = tuple(range(job.ranks))
            r = hang["record"]
            culprit = r.fault.rank if r is not None else None
            entered = tuple(m for m in members if hang["comm"] or m != culprit)
            if r is not None and r.fault.link:  # a cable with no alternative: the ranks behind it fall silent
                cut = set(links_of[id(r)])
                silent = tuple(m for m in members if set(nic_cable(topo, int(gpus[m]))) & cut)
            else:
                silent = (culprit,) if hang["comm"] and culprit is not None else ()
            return Stall(env.now, hang["since"], members, entered, silent)
        chunk = run["chunk"]
        if run.get("paused"):
            return None
        if chunk is not None and env.now - chunk[0] >= chunk[1]:  # an iteration of this run has completed
            rec = cache(chunk[2])
        elif run.get("last_completed") is not None:
            rec = run["last_completed"][1]
        else:
            return None
        noise = lambda: float(rng.lognormal(0.0, detector.noise)) if detector.noise else 1.0  # noqa: E731
        calls = {c.name: (c.exit - max(c.enter)) * noise() for c in rec.calls}
        late: dict[int, float] = {}
        for c in rec.calls:  # lateness summed over the calls: a slow GPU is late in each call it takes part in
            median = float(np.median(c.enter))
            for m, e in zip(c.ranks, c.enter):
                late[m] = late.get(m, 0.0) + max(e - median, 0.0) * noise()
        cells = {k: v[1] / v[0] * noise() for k, v in rec.connections.items() if v[0] > 0}
        return Sample(env.now, calls, late, cells)

    def detector_process():
        while run["wall_end"] is None:
            yield env.timeout(detector.interval_s)
            if env.now > limit:
                raise RuntimeError(f"the job did not finish within {limit:.3g} simulated seconds")
            if run["wall_end"] is not None:
                return
            if recovery.policy == "none":
                hang = run["hang"]
                if hang is not None and env.now - hang["since"] >= recovery.watchdog_s:
                    yield from recover(hang["record"], Detection(env.now, "watchdog", ("unknown",)))
                continue
            observed = sample()
            if observed is None:
                continue
            found = det.observe(observed)
            if found is not None:
                yield from handle(found)

    def match(found: Detection) -> FaultRecord | None:
        hang = run["hang"]
        if found.cls in ("comm_hang", "noncomm_hang") and hang is not None and hang["record"] is not None:
            return hang["record"]  # the fault behind the stall (found before, perhaps, as something milder)
        for r in records:
            if r.struck is not None and r.detected is None and r.struck <= found.time:
                return r
        return None

    def handle(found: Detection, immediate: bool = False):
        detections.append(found)
        r = match(found)
        if r is None:
            false_alarms[0] += 1
            det.reset()
            return
        r.detected, r.cls, r.culprit = found.time, found.cls, found.culprit
        hang = run["hang"]
        if r.fault.link and hang is not None and hang["record"] is r:  # a cable with no alternative: a hang
            behind = {m for m in range(job.ranks) if set(nic_cable(topo, int(gpus[m]))) & set(links_of[id(r)])}
            r.correct = found.cls == "comm_hang" and found.culprit[0] == "rank" and found.culprit[1] in behind
        else:
            r.correct = found.cls == EXPECTED_CLASS[r.fault.kind] and culprit_matches(r, found.culprit)
        yield from recover(r, found)

    def culprit_matches(r: FaultRecord, culprit: tuple) -> bool:
        f = r.fault
        if f.rank is not None:
            return culprit == ("rank", f.rank)
        return culprit[0] == "link" and set(cable_links(topo, culprit[1])) == set(links_of[id(r)])

    def culprit_links(culprit: tuple) -> set[int]:
        if culprit[0] == "link":
            return set(cable_links(topo, culprit[1]))
        if culprit[0] == "links":
            return {l for c in culprit[1] for l in cable_links(topo, c)}
        return set()

    def recover(r: FaultRecord | None, found: Detection):
        hang = run["hang"]
        if hang is not None:
            acc["detection"] += env.now - hang["since"]
        suspects = culprit_links(found.culprit)
        link_fault = r is not None and r.fault.kind.startswith("link")
        policy = recovery.policy
        if suspects and cache(replace(run["state"], down=run["state"].down | frozenset(suspects))).hung:
            suspects = set()  # routing around them would cut ranks off: do not
        if suspects and policy in ("replan", "elastic"):  # route around the suspect cables and go on (C4P)
            run["excluded"] = run["excluded"] | frozenset(suspects)
            if link_fault and set(links_of[id(r)]) <= suspects:
                run["fixed"].add(id(r))
                r.recovered = env.now
            det.reset()
            poke()
            return
        if policy == "elastic" and r is not None and r.fault.rank is not None and hang is None:
            run["paused"] = True
            yield env.timeout(recovery.reform_s)
            acc["restart"] += recovery.reform_s
            run["dropped"] = r.fault.rank // job.tp
            run["fixed"].add(id(r))
            run["paused"] = False
            r.recovered = env.now
            det.reset()
            poke()
            yield env.timeout(recovery.spare_s)  # the spare joins: full size again
            run["paused"] = True
            yield env.timeout(recovery.reform_s)
            acc["restart"] += recovery.reform_s
            run["dropped"] = None
            run["paused"] = False
            poke()
            return
        if hang is None and found.cls in ("comm_slow", "noncomm_slow"):
            # a slowdown: restart only when it costs more over the rest of the run than a restart does
            slow_t = cache(run["state"]).time
            remaining = (job.iterations - run["done"]) * (slow_t - healthy_t)
            lost = run["done"] - math.floor(run["done"] / job.checkpoint_every + 1e-9) * job.checkpoint_every
            if remaining < recovery.restart_s + lost * healthy_t:
                if r is not None:
                    r.recovered = None  # tolerated: cheaper to run slow to the end
                det.reset()
                return
        # restart from the last checkpoint on a spare (the faulty node replaced; a faulty link isolated)
        run["paused"] = True
        run["hang"] = None
        poke()
        lost = run["done"] - math.floor(run["done"] / job.checkpoint_every + 1e-9) * job.checkpoint_every
        acc["lost_work"] += lost * healthy_t
        run["done"] -= lost
        yield env.timeout(recovery.restart_s)
        acc["restart"] += recovery.restart_s
        if r is not None:
            if link_fault and hang is None:  # a restart does not mend a link: routing leaves out what was found
                run["excluded"] = run["excluded"] | frozenset(suspects)
                if set(links_of[id(r)]) <= suspects:
                    run["fixed"].add(id(r))
            else:  # a node fault, or a cable with no alternative: the job moves to a spare node
                run["fixed"].add(id(r))
            r.recovered = env.now
        run["paused"] = False
        det.reset()
        poke()

    env.process(training())
    for r in records:
        env.process(injector(r))
    env.process(detector_process())
    env.run()
    if run["wall_end"] is None:
        raise RuntimeError("the job did not finish (a hang nothing recovered)")
    fault_free = job.iterations * healthy_t
    return RunResult(run["wall_end"], fault_free, job.iterations, acc, records, detections, false_alarms[0],
                     det.checks, healthy_t)


__all__ = ["FaultRecord", "RunResult", "cable_links", "cable_names", "nic_cable", "run_job"]

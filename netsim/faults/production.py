"""Faults as production sees them: rates per component over a long horizon, and what they cost a job.

`COMPONENTS` is the one registry of fault sources. Each has a mean time between failures per unit (a GPU,
a server, a NIC; the network and software per GPU of the job), the fault kinds its failures show as to
the job, with their shares, and where the numbers come from. `production_faults` draws a job's fault
stream from them (a Poisson process per component, the target drawn uniformly: a rank, a server's rank,
a fabric cable or switch the job's traffic crosses). `production_study` runs one long job with that stream
under each recovery policy, with the same faults, and accounts the time they cost.

Where the rates come from: Meta's report of the Llama 3 405B pre-training ("The Llama 3 Herd of Models",
2024, section 3.3.4): 419 unexpected interruptions in a 54-day snapshot on 16,384 H100 GPUs (2,048
servers of 8), by root cause —

    faulty GPU 148, GPU HBM3 memory 72, GPU SRAM memory 19, GPU system processor 17,
    GPU thermal interface and sensor 6, silent data corruption 6          -> gpu      268
    host maintenance 32, power supply 3, SSD 3, server chassis 2,
    IO expansion board 2, CPU 2, system memory 2                         -> host      46
    network switch / cable 35                                            -> network   35
    NIC 7                                                                -> nic        7
    software bug 54, NCCL watchdog timeouts 7, dependency 2              -> software  63

An MTBF per unit is units x 1,296 hours / failures (the report's percentages are of a different total;
the counts add up to 419). What the report does not say, and this model assumes (change them with
`mtbf_hours` and your own components):

- how a failure shows to the job: a GPU error stops its rank in compute (the process dies or hangs:
  `rank_hang_compute`), NVLink errors (counted under faulty GPU) stop it inside a collective
  (`rank_hang_comm`: taken as 28%), a thermal fault slows it (`gpu_slow`: 6 of 268); a server fault stops
  its ranks (`rank_hang_compute` on one of them: the job stops the same way); a NIC fault either drops
  the NIC (`rank_hang_comm`) or degrades its link (`nic_degraded`), half each; software faults hang a
  collective or a rank's compute, half each;
- the network's 35: half switches (`switch_down`), half cables, a cable fault being a cable down (40%),
  flapping (30%) or degraded (30%); spread over the fabric cables and switches the job crosses, at the
  rate per GPU of the job the report gives.

A slowdown's factor is drawn in [0.2, 0.6] of full speed; a flap is down 5 s of every 60 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from netsim.errors import ConfigError
from netsim.faults.campaign import downtime_share, fabric_cables
from netsim.faults.iteration import IterationCache, State
from netsim.faults.run import run_job
from netsim.faults.spec import DetectorConfig, Fault, JobSpec, RecoveryConfig
from netsim.topology import Topology

LLAMA3_HOURS = 54 * 24  # the report's snapshot
LLAMA3_GPUS, LLAMA3_SERVERS = 16_384, 2_048


@dataclass(frozen=True)
class Component:
    """A source of faults: `mtbf_hours` per unit of `per` (``gpu``: each GPU of the job, ``host``: each of
    its servers, ``nic``: each rank's NIC); `kinds`: the fault kinds a failure shows as, with their shares
    (they add up to 1); `source`: where the rate comes from."""

    name: str
    mtbf_hours: float
    per: str
    kinds: dict[str, float]
    source: str

    def __post_init__(self) -> None:
        if not self.mtbf_hours > 0:
            raise ConfigError(f"expected an MTBF > 0 hours, got {self.mtbf_hours!r}", field=f"mtbf_hours.{self.name}")
        if abs(sum(self.kinds.values()) - 1) > 1e-9:
            raise ConfigError(f"the shares of {self.name}'s fault kinds add up to {sum(self.kinds.values())}, not 1",
                              field=f"components.{self.name}")


def _llama3(failures: int, units: int) -> float:
    return units * LLAMA3_HOURS / failures


COMPONENTS = {c.name: c for c in (
    Component("gpu", _llama3(268, LLAMA3_GPUS), "gpu",
              {"rank_hang_compute": 1 - 0.28 - 6 / 268, "rank_hang_comm": 0.28, "gpu_slow": 6 / 268},
              "Llama 3 405B: 268 GPU failures (GPU, HBM3, SRAM, system processor, thermal, SDC) in 54 days, 16,384 GPUs"),
    Component("host", _llama3(46, LLAMA3_SERVERS), "host", {"rank_hang_compute": 1.0},
              "Llama 3 405B: 46 server failures (host maintenance, power, SSD, chassis, IO board, CPU, memory), "
              "2,048 servers"),
    Component("nic", _llama3(7, LLAMA3_GPUS), "nic", {"rank_hang_comm": 0.5, "nic_degraded": 0.5},
              "Llama 3 405B: 7 NIC failures, one NIC per GPU"),
    Component("network", _llama3(35, LLAMA3_GPUS), "gpu",
              {"switch_down": 0.5, "link_down": 0.2, "link_flap": 0.15, "link_degraded": 0.15},
              "Llama 3 405B: 35 network switch or cable failures, per GPU of the job"),
    Component("software", _llama3(63, LLAMA3_GPUS), "gpu", {"rank_hang_comm": 0.5, "rank_hang_compute": 0.5},
              "Llama 3 405B: 54 software bugs, 7 NCCL watchdog timeouts, 2 dependency failures"),
)}


def fault_sources(mtbf_hours: dict[str, float] | None = None, scale: float = 1.0) -> dict[str, Component]:
    """The registry's components, with MTBFs replaced where `mtbf_hours` names them and every rate
    multiplied by `scale` (2: twice as many faults)."""
    mtbf_hours = mtbf_hours or {}
    for name in mtbf_hours:
        if name not in COMPONENTS:
            raise ConfigError(f"unknown component {name!r} (known: {', '.join(COMPONENTS)})", field="mtbf_hours")
    if not 0 < scale < 1e6:
        raise ConfigError(f"expected a rate scale > 0, got {scale!r}", field="scale")
    return {name: replace(c, mtbf_hours=mtbf_hours.get(name, c.mtbf_hours) / scale) for name, c in COMPONENTS.items()}


def job_servers(topo: Topology, job: JobSpec) -> dict[int, list[int]]:
    """The job's servers: host id -> its ranks."""
    hosts = topo.gpu_attr("host")[:job.ranks]
    out: dict[int, list[int]] = {}
    for rank, host in enumerate(hosts.tolist()):
        out.setdefault(int(host), []).append(rank)
    return out


def fabric_switches(topo: Topology, cables: list[str]) -> list[str]:
    """The switches at either end of the fabric cables the job crosses."""
    kinds = topo.node_kind
    names = {n for cable in cables for n in cable.split("<->")}
    return sorted(n for n in names if kinds[topo.node(n)] not in ("gpu", "nic", "nvswitch"))


def production_faults(topo: Topology, job: JobSpec, rng: np.random.Generator, horizon_s: float,
                      sources: dict[str, Component] | None = None, cache: IterationCache | None = None
                      ) -> list[tuple[str, Fault]]:
    """(component, fault) pairs over `horizon_s` seconds, in time order: for each component a Poisson
    process at (units of it in the job) / MTBF, each failure a kind drawn by its shares and a target drawn
    uniformly (see the module docstring)."""
    sources = sources or COMPONENTS
    servers = job_servers(topo, job)
    cables = fabric_cables(topo, job, cache=cache)
    switches = fabric_switches(topo, cables)
    units = {"gpu": job.ranks, "nic": job.ranks, "host": len(servers)}
    out = []
    for name, c in sources.items():
        rate = units[c.per] / (c.mtbf_hours * 3600.0)  # failures per second
        count = int(rng.poisson(rate * horizon_s))
        times = np.sort(rng.uniform(0.0, horizon_s, count))
        kinds, shares = list(c.kinds), np.array(list(c.kinds.values()))
        for at in times.tolist():
            kind = kinds[int(rng.choice(len(kinds), p=shares / shares.sum()))]
            factor = float(rng.uniform(0.2, 0.6))
            if kind in ("link_down", "link_flap", "link_degraded"):
                if not cables:
                    continue  # the job crosses no cable between switches: a cable fault cannot touch it
                fault = Fault(kind, at, link=cables[int(rng.integers(len(cables)))], factor=factor)
            elif kind == "switch_down":
                if not switches:
                    continue
                fault = Fault(kind, at, node=switches[int(rng.integers(len(switches)))])
            else:
                if c.per == "host":
                    ranks = list(servers.values())[int(rng.integers(len(servers)))]
                    rank = ranks[0]
                else:
                    rank = int(rng.integers(job.ranks))
                fault = Fault(kind, at, rank=rank, factor=factor)
            out.append((name, fault))
    return sorted(out, key=lambda cf: cf[1].at)


HORIZON_MARGIN = 10  # faults are drawn over this many times the fault-free run (a run slowed beyond: refused)
MODES = {"detector": "C4D-like detection and the scenario's recovery policy",
         "manual": "no detector: the watchdog or people notice, an engineer bisects, a replacement node",
         "none": "no detector: hangs end at the watchdog, slowness stays"}


@dataclass(frozen=True, eq=False)
class ProductionResult:
    runs: pl.DataFrame  # one row per (seed, mode): wall-clock, fault-free, the parts of the overhead
    faults: pl.DataFrame  # one row per (seed, mode, fault): what, when it struck, was found, was mended
    downtime: pl.DataFrame  # per mode: the error-induced downtime share over every seed's run
    days: float
    iteration_s: float
    sources: dict[str, Component] = field(default_factory=dict)


def production_study(topo: Topology, job: JobSpec, days: float, *, seeds: int = 1, seed: int = 0,
                     detector: DetectorConfig | None = None, recovery: RecoveryConfig | None = None,
                     routing: str = "ecmp", sources: dict[str, Component] | None = None,
                     modes: tuple[str, ...] = tuple(MODES), variants: dict[str, RecoveryConfig] | None = None,
                     progress=None) -> ProductionResult:
    """`job` run for `days` of fault-free training (its iterations set to fit) under a production fault
    stream, once per seed and mode (`MODES`: the detector with `recovery`, the manual-diagnosis baseline,
    the watchdog alone; then each of `variants`, a recovery policy to compare, with the detector), the
    same faults in every mode of a seed."""
    if not 0 < days <= 3650:
        raise ConfigError(f"expected days in (0, 3650], got {days!r}", field="days")
    if not isinstance(seeds, int) or not 1 <= seeds <= 1000:
        raise ConfigError(f"expected 1 to 1,000 seeds, got {seeds!r}", field="seeds")
    if not modes and not variants:
        raise ConfigError("nothing to run: give modes or variants", field="modes")
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r} (known: {', '.join(MODES)})", field="modes")
    variants = dict(variants or {})
    for name in variants:
        if name in MODES:
            raise ConfigError(f"a variant may not be named {name!r}: that is a mode", field=f"variants.{name}")
    sources = sources or COMPONENTS
    recovery = recovery or RecoveryConfig(policy="replan")
    plans = {mode: (recovery if mode == "detector" else replace(recovery, policy=mode)) for mode in modes}
    plans.update(variants)
    cache = IterationCache(topo, job, routing, seed)
    t_iter = cache(State(tuple(range(job.replicas)))).time
    job = replace(job, iterations=max(1, math.ceil(days * 86400 / t_iter)))
    cache.job = job  # the iterations do not change an iteration: the cache stays valid
    horizon = days * 86400 * HORIZON_MARGIN
    runs, faults = [], []
    for s in range(seeds):
        stream = production_faults(topo, job, np.random.default_rng([seed, s, 0x70726F64]), horizon, sources, cache)
        component = {id(f): c for c, f in stream}
        for mode, plan in plans.items():
            if progress is not None:
                progress(f"seed {s + 1}/{seeds}: {mode}, {len(stream)} faults drawn")
            result = run_job(topo, job, [f for _, f in stream], detector=detector, recovery=plan,
                             routing=routing, seed=seed + s, cache=cache)
            if result.wall_s > horizon:
                raise ConfigError(f"{mode}: {days:g} days of training took {result.wall_s / 86400:.3g} days, longer than "
                                  f"the {horizon / 86400:.3g} days of faults drawn: faults come faster than this mode "
                                  "recovers from them (fewer faults, or leave the mode out)", field="days")
            struck = sum(r.struck is not None for r in result.faults)
            runs.append({"seed": s, "mode": mode, **result.summary(), "faults": struck})
            for r in result.faults:
                f = r.fault
                if r.struck is None and f.at > result.wall_s:
                    continue  # drawn after the job ended
                faults.append({"seed": s, "mode": mode, "component": component.get(id(f), "?"), "kind": f.kind,
                               "target": f.target, "at_s": f.at, "struck_s": r.struck, "detected_s": r.detected,
                               "class": r.cls, "correct": r.correct, "recovered_s": r.recovered})
    runs_frame = pl.DataFrame(runs)
    fault_frame = pl.DataFrame(faults, schema={"seed": pl.Int64, "mode": pl.Utf8, "component": pl.Utf8,
                                               "kind": pl.Utf8, "target": pl.Utf8, "at_s": pl.Float64,
                                               "struck_s": pl.Float64, "detected_s": pl.Float64, "class": pl.Utf8,
                                               "correct": pl.Boolean, "recovered_s": pl.Float64})
    return ProductionResult(runs_frame, fault_frame, downtime_share(runs_frame), days, t_iter, dict(sources))


__all__ = ["COMPONENTS", "Component", "MODES", "ProductionResult", "fault_sources", "production_faults",
           "production_study"]

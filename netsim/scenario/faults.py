"""Fault scenarios (`netsim faults`): a long job on a fabric, its faults, the detector, the recovery.

    name: c4d-example
    topology: ../topologies/leafspine128_2to1.yaml      # a file (relative to this one) or inline
    job: {replicas: 16, tp: 8, compute: 500ms, tp_bytes: 64MiB, dp_bytes: 1GiB, iterations: 2000,
          checkpoint_every: 200}
    faults:                                              # explicit faults ...
      - {kind: gpu_slow, at: 300s, rank: 5, factor: 0.5}
    random_mtbf_hours: {link: 50000, nic: 20000, gpu: 10000}   # ... and/or drawn from MTBFs
    detector: {interval: 1s, noise: 0.02, hang: 10s, window: 5, slow_ratio: 1.25, late_ratio: 0.1}
    recovery: {policy: replan, restart: 5min, watchdog: 30min}
    campaign: {classes: [gpu_slow, rank_hang_comm, ...], clean_runs: 3}   # for --campaign N
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from netsim.config import read_yaml, validated
from netsim.errors import ConfigError
from netsim.faults.campaign import DEFAULT_CLASSES, campaign, random_faults
from netsim.faults.production import MODES, fault_sources, production_study
from netsim.faults.run import RunResult, cable_links, run_job, switch_links
from netsim.faults.spec import FAULT_KINDS, POLICIES, DetectorConfig, Fault, JobSpec, RecoveryConfig
from netsim.scenario.loader import topology_of
from netsim.topology import Topology
from netsim.topology.config import Duration, Size

Count = Annotated[int, Field(ge=1, le=10_000_000, strict=True)]
MAX_DETECTOR_CHECKS = 10_000_000  # detector samples in one run (each costs microseconds of Python)
MIN_FACTOR = 1e-3  # a cable or GPU slower than 1/1000 of itself is down or hung: model it as such
Fraction = Annotated[float, Field(ge=MIN_FACTOR, lt=1, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobFields(_Strict):
    replicas: Annotated[int, Field(ge=2, le=131_072, strict=True)] = 8
    tp: Annotated[int, Field(ge=1, le=1024, strict=True)] = 1
    compute: Duration = 0.5
    tp_bytes: Size = 0
    dp_bytes: Size = 256 * 2**20
    iterations: Count = 1000
    checkpoint_every: Count = 100
    pp: Annotated[int, Field(ge=1, le=1024, strict=True)] = 1
    pp_bytes: Size = 0
    microbatches: Annotated[int, Field(ge=1, le=4096, strict=True)] = 1


class FaultFields(_Strict):
    kind: Literal[tuple(FAULT_KINDS)]
    at: Duration
    rank: Annotated[int, Field(ge=0, strict=True)] | None = None
    link: str | None = None
    factor: Fraction = 0.5
    down: Duration = 5.0
    period: Duration = 60.0
    node: str | None = None


class DetectorFields(_Strict):
    interval: Duration = 1.0
    noise: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.02
    hang: Duration = 10.0  # (each of these must be > 0: checked on load)
    window: Annotated[int, Field(ge=1, le=1000, strict=True)] = 5
    slow_ratio: Annotated[float, Field(gt=1, le=100, allow_inf_nan=False)] = 1.25
    late_ratio: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 0.1
    baseline: Annotated[int, Field(ge=1, le=1000, strict=True)] = 5


class RecoveryFields(_Strict):
    policy: Literal[tuple(POLICIES)] = "replan"
    restart: Duration = 300.0
    watchdog: Duration = 1800.0
    reform: Duration = 30.0
    spare: Duration = 600.0
    checkpoint_write: Duration = 0.0
    checkpoint_load: Duration = 0.0
    checkpoint_every: Annotated[int, Field(ge=0, le=10_000_000, strict=True)] = 0
    checkfree_iterations: Annotated[int, Field(ge=0, le=10_000_000, strict=True)] = 0
    notice_slow: Duration = 4 * 3600.0
    respond: Duration = 1800.0
    bisect_round: Duration = 600.0
    replace: Duration = 2 * 3600.0


class ProductionFields(_Strict):
    """`netsim faults --production`: the job over `days` of fault-free training, faults drawn from the
    production sources (`netsim.faults.production.COMPONENTS`), their MTBFs overridden per component and
    every rate multiplied by `scale`, once per seed."""

    days: Annotated[float, Field(gt=0, le=3650, allow_inf_nan=False)] = 30.0
    seeds: Annotated[int, Field(ge=1, le=1000, strict=True)] = 1
    scale: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0
    mtbf_hours: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = {}
    # which of the detector (with `recovery`), the manual baseline and the watchdog alone to run
    modes: list[Literal[tuple(MODES)]] = list(MODES)
    # recovery policies to compare, each with the detector, on the same faults (name -> recovery settings)
    variants: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")], RecoveryFields] = {}


class CampaignFields(_Strict):
    classes: Annotated[list[Literal[tuple(FAULT_KINDS)]], Field(min_length=1)] = list(DEFAULT_CLASSES)
    clean_runs: Annotated[int, Field(ge=0, le=1000, strict=True)] = 3


class FaultScenario(_Strict):
    name: str = "faults"
    topology: Union[str, dict]
    routing: str = "ecmp"
    seed: Annotated[int, Field(ge=0, lt=2**63, strict=True)] = 0
    job: JobFields = JobFields()
    faults: list[FaultFields] = []
    random_mtbf_hours: dict[Literal["link", "nic", "gpu"], Annotated[float, Field(gt=0, allow_inf_nan=False)]] = {}
    detector: DetectorFields = DetectorFields()
    recovery: RecoveryFields = RecoveryFields()
    campaign: CampaignFields = CampaignFields()
    production: ProductionFields = ProductionFields()

    def job_spec(self) -> JobSpec:
        j = self.job
        return JobSpec(j.replicas, j.tp, j.compute, j.tp_bytes, j.dp_bytes, j.iterations, j.checkpoint_every, j.pp,
                       j.pp_bytes, j.microbatches)

    def detector_config(self) -> DetectorConfig:
        d = self.detector
        return DetectorConfig(d.interval, d.noise, d.hang, d.window, d.slow_ratio, d.late_ratio, d.baseline)

    def recovery_config(self, policy: str | None = None) -> RecoveryConfig:
        r = self.recovery
        return recovery_config(r, policy)


def recovery_config(r: RecoveryFields, policy: str | None = None) -> RecoveryConfig:
    """The `RecoveryConfig` of a scenario's recovery settings (`policy` overrides theirs)."""
    return RecoveryConfig(policy or r.policy, restart_s=r.restart, watchdog_s=r.watchdog, reform_s=r.reform,
                          spare_s=r.spare, checkpoint_write_s=r.checkpoint_write, checkpoint_load_s=r.checkpoint_load,
                          checkpoint_every=r.checkpoint_every, checkfree_iterations=r.checkfree_iterations,
                          notice_slow_s=r.notice_slow, respond_s=r.respond, bisect_round_s=r.bisect_round,
                          replace_s=r.replace)


def load_fault_scenario(path: str | Path) -> tuple[FaultScenario, Topology]:
    """A fault scenario file, checked (see `fault_scenario_from_dict`)."""
    return fault_scenario_from_dict(read_yaml(path), str(path), Path(path).parent)


def fault_scenario_from_dict(document: dict, source: str, base: Path) -> tuple[FaultScenario, Topology]:
    """A fault scenario from a mapping (`source` names it in errors; `base` is the folder a topology file is
    relative to), with every check `netsim faults` makes before it runs."""
    cfg = validated(FaultScenario, document, source)
    topo = topology_of(cfg.topology, source, base)
    job = _checked(cfg.job_spec, source, "job")
    if job.ranks > len(topo.gpus):
        raise ConfigError(f"the job needs {job.ranks} GPUs ({job.replicas} x {job.pp} x {job.tp}), {topo.name!r} has "
                          f"{len(topo.gpus)}", source=source, field="job")
    for field, value in (("detector.interval", cfg.detector.interval), ("detector.hang", cfg.detector.hang),
                         ("recovery.watchdog", cfg.recovery.watchdog)):
        if value <= 0:
            raise ConfigError(f"expected a time > 0, got {value:g} s", source=source, field=field)
    r = cfg.recovery
    span = job.iterations * job.compute_s + (len(cfg.faults) + 1) * (r.watchdog + r.restart + r.spare + r.reform)
    checks = span / cfg.detector.interval  # the detector (or the watchdog's clock) samples every interval
    if checks > MAX_DETECTOR_CHECKS:
        raise ConfigError(f"a check every {cfg.detector.interval:g} s over about {span:.3g} s (the job's compute, "
                          f"and a watchdog, restart and spare per fault) is {checks:.3g} checks, more than "
                          f"{MAX_DETECTOR_CHECKS:,}; sample less often or shorten the recovery times",
                          source=source, field="detector.interval" if span < 1e7 else "recovery")
    for i, f in enumerate(cfg.faults):
        fault = _checked(lambda f=f: _fault(f), source, f"faults.{i}")
        if fault.rank is not None and fault.rank >= job.ranks:
            raise ConfigError(f"rank {fault.rank} is outside the job's {job.ranks} ranks", source=source,
                              field=f"faults.{i}.rank")
        if fault.link is not None:
            _checked(lambda f=fault: cable_links(topo, f.link), source, f"faults.{i}.link")
        if fault.node is not None:
            _checked(lambda f=fault: switch_links(topo, f.node), source, f"faults.{i}.node")
    _checked(lambda: fault_sources(dict(cfg.production.mtbf_hours), cfg.production.scale), source, "production")
    return cfg, topo


YAML_NAMES = {"compute_s": "compute", "down_s": "down", "period_s": "period"}  # inner name -> the file's


def _checked(build, source: str, field: str):
    try:
        return build()
    except ConfigError as exc:
        inner = YAML_NAMES.get(exc.field, exc.field)
        detail = exc.detail
        for a, b in YAML_NAMES.items():
            detail = detail.replace(a, b)
        raise ConfigError(detail, source=source, field=f"{field}.{inner}" if inner else field) from None


def _fault(f: FaultFields) -> Fault:
    return Fault(f.kind, f.at, f.rank, f.link, f.factor, f.down, f.period, f.node)


def scenario_faults(cfg: FaultScenario, topo: Topology, job: JobSpec, horizon_s: float) -> list[Fault]:
    faults = [_fault(f) for f in cfg.faults]
    if cfg.random_mtbf_hours:
        faults += random_faults(topo, job, np.random.default_rng([cfg.seed, 0x6D746266]), horizon_s,
                                dict(cfg.random_mtbf_hours))
    return sorted(faults, key=lambda f: f.at)


def run_scenario(cfg: FaultScenario, topo: Topology, policy: str | None = None) -> dict[str, RunResult]:
    """The scenario's faults with the detector (and `policy`) and without (watchdog only)."""
    from netsim.faults.iteration import IterationCache, State

    job = cfg.job_spec()
    cache = IterationCache(topo, job, cfg.routing, cfg.seed)
    horizon = job.iterations * cache(State(tuple(range(job.replicas)))).time
    faults = scenario_faults(cfg, topo, job, horizon)
    rec = cfg.recovery_config(policy)
    out = {}
    for mode, recovery in (("detector", rec), ("none", cfg.recovery_config("none"))):
        out[mode] = run_job(topo, job, faults, detector=cfg.detector_config(), recovery=recovery,
                            routing=cfg.routing, seed=cfg.seed, cache=cache)
    return out


def fault_table(results: dict[str, RunResult]) -> pl.DataFrame:
    rows = []
    for mode, result in results.items():
        for r in result.faults:
            f = r.fault
            rows.append({"mode": mode, "kind": f.kind, "target": f.target, "at_s": f.at,
                         "struck_s": r.struck, "detected_s": r.detected, "class": r.cls,
                         "culprit": None if r.culprit is None else " ".join(str(x) for x in r.culprit),
                         "correct": r.correct, "recovered_s": r.recovered})
    return pl.DataFrame(rows, schema={"mode": pl.Utf8, "kind": pl.Utf8, "target": pl.Utf8, "at_s": pl.Float64,
                                      "struck_s": pl.Float64, "detected_s": pl.Float64, "class": pl.Utf8,
                                      "culprit": pl.Utf8, "correct": pl.Boolean, "recovered_s": pl.Float64})


def run_campaign(cfg: FaultScenario, topo: Topology, runs: int, policy: str | None = None, progress=None):
    return campaign(topo, cfg.job_spec(), runs, seed=cfg.seed, detector=cfg.detector_config(),
                    recovery=cfg.recovery_config(policy), classes=tuple(cfg.campaign.classes), routing=cfg.routing,
                    clean_runs=cfg.campaign.clean_runs, progress=progress)


def run_production(cfg: FaultScenario, topo: Topology, policy: str | None = None, progress=None):
    """The scenario's job under production faults (its `production` block) with the detector (and
    `policy`), the manual-diagnosis baseline and the watchdog alone: `netsim.faults.production_study`."""
    prod = cfg.production
    return production_study(topo, cfg.job_spec(), prod.days, seeds=prod.seeds, seed=cfg.seed,
                            detector=cfg.detector_config(), recovery=cfg.recovery_config(policy), routing=cfg.routing,
                            sources=fault_sources(dict(prod.mtbf_hours), prod.scale), progress=progress,
                            modes=tuple(dict.fromkeys(prod.modes)),
                            variants={name: recovery_config(v) for name, v in prod.variants.items()})

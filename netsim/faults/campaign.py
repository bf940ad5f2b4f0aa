"""Fault campaigns: many runs, one random fault each, with the detector and without.

Each run draws (from its own seeded generator) a fault kind from `classes`, a target — a rank for node
faults, for link faults a fabric cable the job's traffic crosses (not a NIC's own cable) — a time in
the first 20-60% of the fault-free run, and for slowdowns a factor in [0.2, 0.6]. The same job then runs
with the recovery policy and with none (watchdog only). A few fault-free runs with noisy telemetry
count false alarms. Per fault kind: recall (detections naming the right class and place, over faults
injected), the precision of the class it should be found as (right detections of that class over all
detections of that class, whatever was injected), detection latencies, and the downtime with and
without detection. Localisation, per fault kind: `place_precision` (detections naming exactly the right
class and place, over detections), `place_recall` (faults whose place a detection of the right class
named, alone or among candidates, over faults injected), `named_share` (mean over detections of the share
of the named places that is the faulty one: 1 exact, 1/k among k candidates, 0 wrong) and
`places_named_mean` (how many places a detection named, on average).

`random_faults` draws faults from per-component MTBFs instead (exponential arrival per component).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from netsim.errors import ConfigError
from netsim.faults.iteration import IterationCache, State
from netsim.faults.run import cable_names, run_job
from netsim.faults.spec import EXPECTED_CLASS, PARTS, FAULT_KINDS, DetectorConfig, Fault, JobSpec, RecoveryConfig
from netsim.topology import Topology

DEFAULT_CLASSES = ("link_degraded", "nic_degraded", "gpu_slow", "rank_hang_compute", "rank_hang_comm", "link_down")
NODE_KINDS = ("nic_degraded", "gpu_slow", "rank_hang_compute", "rank_hang_comm")


def fabric_cables(topo: Topology, job: JobSpec, routing: str = "ecmp", seed: int = 0,
                  cache: IterationCache | None = None) -> list[str]:
    """Cables between switches that the job's connections cross (the candidates for link faults)."""
    names = cable_names(topo)
    kinds = topo.node_kind
    cache = cache or IterationCache(topo, job, routing, seed)
    used = {l for links in cache.paths().values() for l in links}  # links with traffic
    ends = ("gpu", "nic", "nvswitch")  # a cable between two switches of the fabric (leaf, spine, core, ...)
    out = {names[l] for l in used if kinds[int(topo.link_src[l])] not in ends and kinds[int(topo.link_dst[l])] not in ends}
    return sorted(out)


def draw_fault(rng: np.random.Generator, kind: str, topo: Topology, job: JobSpec, horizon_s: float,
               cables: list[str]) -> Fault:
    at = float(rng.uniform(0.2, 0.6) * horizon_s)
    factor = float(rng.uniform(0.2, 0.6))
    if kind in NODE_KINDS:
        return Fault(kind, at, rank=int(rng.integers(job.ranks)), factor=factor)
    if not cables:
        raise ConfigError(f"the job crosses no cable between switches: no {kind} to draw on this fabric (leave "
                          "the link faults out of the classes)", field="campaign.classes")
    return Fault(kind, at, link=str(cables[int(rng.integers(len(cables)))]), factor=factor)


def random_faults(topo: Topology, job: JobSpec, rng: np.random.Generator, horizon_s: float,
                  mtbf_hours: dict[str, float]) -> list[Fault]:
    """Faults over `horizon_s` from MTBFs per component: "link" (each fabric cable the job uses: link_down),
    "nic" (each rank: nic_degraded), "gpu" (each rank: gpu_slow)."""
    faults = []
    cables = fabric_cables(topo, job)
    for what, hours in mtbf_hours.items():
        rate = 1.0 / (hours * 3600.0)
        targets = cables if what == "link" else list(range(job.ranks))
        for target in targets:
            t = float(rng.exponential(1 / rate))
            if t < horizon_s:
                if what == "link":
                    faults.append(Fault("link_down", t, link=target))
                else:
                    faults.append(Fault("nic_degraded" if what == "nic" else "gpu_slow", t, rank=target,
                                        factor=float(rng.uniform(0.2, 0.6))))
    return sorted(faults, key=lambda f: f.at)


def place_share(culprit: tuple | None, target: str, right_class: bool) -> tuple[float, int]:
    """What one detection named against the injected fault's place (`target`: a cable, or "rank r"): the
    share of the named places that is the faulty one (1: exactly it; 1/k: it among k candidates; 0: not
    named, or the wrong class) and how many places it named (0: none, "unknown")."""
    if culprit is None or culprit[0] == "unknown":
        return 0.0, 0
    kind, what = culprit[0], culprit[1]
    places = ([f"rank {r}" for r in what] if kind == "ranks" else list(what) if kind == "links" else
              [f"rank {what}"] if kind == "rank" else [what])
    return (1 / len(places) if right_class and target in places else 0.0), len(places)


@dataclass(frozen=True, eq=False)
class CampaignResult:
    runs: pl.DataFrame  # one row per (run, mode)
    classes: pl.DataFrame  # per fault class: precision, recall, latency, downtime with / without
    false_alarms: int
    checks: int
    downtime: pl.DataFrame  # per mode (with detection, without): the campaign's error-induced downtime share


DOWNTIME_PARTS = tuple(f"{p}_s" for p in PARTS)  # they add up to a run's overhead


def downtime_share(runs: pl.DataFrame) -> pl.DataFrame:
    """Per mode, over every run of a campaign: wall-clock, fault-free and lost time summed, the share of the
    wall-clock that errors cost (`downtime_share`: everything lost but the checkpoint writes, which a job
    pays with or without faults), and each part's share of the wall-clock (detection, diagnosis, restart,
    lost work since the last checkpoint, slowed iterations, checkpoint writes: they add up to the whole
    overhead)."""
    parts = [p for p in DOWNTIME_PARTS if p in runs.columns]
    writes = pl.col("checkpoint_s") if "checkpoint_s" in parts else pl.lit(0.0)
    return (runs.group_by("mode", maintain_order=True)
            .agg(pl.len().alias("runs"), pl.col("wall_s").sum(), pl.col("fault_free_s").sum(),
                 pl.col("overhead_s").sum().alias("lost_s"), *(pl.col(p).sum() for p in parts))
            .with_columns(((pl.col("lost_s") - writes) / pl.col("wall_s")).alias("downtime_share"),
                          *((pl.col(p) / pl.col("wall_s")).alias(p.removesuffix("_s") + "_share") for p in parts)))


def campaign(topo: Topology, job: JobSpec, runs: int, *, seed: int = 0, detector: DetectorConfig | None = None,
             recovery: RecoveryConfig | None = None, classes: tuple[str, ...] = DEFAULT_CLASSES,
             routing: str = "ecmp", clean_runs: int = 3, progress=None) -> CampaignResult:
    detector = detector or DetectorConfig()
    recovery = recovery or RecoveryConfig(policy="replan")
    for kind in classes:
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}", field="campaign.classes")
    cache = IterationCache(topo, job, routing, seed)
    cables = fabric_cables(topo, job, routing, seed, cache)
    horizon = job.iterations * cache(State(tuple(range(job.replicas)))).time
    rows = []
    false_alarms = checks = 0
    for i in range(clean_runs):
        clean = run_job(topo, job, [], detector=detector, recovery=recovery, routing=routing, seed=seed + 1000 + i,
                        cache=cache, skip_quiet=False)
        false_alarms += clean.false_alarms
        checks += clean.checks
    for i in range(runs):
        rng = np.random.default_rng([seed, i])
        kind = str(classes[int(rng.integers(len(classes)))])
        fault = draw_fault(rng, kind, topo, job, horizon, cables)
        if progress is not None:
            progress(f"run {i + 1}/{runs}: {kind}")
        for mode, rec in (("detector", recovery), ("none", RecoveryConfig(policy="none", restart_s=recovery.restart_s,
                                                                          watchdog_s=recovery.watchdog_s))):
            # every sample judged (nothing skipped): the runs before their fault count false alarms too
            result = run_job(topo, job, [fault], detector=detector, recovery=rec, routing=routing, seed=seed + i,
                             cache=cache, skip_quiet=False)
            f = result.faults[0]
            false_alarms += result.false_alarms if mode == "detector" else 0
            checks += result.checks if mode == "detector" else 0
            target = fault.target
            share, places = place_share(f.culprit, target, f.cls == EXPECTED_CLASS[kind])
            rows.append({"run": i, "mode": mode, "kind": kind, "target": target,
                         "at_s": fault.at, "struck_s": f.struck, "detected_s": f.detected, "cls": f.cls,
                         "expected": EXPECTED_CLASS[kind], "culprit": None if f.culprit is None else str(f.culprit),
                         "correct": f.correct, "places_named": places, "named_share": share, "latency_s": None if f.detected is None or f.struck is None
                         else f.detected - f.struck, "recovered_s": f.recovered, "wall_s": result.wall_s,
                         "fault_free_s": result.fault_free_s, "overhead_s": result.wall_s - result.fault_free_s,
                         **{f"{k}_s": v for k, v in result.breakdown.items()}})
    frame = pl.DataFrame(rows)
    table = []
    detected = frame.filter((pl.col("mode") == "detector") & pl.col("cls").is_not_null())
    precision = {}
    for cls, part in detected.group_by("cls"):
        cls = cls[0] if isinstance(cls, tuple) else cls
        precision[cls] = float(part["correct"].sum()) / len(part)
    for kind in classes:
        part = frame.filter(pl.col("kind") == kind)
        if not len(part):
            continue
        det = part.filter(pl.col("mode") == "detector")
        none = part.filter(pl.col("mode") == "none")
        expected = EXPECTED_CLASS[kind]
        right = det.filter(pl.col("correct") == True)  # noqa: E712
        # per detection: how many places it named, and the share of them that is the faulty one
        named = det.filter(pl.col("cls").is_not_null())
        found = len(named)
        # faults localised to several candidates, the faulty one among them (re-planning avoids all)
        among = named.filter((pl.col("places_named") > 1) & (pl.col("named_share") > 0))
        latency = det["latency_s"].drop_nulls()
        table.append({"kind": kind, "class": expected, "injected": len(det), "detected": int(det["detected_s"].is_not_null().sum()),
                      "right_class_and_place": len(right), "among_candidates": len(among),
                      "class_precision": precision.get(expected),
                      "recall": len(right) / len(det),
                      "place_precision": len(right) / found if found else None,
                      "place_recall": int((named["named_share"] > 0).sum()) / len(det),
                      "named_share": float(named["named_share"].mean()) if found else None,
                      "places_named_mean": float(named["places_named"].mean()) if found else None,
                      "latency_median_s": float(latency.median()) if len(latency) else None,
                      "latency_max_s": float(latency.max()) if len(latency) else None,
                      "overhead_with_s": float(det["overhead_s"].mean()), "overhead_without_s": float(none["overhead_s"].mean())})
    return CampaignResult(frame, pl.DataFrame(table), false_alarms, checks, downtime_share(frame))


__all__ = ["CampaignResult", "DEFAULT_CLASSES", "DOWNTIME_PARTS", "campaign", "downtime_share", "draw_fault", "fabric_cables", "place_share", "random_faults"]

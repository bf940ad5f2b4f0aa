"""Production fault studies: pipeline jobs, the fault sources and their stream, the manual baseline,
checkpoint writes, CheckFree, a switch going down, a month of a job, and the command."""

import json
import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from netsim.cli import main
from netsim.faults.iteration import IterationCache, State, simulate_iteration
from netsim.faults.production import COMPONENTS, LLAMA3_HOURS, fault_sources, production_faults, production_study
from netsim.faults.run import run_job
from netsim.faults.spec import PARTS, DetectorConfig, Fault, JobSpec, RecoveryConfig
from tests.faults.test_faults import TOPO, fabric

QUIET = DetectorConfig(noise=0.0)
JOB = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=2**20, iterations=2000, checkpoint_every=100)


def parts_add_up(result) -> None:
    lost = sum(result.breakdown[p] for p in PARTS)
    assert result.wall_s - result.fault_free_s == pytest.approx(lost, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("pp, m", [(2, 1), (3, 4), (4, 8)])
def test_a_pipeline_iteration_is_gpipe_s_closed_form(pp, m):
    # 1-byte activations and gradients: each stage-to-stage hop costs its latency, microseconds; then GPipe's
    # (m + pp - 1) slots of a microbatch's forward and backward, and a 1 MiB data-parallel all-reduce
    job = JobSpec(replicas=2, tp=1, compute_s=0.3, dp_bytes=2**20, iterations=10, pp=pp, pp_bytes=1, microbatches=m)
    topo = fabric(hosts=4)
    rec = simulate_iteration(topo, job, State((0, 1)))
    gpipe = (m + pp - 1) * job.compute_s / m
    ring = 2 * (2 - 1) / 2 * (2**20 / pp) / 12.5e9  # a 2-rank ring of the stage's shard
    assert gpipe + ring < rec.time < gpipe + ring + 2 * (pp - 1) * m * 20e-6 + 1e-4
    assert {c.name for c in rec.calls} == {f"dp{s}.0" for s in range(pp)}
    assert len(rec.connections) == 2 * 2 * (pp - 1) + 2 * pp  # pipeline hops both ways + each stage's ring


def test_the_sources_rates_are_the_llama3_report_s_counts():
    assert LLAMA3_HOURS == 1296
    failures = {name: 16_384 * LLAMA3_HOURS / c.mtbf_hours * (1 if c.per != "host" else 1 / 8)
                for name, c in COMPONENTS.items()}
    assert {k: round(v) for k, v in failures.items()} == {"gpu": 268, "host": 46, "nic": 7, "network": 35,
                                                          "software": 63}
    assert sum(round(v) for v in failures.values()) == 419
    for c in COMPONENTS.values():
        assert sum(c.kinds.values()) == pytest.approx(1.0, abs=1e-12)


def test_a_drawn_stream_has_the_rates_and_shares_of_its_sources():
    topo = fabric(leaves=4, spines=2, hosts=4)
    job = JobSpec(replicas=16, tp=1, compute_s=0.5, dp_bytes=2**20)
    sources = fault_sources(scale=1000.0)
    horizon = 200 * 86400.0
    stream = production_faults(topo, job, np.random.default_rng(7), horizon, sources)
    assert [f.at for _, f in stream] == sorted(f.at for _, f in stream)
    for name, c in sources.items():
        expected = (16 if c.per in ("gpu", "nic") else 16) * horizon / (c.mtbf_hours * 3600)  # 1 GPU per host here
        got = sum(1 for n, _ in stream if n == name)
        assert abs(got - expected) < 4 * math.sqrt(expected), (name, got, expected)
    gpu = [f.kind for n, f in stream if n == "gpu"]
    assert gpu.count("rank_hang_comm") / len(gpu) == pytest.approx(0.28, abs=0.05)
    cables = {f.link for _, f in stream if f.link}
    assert cables and all("spine" in c and "leaf" in c for c in cables)  # fabric cables only
    assert {f.node for _, f in stream if f.node} <= {"leaf0", "leaf1", "leaf2", "leaf3", "spine0", "spine1"}
    with pytest.raises(Exception, match="unknown component 'gpus'"):
        fault_sources({"gpus": 10.0})


def test_the_manual_baseline_costs_watchdog_diagnosis_and_a_replacement_exactly():
    cache = IterationCache(TOPO, JOB)
    t_iter = cache(State(tuple(range(8)))).time
    rec = RecoveryConfig(policy="manual", restart_s=300.0, watchdog_s=1800.0, respond_s=900.0, bisect_round_s=600.0,
                         replace_s=3600.0, checkpoint_load_s=60.0)
    r = run_job(TOPO, JOB, [Fault("rank_hang_compute", 230.3, rank=5)], detector=QUIET, recovery=rec, cache=cache)
    b = r.breakdown
    assert b["detection"] == pytest.approx(1800.0, rel=1e-12)  # stalled until the watchdog fired
    assert b["diagnosis"] == pytest.approx(900.0 + math.ceil(math.log2(8)) * 600.0, rel=1e-12)  # 8 servers: 3 rounds
    assert b["restart"] == pytest.approx(300.0 + 60.0 + 3600.0, rel=1e-12)
    f = r.faults[0]
    assert f.cls == "manual" and f.culprit == ("rank", 5) and f.correct
    # rolled back to the last checkpoint: the iterations since, and the one the hang stopped (to the stall)
    done_before = math.floor(230.3 / t_iter)
    saved = done_before // 100 * 100
    assert b["lost_work"] == pytest.approx((done_before - saved) * t_iter + f.struck - done_before * t_iter, rel=1e-9)
    parts_add_up(r)
    # a slowdown is noticed by people after notice_slow_s, then the same diagnosis
    slow = run_job(TOPO, JOB, [Fault("gpu_slow", 100.0, rank=2, factor=0.5)], detector=QUIET,
                   recovery=replace(rec, notice_slow_s=400.0), cache=cache)
    f = slow.faults[0]
    assert f.detected == pytest.approx(f.struck + 400.0, rel=1e-12) and f.correct
    parts_add_up(slow)


def test_checkpoint_writes_stop_the_job_at_every_checkpoint_but_the_last():
    cache = IterationCache(TOPO, JOB)
    r = run_job(TOPO, JOB, [], detector=QUIET, recovery=RecoveryConfig(checkpoint_write_s=7.0), cache=cache)
    assert r.breakdown["checkpoint"] == pytest.approx(7.0 * (JOB.iterations // JOB.checkpoint_every - 1), rel=1e-12)
    assert r.wall_s == pytest.approx(r.fault_free_s + r.breakdown["checkpoint"], rel=1e-12)


def test_checkfree_rebuilds_a_middle_stage_without_rolling_back_and_ends_fall_back():
    job = JobSpec(replicas=2, tp=1, compute_s=0.3, dp_bytes=2**20, iterations=3000, checkpoint_every=1000, pp=3,
                  pp_bytes=2**16, microbatches=2)
    topo = fabric(hosts=4)
    cache = IterationCache(topo, job)
    t_iter = cache(State((0, 1))).time
    at = 700.0 * t_iter + 0.01  # 700 iterations after the start: far from the checkpoint at 1000
    runs = {}
    for policy, rank in (("restart", 1), ("checkfree", 1), ("checkfree", 0)):
        rec = RecoveryConfig(policy=policy, restart_s=120.0, checkfree_iterations=50)
        runs[policy, rank] = r = run_job(topo, job, [Fault("rank_hang_compute", at, rank=rank)], detector=QUIET,
                                         recovery=rec, cache=cache)
        parts_add_up(r)
    stall = runs["restart", 1].breakdown["lost_work"] - 700 * t_iter  # the iteration the hang stopped
    assert 0 <= stall < t_iter + job.compute_s
    # stage 1 of 3 (rank 1): no rollback, 50 iterations of convergence cost instead
    assert runs["checkfree", 1].breakdown["lost_work"] == pytest.approx(stall + 50 * t_iter, rel=1e-9)
    # stage 0 has no neighbour before it: back to the checkpoint, as a restart
    assert runs["checkfree", 0].breakdown["lost_work"] == pytest.approx(runs["restart", 1].breakdown["lost_work"],
                                                                        rel=1e-9)


def test_a_spine_switch_down_is_routed_around_and_a_leaf_down_moves_its_servers():
    cache = IterationCache(TOPO, JOB)
    rec = RecoveryConfig(policy="replan")
    spine = run_job(TOPO, JOB, [Fault("switch_down", 100.0, node="spine0")], detector=QUIET, recovery=rec, cache=cache)
    f = spine.faults[0]
    assert f.detected == 100.0 and f.culprit == ("switch", "spine0") and f.correct and f.recovered == 100.0
    parts_add_up(spine)
    leaf = run_job(TOPO, JOB, [Fault("switch_down", 100.0, node="leaf1")], detector=QUIET, recovery=rec, cache=cache)
    f = leaf.faults[0]  # reported at once; routing around it would cut its servers off: they move to spares
    assert f.detected == 100.0 and f.culprit == ("switch", "leaf1") and f.correct
    assert leaf.breakdown["restart"] == pytest.approx(300.0) and leaf.breakdown["detection"] == 0.0
    parts_add_up(leaf)
    with pytest.raises(Exception, match="not a switch"):
        run_job(TOPO, JOB, [Fault("switch_down", 1.0, node=TOPO.node_names[int(TOPO.gpus[0])])], cache=cache)


def test_skipping_a_quiet_state_finds_the_same_fault_at_the_same_time():
    cache = IterationCache(TOPO, JOB)
    fault = [Fault("gpu_slow", 300.0, rank=3, factor=0.5)]
    full = run_job(TOPO, JOB, fault, detector=QUIET, cache=cache, skip_quiet=False)
    skip = run_job(TOPO, JOB, fault, detector=QUIET, cache=cache)
    assert skip.faults[0].detected == full.faults[0].detected and skip.faults[0].correct
    assert skip.checks < full.checks / 10  # skipped samples are not judged: not counted as checks
    assert skip.wall_s == pytest.approx(full.wall_s, rel=1e-12)


def test_a_month_of_a_job_under_production_faults_adds_up_in_every_mode():
    topo = fabric(leaves=2, spines=2, hosts=4)
    job = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=2**20, checkpoint_every=400)
    result = production_study(topo, job, 30, seeds=2, sources=fault_sources(scale=300.0),
                              recovery=RecoveryConfig(policy="replan", checkpoint_write_s=5.0))
    runs = result.runs
    assert runs["mode"].to_list() == ["detector", "manual", "none"] * 2
    assert (runs["fault_free_s"] >= 30 * 86400).all()
    for row in runs.iter_rows(named=True):
        assert row["wall_s"] - row["fault_free_s"] == pytest.approx(sum(row[f"{p}_s"] for p in PARTS), rel=1e-9)
    share = dict(zip(result.downtime["mode"], result.downtime["downtime_share"]))
    assert share["detector"] < share["manual"] and share["detector"] < share["none"]
    assert runs.filter(pl.col("mode") == "detector")["faults"].min() >= 5  # ~10 faults a month at 300x
    struck = result.faults.filter(pl.col("struck_s").is_not_null())
    assert set(struck["component"]) <= set(COMPONENTS)


def test_recovery_variants_run_on_the_same_faults():
    topo = fabric(leaves=2, spines=2, hosts=4)
    job = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=2**20, checkpoint_every=400)
    variants = {"storage": RecoveryConfig(checkpoint_write_s=60.0, checkpoint_load_s=60.0, checkpoint_every=3600),
                "memory": RecoveryConfig(checkpoint_write_s=2.0, checkpoint_load_s=5.0, checkpoint_every=600)}
    result = production_study(topo, job, 10, modes=(), variants=variants, sources=fault_sources(scale=300.0))
    runs = result.runs
    assert runs["mode"].to_list() == ["storage", "memory"]
    assert runs["faults"].to_list()[0] >= 3
    lost = dict(zip(runs["mode"], runs["lost_work_s"]))
    assert lost["memory"] < lost["storage"]  # checkpoints 6x as often: less redone after each hang
    for row in runs.iter_rows(named=True):
        assert row["wall_s"] - row["fault_free_s"] == pytest.approx(sum(row[f"{p}_s"] for p in PARTS), rel=1e-9)
    with pytest.raises(Exception, match="may not be named 'manual'"):
        production_study(topo, job, 1, variants={"manual": RecoveryConfig()})


def test_production_command_writes_its_outputs_and_refuses_bad_input(tmp_path, capsys):
    topo_file = tmp_path / "topo.yaml"
    topo_file.write_text("kind: leaf_spine\nleaves: 2\nspines: 2\nhosts_per_leaf: 4\nhost_bandwidth: 100Gbps\n"
                         "spine_bandwidth: 100Gbps\n")
    scenario = tmp_path / "prod.yaml"
    scenario.write_text("name: p\ntopology: topo.yaml\njob: {replicas: 8, compute: 500ms, dp_bytes: 1MiB, "
                        "checkpoint_every: 400}\nproduction: {days: 10, seeds: 1, scale: 300}\n")
    assert main(["faults", str(scenario), "--production", "--json", "-o", str(tmp_path / "out")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["mode"] for r in doc["rows"]} == {"detector", "manual", "none"}
    assert doc["meta"]["sources"]["gpu"]["mtbf_hours"] == pytest.approx(16_384 * 1296 / 268 / 300)  # scale: 300
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"runs.parquet", "faults.parquet", "downtime.parquet",
                                                              "report.html"}
    assert "Fault timeline" in (tmp_path / "out" / "report.html").read_text()
    text = scenario.read_text()
    scenario.write_text(text.replace("scale: 300", "scale: 300, modes: [none]"))
    assert main(["faults", str(scenario), "--production", "--json"]) == 0
    assert [r["mode"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["none"]
    scenario.write_text(text.replace("scale: 300", "scale: 300, modes: [nobody]"))
    assert main(["faults", str(scenario), "--production"]) == 2
    assert "production.modes" in capsys.readouterr().err
    scenario.write_text(text)
    assert main(["faults", str(scenario), "--production", "--campaign", "3"]) == 2
    assert "--production" in capsys.readouterr().err
    scenario.write_text(scenario.read_text().replace("scale: 300", "scale: 300, mtbf_hours: {gpus: 5}"))
    assert main(["faults", str(scenario), "--production"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "production" in err[0] and "gpus" in err[0]


@pytest.mark.parametrize("faults, recovery, restart", [
    # two switches down 20 s apart: one recovery after the other (the leaf's restart; then the spine, routed
    # around, is tolerated), never one over the other
    ([Fault("switch_down", 50.0, node="leaf1"), Fault("switch_down", 70.0, node="spine1")],
     RecoveryConfig(policy="restart", restart_s=60.0), 60.0),
    # elastic stops the job while it re-forms (twice: without the replica, then with the spare)
    ([Fault("gpu_slow", 50.0, rank=3, factor=0.3)], RecoveryConfig(policy="elastic", reform_s=3.0, spare_s=100.0), 6.0),
    # a NIC cable down in the middle of a checkpoint write: the restart waits for the write
    ([Fault("link_down", 28.0, link="h3.nic0<->leaf0")],
     RecoveryConfig(policy="restart", restart_s=60.0, checkpoint_write_s=7.0), 60.0),
    # a link report while a hang is under way: the hang's restart first, then the cable is routed around
    ([Fault("rank_hang_compute", 50.0, rank=3), Fault("link_down", 55.0, link="leaf0<->spine0")],
     RecoveryConfig(policy="replan"), 300.0),
])
def test_overlapping_recoveries_are_charged_once(faults, recovery, restart):
    job = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=2**20, iterations=600, checkpoint_every=50)
    r = run_job(TOPO, job, faults, detector=QUIET, recovery=recovery)
    parts_add_up(r)
    assert r.breakdown["restart"] == pytest.approx(restart, rel=1e-12)
    assert all(f.detected is not None and f.correct for f in r.faults)

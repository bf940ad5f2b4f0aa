"""Fault studies: the iteration shortcut, each fault class found when expected, no false alarms, recovery."""

import json
import math
from pathlib import Path

import polars as pl
import pytest

from netsim.cli import main
from netsim.faults.campaign import campaign
from netsim.faults.iteration import IterationCache, State, simulate_iteration
from netsim.faults.run import cable_links, run_job
from netsim.faults.spec import DetectorConfig, Fault, JobSpec, RecoveryConfig
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

ROOT = Path(__file__).resolve().parents[2]
BW = 12.5e9


def fabric(leaves=2, spines=2, hosts=4):
    return leaf_spine(LeafSpineSpec(leaves=leaves, spines=spines, hosts_per_leaf=hosts, spine_bandwidth=BW,
                                    spine_latency=1e-6, host=HostSpec(nic_bandwidth=BW, nic_latency=1e-6)))


TOPO = fabric()
JOB = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=256 * 2**20, iterations=1000, checkpoint_every=100)
QUIET = DetectorConfig(noise=0.0)


def test_iterations_in_one_state_are_identical_so_the_shortcut_is_exact():
    for state in (State(tuple(range(8))), State(tuple(range(8)), slow=((3, 0.5),)),
                  State(tuple(range(8)), degraded=tuple((l, 0.3) for l in cable_links(TOPO, "leaf0<->spine0")))):
        one = simulate_iteration(TOPO, JOB, state)
        five = simulate_iteration(TOPO, JOB, state, iterations=5)  # back to back on one simulation
        assert five.time == pytest.approx(one.time, rel=1e-12)
        assert {k: v[0] for k, v in five.connections.items()} == {k: 5 * v[0] for k, v in one.connections.items()}


def boundary_after(t: float, period: float) -> float:
    return math.ceil(t / period - 1e-12) * period


def test_hangs_are_found_hang_s_after_the_collective_stopped():
    cache = IterationCache(TOPO, JOB)
    t_iter = cache(State(tuple(range(8)))).time
    at = 100.3  # inside an iteration's compute phase
    start = math.floor(at / t_iter) * t_iter
    for kind, since in (("rank_hang_compute", start + 0.5 if at < start + 0.5 else start + t_iter + 0.5),
                        ("rank_hang_comm", max(at, start + 0.5))):
        r = run_job(TOPO, JOB, [Fault(kind, at, rank=2)], detector=QUIET, cache=cache)
        f = r.faults[0]
        assert f.struck == pytest.approx(since, rel=1e-12)
        assert f.detected == math.ceil(since + 10.0)  # samples each second, threshold 10 s
        assert f.correct and f.culprit == ("rank", 2)
        assert f.cls == ("noncomm_hang" if kind == "rank_hang_compute" else "comm_hang")


@pytest.mark.parametrize("fault, cls, culprit", [
    (Fault("gpu_slow", 100.0, rank=3, factor=0.5), "noncomm_slow", ("rank", 3)),
    (Fault("nic_degraded", 100.0, rank=5, factor=0.25), "comm_slow", ("rank", 5)),
])
def test_slowdowns_are_found_after_a_window_of_slow_samples(fault, cls, culprit):
    cache = IterationCache(TOPO, JOB)
    healthy = cache(State(tuple(range(8)))).time
    r = run_job(TOPO, JOB, [fault], detector=QUIET, cache=cache)
    f = r.faults[0]
    struck = boundary_after(fault.at, healthy)
    assert f.struck == pytest.approx(struck, rel=1e-12)
    slow = [rec.time for state, rec in cache.records.items() if state != State(tuple(range(8)))][0]
    first = math.ceil(struck + slow)  # the first sample after one slow iteration has completed
    assert f.detected == first + 4  # 5 samples in a row
    assert (f.cls, f.culprit, f.correct) == (cls, culprit, True)


def test_a_degraded_fabric_link_is_localised_and_replanning_removes_its_slowdown():
    topo = fabric(leaves=4, spines=2, hosts=2)
    cache = IterationCache(topo, JOB)
    healthy = cache(State(tuple(range(8)))).time
    fault = Fault("link_degraded", 100.0, link="leaf1<->spine0", factor=0.2)
    r = run_job(topo, JOB, [fault], detector=QUIET, recovery=RecoveryConfig(policy="replan"), cache=cache)
    f = r.faults[0]
    assert f.cls == "comm_slow" and "leaf1<->spine0" in str(f.culprit) and f.recovered == f.detected
    replanned = cache(State(tuple(range(8)), down=frozenset(l for c in ([f.culprit[1]] if f.culprit[0] == "link"
                                                                          else f.culprit[1])
                                                             for l in cable_links(topo, c)))).time
    piece = JOB.dp_bytes / 8  # one ring transfer
    assert replanned <= healthy + piece / BW  # within one flow of the fault-free iteration
    without = run_job(topo, JOB, [fault], detector=QUIET, recovery=RecoveryConfig(policy="none"), cache=cache)
    assert r.wall_s < without.wall_s


def test_a_link_reported_down_is_found_at_once():
    r = run_job(TOPO, JOB, [Fault("link_down", 123.4, link="leaf0<->spine1")], detector=QUIET)
    f = r.faults[0]
    assert f.detected == pytest.approx(123.4) and f.culprit == ("link", "leaf0<->spine1") and f.correct


def test_no_false_alarms_over_a_long_fault_free_run_with_noisy_telemetry():
    job = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=256 * 2**20, iterations=20_000, checkpoint_every=1000)
    r = run_job(TOPO, job, [], detector=DetectorConfig(noise=0.05), seed=3, skip_quiet=False)  # every sample judged
    assert r.checks > 10_000 and r.false_alarms == 0  # 0 in > 10,000 checks: under 1e-4 per check
    assert r.wall_s == pytest.approx(r.fault_free_s, rel=1e-12)


def test_downtime_parts_add_up_and_detection_beats_the_watchdog():
    faults = [Fault("rank_hang_comm", 200.3, rank=6)]
    cache = IterationCache(TOPO, JOB)
    with_ = run_job(TOPO, JOB, faults, detector=QUIET, cache=cache)
    without = run_job(TOPO, JOB, faults, recovery=RecoveryConfig(policy="none"), cache=cache)
    for r in (with_, without):
        assert sum(r.breakdown.values()) == pytest.approx(r.wall_s - r.fault_free_s, rel=1e-9)
    assert without.breakdown["detection"] == pytest.approx(1800.0, abs=1.0)
    assert with_.wall_s < without.wall_s - 1700


def test_faults_command_single_run_campaign_and_errors(tmp_path, capsys):
    scenario = tmp_path / "f.yaml"
    scenario.write_text(
        "name: small\ntopology: {kind: leaf_spine, leaves: 2, spines: 2, hosts_per_leaf: 4, host_bandwidth: 100Gbps,"
        " spine_bandwidth: 100Gbps}\njob: {replicas: 8, compute: 500ms, dp_bytes: 256MiB, iterations: 2000, "
        "checkpoint_every: 50}\nfaults:\n  - {kind: gpu_slow, at: 100s, rank: 3, factor: 0.5}\n"
        "campaign: {classes: [gpu_slow, rank_hang_comm], clean_runs: 1}\n")
    assert main(["faults", str(scenario), "--json", "-o", str(tmp_path / "one")]) == 0
    out = json.loads(capsys.readouterr().out)
    runs = out["meta"]["runs"]
    assert out["rows"][0]["correct"] is True and runs["detector"]["wall_s"] < runs["none"]["wall_s"]
    from netsim.traces import load_trace  # one healthy iteration as Chakra ET: compute, the dp all-reduce, the end

    iteration = load_trace(tmp_path / "one" / "chakra_iteration").validate()
    assert len(iteration.nodes) == 8
    for nodes in iteration.nodes.values():
        assert sum(n.duration for n in nodes if n.kind == "compute") == pytest.approx(0.5)
        assert [n.nbytes for n in nodes if n.kind == "collective" and n.nbytes] == [256 * 2**20]
    assert main(["faults", str(scenario), "--campaign", "4", "--json", "-o", str(tmp_path / "camp")]) == 0
    camp = json.loads(capsys.readouterr().out)
    assert {c["kind"] for c in camp["rows"]} <= {"gpu_slow", "rank_hang_comm"} and camp["meta"]["false_alarms"] == 0
    assert {"classes.parquet", "runs.parquet", "downtime.parquet", "report.html"} <= {
        p.name for p in (tmp_path / "camp").iterdir()}
    runs_ = pl.read_parquet(tmp_path / "camp" / "runs.parquet")
    for row in camp["meta"]["downtime"]:  # the campaign's downtime share: all runs' lost time over their wall-clock
        mine = runs_.filter(pl.col("mode") == row["mode"])
        assert row["runs"] == 4
        assert row["downtime_share"] == pytest.approx(mine["overhead_s"].sum() / mine["wall_s"].sum())
        assert sum(row[p + "_share"] for p in ("detection", "restart", "lost_work", "slowed")) == pytest.approx(
            row["downtime_share"], rel=1e-9)  # its parts add up to it
    with_, without = sorted(camp["meta"]["downtime"], key=lambda r: r["mode"] != "detector")
    assert with_["downtime_share"] < without["downtime_share"]  # hangs: found in seconds, not at the watchdog
    from tests.report.test_output_units import numbers_without_unit

    for name in ("classes.parquet", "runs.parquet", "downtime.parquet"):  # the campaign's columns name units too
        assert not numbers_without_unit(pl.read_parquet(tmp_path / "camp" / name)), name
    for bad, field in (("{kind: melt, at: 1s}", "kind"), ("{kind: gpu_slow, at: 1s, rank: 99}", "rank"),
                       ("{kind: link_degraded, at: 1s, link: 'leaf0->spine9'}", "link")):
        scenario.write_text(scenario.read_text().split("faults:")[0] + f"faults:\n  - {bad}\n")
        assert main(["faults", str(scenario), "-o", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and field in err and not (tmp_path / "bad").exists()


def test_a_slowdown_cheaper_than_a_restart_is_tolerated():
    # 400 iterations left at +0.5 s each cost 200 s; a restart costs 300 s: the detector finds the slow GPU
    # and the job runs on slow, as without detection
    job = JobSpec(replicas=8, tp=1, compute_s=0.5, dp_bytes=256 * 2**20, iterations=600, checkpoint_every=100)
    fault = [Fault("gpu_slow", 100.0, rank=3, factor=0.5)]
    with_ = run_job(TOPO, job, fault, detector=QUIET)
    without = run_job(TOPO, job, fault, recovery=RecoveryConfig(policy="none"))
    assert with_.faults[0].correct and with_.faults[0].recovered is None
    assert with_.wall_s == pytest.approx(without.wall_s, rel=1e-12)


def test_a_flapping_link_is_reported_at_its_first_drop_and_routed_around():
    fault = Fault("link_flap", 50.0, link="leaf1<->spine0", down_s=2.0, period_s=20.0)
    r = run_job(TOPO, JOB, [fault], detector=QUIET, recovery=RecoveryConfig(policy="replan"))
    f = r.faults[0]
    assert f.detected == pytest.approx(50.0) and f.culprit == ("link", "leaf1<->spine0") and f.recovered == 50.0
    without = run_job(TOPO, JOB, [fault], detector=QUIET, recovery=RecoveryConfig(policy="none"))
    assert r.wall_s <= without.wall_s + 1e-9


def test_a_cable_with_no_alternative_going_down_is_reported_at_once_and_the_job_moves():
    # rank 2's NIC cable: no other path. The fabric reports the port down at once and names the cable; routing
    # around it would cut rank 2 off, so the job restarts on a spare server then (before it even stalls)
    cache = IterationCache(TOPO, JOB)
    r = run_job(TOPO, JOB, [Fault("link_down", 100.3, link="h2.nic0<->leaf0")], detector=QUIET, cache=cache)
    f = r.faults[0]
    assert f.cls == "comm_slow" and f.culprit == ("link", "h2.nic0<->leaf0") and f.correct
    assert f.detected == 100.3 and f.recovered == pytest.approx(f.detected + 300.0)
    assert r.breakdown["detection"] == 0.0 and r.breakdown["restart"] == 300.0
    # without the report (the watchdog only), the next collective stops as it starts: a hang
    t_iter = cache(State(tuple(range(8)))).time
    r = run_job(TOPO, JOB, [Fault("link_down", 100.3, link="h2.nic0<->leaf0")], detector=QUIET, cache=cache,
                recovery=RecoveryConfig(policy="none"))
    stalled = boundary_after(100.3, t_iter) + JOB.compute_s
    assert r.faults[0].struck == pytest.approx(stalled) and r.breakdown["detection"] == pytest.approx(1800.0)


@pytest.mark.parametrize("edit, field, words", [
    ("faults:\n  - {kind: nic_degraded, at: 10s, rank: 3, factor: 1.0e-9}\n", "faults.0.factor", "0.001"),
    ("job: {replicas: 8, compute: 0s}\n", "job.compute", "> 0"),
    ("faults:\n  - {kind: link_flap, at: 1s, link: 'leaf0->spine0', down: 10s, period: 5s}\n", "faults.0.down",
     "down < period"),
    ("detector: {hang: 0s}\n", "detector.hang", "> 0"),
    ("recovery: {watchdog: 0s}\n", "recovery.watchdog", "> 0"),
    ("detector: {interval: 1.0e-9}\n", "detector.interval", "checks, more than 10,000,000"),  # (found by fuzzing:
    ("recovery: {watchdog: 1000000000}\n", "recovery", "checks, more than 10,000,000"),    # both ran for ever)
])
def test_fault_scenario_errors_name_the_files_own_fields(tmp_path, capsys, edit, field, words):
    """Errors name the YAML's own keys (compute, down, period — not the internal compute_s, down_s), and
    nonsense (a factor of 1e-9, zero timeouts) is refused up front instead of running for minutes."""
    from netsim.cli import main

    scenario = tmp_path / "f.yaml"
    scenario.write_text("name: s\ntopology: {kind: leaf_spine, leaves: 2, spines: 2, hosts_per_leaf: 4, "
                        "host_bandwidth: 100Gbps, spine_bandwidth: 100Gbps}\n" + edit)
    assert main(["faults", str(scenario), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{scenario}: {field}:" in err and words in err, err
    assert "_s" not in err.split(f"{field}: ", 1)[1] and not (tmp_path / "out").exists()


def test_campaign_error_on_a_fabric_without_switch_cables_names_the_file(tmp_path, capsys):
    from netsim.cli import main

    scenario = tmp_path / "f.yaml"
    scenario.write_text("name: s\ntopology: {kind: single_switch, gpus: 8}\njob: {replicas: 8}\n"
                        "campaign: {classes: [link_down]}\n")
    assert main(["faults", str(scenario), "--campaign", "2"]) == 2
    assert f"{scenario}: campaign.classes: the job crosses no cable" in capsys.readouterr().err


def test_faults_help_documents_the_keys_the_file_takes(capsys):
    from netsim.cli import main

    assert main(["faults", "--help"]) == 0
    text = capsys.readouterr().out
    assert "`down` of every `period`" in text and "down_s" not in text


def crossing(cache: IterationCache, topo, cable: str) -> set[tuple[int, int]]:
    """The job's connections whose paths cross `cable` (either direction), as the detector maps them."""
    links = set(cable_links(topo, cable))
    return {c for c, used in cache.paths().items() if used & links}


@pytest.mark.parametrize("routing", ["ecmp", "c4p"])
def test_a_degraded_spine_cable_is_localised_to_exactly_that_cable(routing):
    """8 ranks in a ring on 4 leaves x 2 spines (2 ranks a leaf): the leaf-to-leaf hops are (1, 2), (3, 4),
    (5, 6), (7, 0). ECMP's hash puts all but (3, 4) on spine0; C4P's plan puts all four there. A spine0
    cable crossed by two hops explains both slow ones; one crossed by a single hop is named because the
    hop's other spine0 cable also carries a second hop that stays fast (spine cables are as narrow as a NIC
    here: any loss there slows what crosses it). The hop (3, 4) alone on spine1 under ECMP crosses two
    cables that nothing else crosses: both explain it alike, and the detector names the pair."""
    topo = fabric(leaves=4, spines=2, hosts=2)
    cache = IterationCache(topo, JOB, routing)
    spine0 = {"ecmp": [{(1, 2), (7, 0)}, {(1, 2)}, {(5, 6)}, {(5, 6), (7, 0)}],
              "c4p": [{(1, 2), (7, 0)}, {(1, 2), (3, 4)}, {(3, 4), (5, 6)}, {(5, 6), (7, 0)}]}[routing]
    assert [crossing(cache, topo, f"leaf{leaf}<->spine0") for leaf in range(4)] == spine0
    for leaf in range(4):
        cable = f"leaf{leaf}<->spine0"
        r = run_job(topo, JOB, [Fault("link_degraded", 100.0, link=cable, factor=0.3)], detector=QUIET,
                    recovery=RecoveryConfig(policy="replan"), routing=routing, cache=cache)
        f = r.faults[0]
        assert (f.cls, f.culprit, f.correct) == ("comm_slow", ("link", cable), True)
        assert f.recovered == f.detected  # re-planned around it at once
    if routing == "ecmp":
        assert crossing(cache, topo, "leaf1<->spine1") == crossing(cache, topo, "leaf2<->spine1") == {(3, 4)}
        r = run_job(topo, JOB, [Fault("link_degraded", 100.0, link="leaf2<->spine1", factor=0.3)], detector=QUIET,
                    recovery=RecoveryConfig(policy="replan"), cache=cache)
        assert r.faults[0].culprit == ("links", ("leaf1<->spine1", "leaf2<->spine1"))


def test_under_spray_a_degraded_uplink_is_localised_to_its_leaf():
    """Spraying splits every connection leaving or entering a leaf over all of the leaf's uplinks, so every
    uplink explains the same slow connections: the candidates are exactly the leaf's uplinks (and at factor
    0.3 of a 2-spine leaf's uplink, a half share of a NIC's flow is slowed)."""
    topo = fabric(leaves=4, spines=2, hosts=2)
    cache = IterationCache(topo, JOB, "spray")
    for leaf in range(4):
        for spine in range(2):
            fault = Fault("link_degraded", 100.0, link=f"leaf{leaf}<->spine{spine}", factor=0.3)
            f = run_job(topo, JOB, [fault], detector=QUIET, routing="spray", cache=cache).faults[0]
            assert f.cls == "comm_slow" and f.culprit == ("links", (f"leaf{leaf}<->spine0", f"leaf{leaf}<->spine1"))


@pytest.mark.parametrize("routing", ["ecmp", "spray", "c4p"])
def test_a_flapping_cable_is_localised_by_its_link_state_not_by_telemetry(routing):
    """While a cable is down its connections take the other spine, which carries no other ring hop here: no
    connection is slower, so the telemetry holds no evidence; the port going down, as the fabric reports it,
    names the cable exactly, under any routing."""
    topo = fabric(leaves=4, spines=2, hosts=2)
    cache = IterationCache(topo, JOB, routing)
    cable = "leaf1<->spine0"
    healthy = cache(State(tuple(range(8))))
    down = cache(State(tuple(range(8)), down=frozenset(cable_links(topo, cable))))
    assert down.time == pytest.approx(healthy.time, rel=1e-9)
    fault = Fault("link_flap", 50.0, link=cable, down_s=2.0, period_s=20.0)
    f = run_job(topo, JOB, [fault], detector=QUIET, recovery=RecoveryConfig(policy="replan"), routing=routing,
                cache=cache).faults[0]
    assert (f.detected, f.culprit, f.correct) == (pytest.approx(50.0), ("link", cable), True)


def test_a_small_campaign_localises_degraded_cables_as_far_as_the_paths_allow():
    """16 degraded cables drawn on the ring of 4 leaves x 2 spines under ECMP. Six fabric cables carry the
    job's traffic: the four spine0 cables are identifiable (test above), the two spine1 cables are crossed
    by the same one connection alone (a pair of candidates). So exact localisation is the share of draws on
    spine0 cables (10 of 16 with seed 0, 0.625; 4/6 expected over many draws), and every detection names
    the faulty cable, alone or as one of two."""
    r = campaign(fabric(leaves=4, spines=2, hosts=2), JOB, 16, seed=0, detector=QUIET, classes=("link_degraded",),
                 clean_runs=0)
    row = r.classes.row(0, named=True)
    runs = r.runs.filter(pl.col("mode") == "detector")
    on_spine0 = runs.filter(pl.col("target").str.ends_with("spine0")).height
    assert row["detected"] == 16 and row["right_class_and_place"] == on_spine0 == 10
    assert row["recall"] == row["place_precision"] == pytest.approx(10 / 16)
    assert row["place_recall"] == 1.0 and row["among_candidates"] == 6
    assert row["named_share"] == pytest.approx((10 + 6 / 2) / 16) and row["places_named_mean"] == pytest.approx(22 / 16)

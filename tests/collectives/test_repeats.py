"""Compression of repeated steps (`Simulation(compress=M)`): closed forms, full runs, counts and errors."""

import math

import numpy as np
import pytest

from netsim.cli import main
from netsim.collectives import Communicator, closed_form
from netsim.collectives.compose import parallel
from netsim.collectives.repeats import kept_steps, repeated_runs
from netsim.collectives.ring import _ring, ring_steps
from netsim.errors import ConfigError
from netsim.network.fluid import FluidNetwork
from netsim.program.budget import collective_transfers
from netsim.scenario.config import NetworkConfig
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.topology.config import topology_from_dict

BW, ALPHA = 10e9, 3e-6


def rail(gpus: int, per_leaf: int):
    servers = gpus // 8
    groups = max(1, servers // per_leaf)
    return topology_from_dict({
        "kind": "leaf_spine", "name": f"rail{gpus}", "leaves": 8 * groups, "spines": servers // groups,
        "hosts_per_leaf": servers // groups, "gpus_per_host": 8, "nics_per_host": 8, "rail_optimized": True,
        "host_bandwidth": "400Gbps", "spine_bandwidth": "400Gbps", "nvlink_bandwidth": "450GB/s",
        "host_latency": "1us", "spine_latency": "1us"})


def run(topo, op, size, algo, compress, *, network="fluid", chunks=1):
    sim = Simulation(topo, network=network, record_links=False, compress=compress)
    comm = Communicator(sim, topo.gpus)
    sim.run(comm.run(op, size, algo=algo, chunks=chunks))
    return sim, comm


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("network", ["fluid", "analytic"])
@pytest.mark.parametrize("op", ["all_reduce", "reduce_scatter"])
def test_a_contention_free_ring_compressed_is_its_closed_form(op, network, compiled, monkeypatch):
    monkeypatch.setattr(FluidNetwork, "compile_dataflows", compiled)
    n, size = 24, 24 * 2**16
    sim, _ = run(full_mesh(n, BW, ALPHA), op, size, "ring", 4, network=network)
    notes = sim.meta["compressed"]
    steps = 2 * (n - 1) if op == "all_reduce" else n - 1
    assert [(x["steps"], x["simulated"]) for x in notes] == [(steps, 4)]
    assert sim.network.transfers_started == 4 * n  # what ran: 4 steps of n transfers
    assert sim.now == pytest.approx(closed_form(op, "ring", n, size, ALPHA, BW), rel=1e-9)
    assert notes[0]["pace_s"] == pytest.approx(ALPHA + size / n / BW, rel=1e-9) == notes[0]["bound_s"]
    assert notes[0]["spread"] < 1e-9 and notes[0]["periodic"]


def test_the_reference_and_compiled_executors_agree_under_compression(monkeypatch):
    topo = rail(256, 16)
    ends = []
    for compiled in (True, False):
        monkeypatch.setattr(FluidNetwork, "compile_dataflows", compiled)
        ends.append(run(topo, "all_reduce", 2**26, "rings", 8)[0].now)
    assert ends[0] == pytest.approx(ends[1], rel=1e-12)


@pytest.mark.parametrize("algo, gpus, per_leaf, keep, within, periodic", [
    ("hierarchical", 512, 16, 8, 1e-4, True),  # rings per rail, no contention: the cross-leaf latency
    ("rings", 256, 32, 16, 0.01, False),  # one ring per rail; the NIC hop bounds the period (measured -0.70%)
    ("ring", 256, 16, 16, 0.12, False),  # a ring crossing rails through spines, ECMP collisions (-8.4%)
])
def test_compressed_runs_stay_near_the_full_simulation(algo, gpus, per_leaf, keep, within, periodic, monkeypatch):
    monkeypatch.setattr(FluidNetwork, "check_rates", False)  # 140k recomputations: the kernel's own tests check them
    topo = rail(gpus, per_leaf)
    full = run(topo, "all_reduce", 2**30, algo, 0)[0]
    cut = run(topo, "all_reduce", 2**30, algo, keep)[0]
    assert "compressed" not in full.meta
    assert cut.network.transfers_started < full.network.transfers_started / 4
    assert abs(cut.now / full.now - 1) < within
    assert cut.meta["compressed"][0]["periodic"] is periodic


def test_the_work_estimate_counts_what_a_compressed_run_creates():
    topo = rail(1024, 64)
    sim = Simulation(topo, record_links=False, transfers="drop", compress=16)
    comm = Communicator(sim, topo.gpus)
    estimate = collective_transfers(comm, "all_reduce", 2**30, "rings", 1)
    assert estimate == 16 * 8 * 1024 < 8 * 1024 * 2046  # 16 of 2,046 steps, 8 rings of 1,024
    sim.run(comm.run("all_reduce", 2**30, algo="rings"))
    assert sim.network.transfers_started == estimate
    uncompressed = Communicator(Simulation(topo, record_links=False), topo.gpus)
    assert collective_transfers(uncompressed, "all_reduce", 2**30, "rings", 1) == 8 * 1024 * 2046


def test_a_program_compresses_its_collectives_as_a_communicator_does():
    from netsim.program import Node, Program, run_program

    topo = rail(256, 32)
    direct = run(topo, "all_reduce", 2**28, "rings", 8)[0]
    sim = Simulation(topo, record_links=False, compress=8)
    ranks = range(len(topo.gpus))
    program = Program({r: (Node(r, 0, "collective", op="all_reduce", nbytes=2**28, group="world", algo="rings"),)
                       for r in ranks}, {"world": tuple(ranks)}).validate()
    done = run_program(sim, program, dict(enumerate(topo.gpus.tolist()))).done
    sim.run(done)
    assert sim.now == pytest.approx(direct.now, rel=1e-12)
    assert [x["steps"] for x in sim.meta["compressed"]] == [2 * 255]


def test_a_ring_with_one_slow_hop_is_bounded_by_its_mean_hop():
    """Lateness from one slow hop travels one rank a step, so a few kept steps run at the fast hops' pace;
    the max-plus bound (the ring's mean hop time) keeps the estimate near the full run (-27% without it)."""
    from netsim.topology.custom import graph_topology

    nodes = {f"g{i}": "gpu" for i in range(16)}
    links = [(f"g{i}", f"g{j}", 10e9, 20e-6 if (i, j) == (0, 15) else 1e-6) for i in range(16) for j in range(i + 1, 16)]
    topo = graph_topology(nodes, links)
    full = run(topo, "all_reduce", 16 * 1024, "ring", 0)[0].now
    for network in ("fluid", "analytic"):
        cut = run(topo, "all_reduce", 16 * 1024, "ring", 4, network=network)[0]
        hop = 1e-6 + 1024 / 10e9
        assert cut.meta["compressed"][0]["bound_s"] == pytest.approx((15 * hop + 20e-6 + 1024 / 10e9) / 16)
        assert not cut.meta["compressed"][0]["periodic"]
        assert abs(cut.now / full - 1) < 0.05  # measured -3.3%


def test_only_runs_that_every_rank_takes_part_in_are_cut():
    steps = ring_steps([np.arange(6)], [6 * 100], 20)
    assert [(r.start, r.length) for r in repeated_runs(steps, 6, 4)] == [(0, 20)]
    assert len(kept_steps(steps, repeated_runs(steps, 6, 4))) == 4
    assert repeated_runs(steps, 7, 4) == []  # a seventh rank that sits it out
    assert repeated_runs(steps[:7], 6, 4) == []  # shorter than twice what is kept
    both = parallel(_ring(np.arange(4), 400, 12), _ring(np.arange(4, 8), 400, 12), channels=True)
    assert all(s is both.steps[0] for s in both.steps)  # parallel parts repeating repeat together


def test_uneven_pieces_do_not_repeat_and_a_huge_schedule_of_them_is_refused():
    steps = ring_steps([np.arange(6)], [6 * 100 + 1], 10)
    assert repeated_runs(steps, 6, 4) == []
    with pytest.raises(ConfigError, match="does not split evenly"):
        ring_steps([np.arange(20_000)], [2**30 + 1], 2 * 19_999)


def test_compress_is_checked_everywhere_it_is_given(capsys, tmp_path):
    with pytest.raises(ConfigError, match="compress"):
        Simulation(full_mesh(4, BW, ALPHA), compress=2)
    with pytest.raises(ValueError, match="at least 4"):
        NetworkConfig(compress=3)
    assert NetworkConfig(compress=16).simulation()["compress"] == 16
    topo = tmp_path / "mesh.yaml"
    topo.write_text("kind: leaf_spine\nleaves: 2\nspines: 2\nhosts_per_leaf: 4\n")
    assert main(["bench", "--topology", str(topo), "--compress", "2", "-b", "1M", "-e", "1M"]) == 2
    assert "--compress" in capsys.readouterr().err


def test_bench_marks_rows_whose_steps_were_skipped(capsys, tmp_path):
    topo = tmp_path / "mesh.yaml"
    topo.write_text("kind: leaf_spine\nleaves: 2\nspines: 2\nhosts_per_leaf: 8\n")
    assert main(["bench", "--topology", str(topo), "--algo", "ring", "--compress", "4", "-b", "1M", "-e", "1M",
                 "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["skipped_steps"] == 2 * 15 - 4
    assert math.isfinite(rows[0]["time_s"])


def test_the_work_estimate_builds_only_schedules_whose_steps_repeat(monkeypatch):
    """A pipelined tree (no repeated steps) is counted as without compression, from its one-chunk schedule:
    3M chunks are never built (28 s and 1.3 GB if they were)."""
    from dataclasses import replace

    from netsim.collectives.algorithms import ALGORITHMS

    tree = ALGORITHMS["broadcast"]["tree"]

    def one_chunk_only(req):
        assert req.chunks == 1, "built in chunks"
        return tree.build(req)

    monkeypatch.setitem(ALGORITHMS["broadcast"], "tree", replace(tree, build=one_chunk_only))
    sim = Simulation(full_mesh(8, BW, ALPHA), record_links=False, compress=4)
    assert collective_transfers(Communicator(sim, sim.topology.gpus), "broadcast", 2**30, "tree",
                                3_000_000) == 7 * 3_000_000

"""The netsim torch.distributed backend: plain scripts (tests/training/scripts) run on 2 and 4 local CPU
processes (`ranks.launch`) under netsim and under gloo. The results are gloo's bit for bit, the recording holds the calls
each script says it made (op, bytes in netsim's convention, group or peer), and it is a valid `Program`
that runs on a simulated fabric, overlap included."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from netsim.collectives import ring_all_reduce_time  # noqa: E402
from netsim.program import Program, run_program  # noqa: E402
from netsim.sim import Simulation  # noqa: E402
from netsim.topology import full_mesh  # noqa: E402
from netsim.traces import load_trace  # noqa: E402
from netsim.traces.recording import TAG_STRIDE, UNEVEN, program_from_recording, read_ranks  # noqa: E402
from tests.training.ranks import launch  # noqa: E402

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).parents[2]
# a script under netsim in a fresh interpreter: register the backend, then run it as __main__
UNDER_NETSIM = ("import runpy, sys; import netsim.training.backend; sys.argv = sys.argv[1:]; "
                "runpy.run_path(sys.argv[0], run_name='__main__')")
BW, LAT = 1e9, 5e-6


def both(tmp_path_factory, script: str, nproc: int) -> dict:
    """The script under netsim (recorded) and under plain gloo: their outputs per rank and the recording."""
    base = tmp_path_factory.mktemp(script.removesuffix(".py"))
    launch(SCRIPTS / script, nproc, "netsim", base / "netsim", record=base / "recording")
    launch(SCRIPTS / script, nproc, "gloo", base / "gloo")
    load = lambda d, r: torch.load(d / f"rank-{r}.pt")  # noqa: E731
    return {"netsim": [load(base / "netsim", r) for r in range(nproc)],
            "gloo": [load(base / "gloo", r) for r in range(nproc)], "recording": base / "recording"}


@pytest.fixture(scope="module")
def collectives(tmp_path_factory):
    return both(tmp_path_factory, "collectives.py", 4)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    return both(tmp_path_factory, "ddp.py", 2)


@pytest.fixture(scope="module")
def overlap(tmp_path_factory):
    return both(tmp_path_factory, "overlap.py", 2)


def assert_bit_identical(run: dict) -> None:
    for rank, (mine, theirs) in enumerate(zip(run["netsim"], run["gloo"])):
        assert mine["out"].keys() == theirs["out"].keys()
        for key, value in theirs["out"].items():
            assert mine["out"][key].dtype == value.dtype, (rank, key)
            assert torch.equal(mine["out"][key], value), (rank, key)


def simulate(program, *, scale_compute=1.0, bandwidth=BW, algo="ring"):
    topo = full_mesh(len(program.ranks), bandwidth=bandwidth, latency=LAT)
    sim = Simulation(topo, record_links=False)
    run = run_program(sim, program, dict(zip(program.ranks, topo.gpus.tolist())), algo=algo,
                      scale_compute=scale_compute)
    sim.run(run.done)
    return run.result()


def test_every_collective_gives_gloos_result_bit_for_bit(collectives):
    assert_bit_identical(collectives)


def test_the_recording_holds_the_calls_the_script_made(collectives):
    """Op, bytes in netsim's convention (all_gather: the gathered output; reduce_scatter and all_to_all: the
    input; gather / scatter: one block) and the group's global ranks, or the peer, call by call."""
    ranks = read_ranks(collectives["recording"])
    assert set(ranks) == {0, 1, 2, 3}
    for rank, data in ranks.items():
        groups = data["groups"]
        recorded = [(ev["collective"] or ev["kind"], ev["bytes"],
                     ev["peer"] if ev["kind"] in ("send", "recv") else groups[ev["group"]])
                    for ev in data["events"] if "call" in ev]
        issued = collectives["netsim"][rank]["issued"]
        assert len(recorded) == len(issued)
        for got, want in zip(recorded, issued):
            assert got[0] == want[0] and got[2] == want[2], (rank, got, want)
            assert want[1] is None or got[1] == want[1], (rank, got, want)
        assert {ev["dtype"] for ev in data["events"] if "call" in ev} >= {"float32", "float64", "int64"}
        assert {ev["how"] for ev in data["events"] if "wait" in ev} == {"work", "future"}
        assert all(ev["where"].endswith(tuple(f"collectives.py:{n}" for n in range(1, 200)))
                   for ev in data["events"] if "call" in ev)


def test_the_recording_is_a_valid_program_that_runs_on_a_fabric(collectives):
    program = program_from_recording(collectives["recording"])
    assert load_trace(collectives["recording"]).format == "torch"  # `netsim replay` reads it as it is
    assert program.groups["0"] == (0, 1, 2, 3)
    assert sorted(len(m) for g, m in program.groups.items() if g != "0") == [2, 2, 2]
    assert program.skipped == {UNEVEN: 1}  # the uneven all_to_all_single, sized as the largest rank's buffer
    for rank in program.ranks:
        issued = collectives["netsim"][rank]["issued"]
        nodes = program.nodes[rank]
        collective = [n for n in nodes if n.kind == "collective"]
        assert len(collective) == sum(op not in ("send", "recv", "gather", "scatter") for op, _, _ in issued)
        messages = [n for n in nodes if n.kind in ("send", "recv")]
        p2p = sum(op in ("send", "recv") for op, _, _ in issued)
        # gather and scatter: a message to (from) the root, or one from (to) every other rank at the root
        assert len(messages) == p2p + (3 if rank == 0 else 1) + (3 if rank == 1 else 1)
        # the pairs' point-to-point messages ride their own group's tag range
        assert any(n.tag >= TAG_STRIDE for n in messages if n.kind in ("send", "recv"))
    result = simulate(program)
    assert result.nodes.height == sum(len(v) for v in program.nodes.values())
    assert (result.nodes["end_s"] <= result.time_s + 1e-12).all()
    # a rank's compute nodes form one chain: the run lasts at least as long as any rank's compute
    assert result.time_s >= max(sum(n.duration for n in program.nodes[r] if n.kind == "compute")
                                for r in program.ranks) - 1e-9


def test_async_work_overlaps_the_compute_before_its_wait(overlap):
    """overlap.py: a blocking 1 MB all-reduce, then a 2 MB one issued with async_op=True, 50 ms of work,
    and its wait. The work depends on the issue, not on the all-reduce; what follows the wait depends on
    both. Without compute the simulated time is the two ring all-reduces; with it, the 50 ms hides behind
    the second all-reduce (made to take 0.2 s)."""
    assert_bit_identical(overlap)
    program = program_from_recording(overlap["recording"])
    serial = {}  # the same program with the work made to wait for the all-reduce: no overlap
    for rank in program.ranks:
        nodes = program.nodes[rank]
        first, second = [n for n in nodes if n.kind == "collective"]
        assert (first.nbytes, second.nbytes) == (10**6, 2 * 10**6)
        sleep = max((n for n in nodes if n.kind == "compute" and n.id > second.id), key=lambda n: n.duration)
        assert 0.05 <= sleep.duration < 0.5
        assert second.id not in ancestors(nodes, sleep.id)
        later = [n for n in nodes if n.id > sleep.id]
        assert later and all(second.id in ancestors(nodes, n.id) for n in later)
        serial[rank] = tuple(replace(n, deps=n.deps + (second.id,)) if n is sleep else n for n in nodes)
    bare = simulate(program, scale_compute=0.0)
    expected = ring_all_reduce_time(2, 10**6, LAT, BW) + ring_all_reduce_time(2, 2 * 10**6, LAT, BW)
    assert bare.time_s == pytest.approx(expected, rel=1e-9)
    slow = 1e7  # the second all-reduce (ring on 2 ranks: 2 steps of half the buffer) takes 0.2 s
    timed = simulate(program, bandwidth=slow)
    serialized = simulate(Program(serial, program.groups).validate(), bandwidth=slow)
    assert serialized.time_s - timed.time_s > 0.045  # the 50 ms hid behind the all-reduce
    assert timed.time_s > simulate(program, scale_compute=0.0, bandwidth=slow).time_s


def test_ddp_buckets_are_recorded_as_they_overlap_the_backward(ddp):
    """DDP reduces its gradients in buckets while the backward goes on and waits for them at its end
    (through their futures): every step's buckets add up to the parameters, the wait is recorded at the
    end of each backward, and compute of the backward runs after a bucket's issue, before its wait."""
    assert_bit_identical(ddp)
    param_bytes, steps = ddp["netsim"][0]["param_bytes"], ddp["netsim"][0]["steps"]
    for rank, data in read_ranks(ddp["recording"]).items():
        calls = {ev["call"]: ev for ev in data["events"] if "call" in ev}
        backward = [ev for ev in data["events"] if ev.get("how") == "backward"]
        assert len(backward) == steps
        for wait in backward:
            assert sum(calls[i]["bytes"] for i in wait["wait"]) == param_bytes
            assert all(calls[i]["collective"] == "all_reduce" for i in wait["wait"])
        assert max(len(w["wait"]) for w in backward) >= 2  # rebuilt buckets: several per backward
        assert all(calls[i]["where"].endswith("ddp.py:23") for w in backward for i in w["wait"])  # loss.backward()
    program = program_from_recording(ddp["recording"])
    for rank in program.ranks:
        nodes = program.nodes[rank]
        buckets = [n for n in nodes if n.kind == "collective" and n.op == "all_reduce"]
        overlapped = [b for b in buckets
                      if any(n.kind == "compute" and n.id > b.id and b.id not in ancestors(nodes, n.id)
                             and n.duration > 0 for n in nodes)]
        assert overlapped, "no compute ran beside a bucket's all-reduce"
    result = simulate(program)
    assert result.calls.height == sum(n.kind == "collective" for n in program.nodes[0])


def test_an_unsupported_op_names_itself_and_the_script_line(monkeypatch):
    """In this process (a world of one): a receive from any source has no peer netsim could simulate."""
    import torch.distributed as dist

    from netsim.training.backend import BackendError, recording

    monkeypatch.delenv("NETSIM_RECORD_DIR", raising=False)
    dist.init_process_group("netsim", store=dist.HashStore(), rank=0, world_size=1)
    try:
        t = torch.ones(3)
        dist.all_reduce(t)
        with pytest.raises(BackendError, match=r"recv_anysource is not supported .* called at "
                                               r".*test_backend\.py:\d+"):
            dist.recv(torch.empty(1))
        events = recording().events
        assert [ev.get("op") for ev in events if "call" in ev] == ["allreduce"]
        assert json.dumps(recording().data())  # a rank's recording is plain JSON
    finally:
        dist.destroy_process_group()


def test_a_script_that_fails_leaves_no_recording(tmp_path):
    """An exception ends the script: its rank writes nothing (the recording would be half a program)."""
    script = tmp_path / "fails.py"
    script.write_text("import torch, torch.distributed as dist\n"
                      "dist.init_process_group('netsim', store=dist.HashStore(), rank=0, world_size=1)\n"
                      "dist.all_reduce(torch.ones(2))\n"
                      "raise ValueError('the script fails')\n")
    env = {**os.environ, "NETSIM_RECORD_DIR": str(tmp_path / "rec"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", UNDER_NETSIM, str(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "ValueError: the script fails" in done.stderr
    assert not (tmp_path / "rec").exists()


def ancestors(nodes, node_id: int) -> set[int]:
    by_id = {n.id: n for n in nodes}
    seen, stack = set(), list(by_id[node_id].deps)
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(by_id[d].deps)
    return seen

"""The program executor: closed forms, the semantics of its docstring, real-trace shapes that used to
deadlock, cycles reported as cycles, and the compiled loop against the reference executor."""

import numpy as np
import pytest

from netsim.collectives import ring_all_reduce_time
from netsim.network import FluidNetwork
from netsim.program import Node, Program, ProgramError, run_program
from netsim.sim import Simulation
from netsim.topology import HostSpec, LeafSpineSpec, full_mesh, leaf_spine

BW, LAT = 10e9, 2e-6


def mesh(n=8):
    return full_mesh(n, bandwidth=BW, latency=LAT)


def run(topo, program, *, compiled=True, **kw):
    FluidNetwork.compile_dataflows = compiled
    try:
        sim = Simulation(topo, record_links=False)
        ranks = program.ranks
        r = run_program(sim, program, dict(zip(ranks, topo.gpus[:len(ranks)].tolist())), **kw)
        sim.run(r.done)
        return r.result()
    finally:
        FluidNetwork.compile_dataflows = True


def ring_by_hand(n: int, size: int, sends_first=True) -> Program:
    """A ring all-reduce written as point-to-point messages, as an ASTRA-sim custom collective is: on every
    rank, 2(n-1) rounds of send -> recv -> reduce, each round's send after the previous round's reduce."""
    chunk = size // n
    nodes = {}
    for r in range(n):
        out, prev = [], None
        for step in range(2 * (n - 1)):
            base = 3 * step
            send = Node(r, base, "send", nbytes=chunk, peer=(r + 1) % n, tag=step, deps=(prev,) if prev is not None else ())
            recv = Node(r, base + 1, "recv", nbytes=chunk, peer=(r - 1) % n, tag=step, deps=(base,))
            reduce = Node(r, base + 2, "compute", "reduce", duration=0.0, deps=(base + 1,))
            out += [send, recv, reduce]
            prev = base + 2
        nodes[r] = tuple(out)
    return Program(nodes, {}, source="ring-by-hand").validate()


def test_a_ring_written_as_sends_and_recvs_runs_eagerly_and_meets_the_ring_formula():
    """Each rank's recv depends on its own earlier send: eager sends complete it (a rendezvous that holds
    a send until the peer's recv is posted would wait forever)."""
    n, size = 8, 8 * 10**6
    result = run(mesh(n), ring_by_hand(n, size))
    assert result.time_s == pytest.approx(ring_all_reduce_time(n, size, LAT, BW), rel=1e-9)
    assert (result.nodes["end_s"] >= result.nodes["start_s"]).all()


def test_rendezvous_sends_wait_for_their_receive_to_be_posted():
    """Rank 1 posts its recv after 1 ms of compute: an eager send arrives before that (the recv ends at
    once when posted), a rendezvous send only leaves then."""
    nodes = {0: (Node(0, 0, "send", nbytes=10**6, peer=1),),
             1: (Node(1, 0, "compute", "c", duration=1e-3), Node(1, 1, "recv", nbytes=10**6, peer=0, deps=(0,)))}
    program = Program(nodes, {}).validate()
    transfer = LAT + 10**6 / BW
    eager = run(mesh(2), program)
    assert eager.time_s == pytest.approx(1e-3, rel=1e-12)
    assert eager.nodes.filter(kind="send")["end_s"][0] == pytest.approx(transfer, rel=1e-9)
    rdv = run(mesh(2), program, sends="rendezvous")
    assert rdv.time_s == pytest.approx(1e-3 + transfer, rel=1e-9)


def test_compute_runs_in_dependency_order_not_file_order():
    """A converted trace lists a kernel before the one it depends on (three positions later): the compute
    stream runs them in dependency order, ties by recorded start."""
    d = [1e-4, 2e-4, 3e-4, 4e-4]
    nodes = {0: (Node(0, 0, "compute", "k0", duration=d[0], deps=(3,), start=4e-4),
                 Node(0, 1, "compute", "k1", duration=d[1], start=0.0),
                 Node(0, 2, "compute", "k2", duration=d[2], start=1e-4),
                 Node(0, 3, "compute", "k3", duration=d[3], start=2e-4))}
    result = run(mesh(2), Program(nodes, {}).validate())
    assert result.time_s == pytest.approx(sum(d), rel=1e-12)  # one stream: one at a time
    order = result.nodes.sort("start_s")["node"].to_list()
    assert order == [1, 2, 3, 0]


def test_a_true_cycle_is_reported_with_the_nodes_it_goes_through():
    nodes = {0: (Node(0, 0, "recv", nbytes=10, peer=1), Node(0, 1, "send", nbytes=10, peer=1, deps=(0,))),
             1: (Node(1, 0, "recv", nbytes=10, peer=0), Node(1, 1, "send", nbytes=10, peer=0, deps=(0,)))}
    program = Program(nodes, {}).validate()
    with pytest.raises(ProgramError) as err:
        run(mesh(2), program, sends="rendezvous")
    text = str(err.value)
    assert "cycle" in text and "rank 0 node 1 (send to rank 1)" in text and "rank 1 node 0 (recv from rank 0)" in text
    assert "\n" not in text
    # eager sends cannot help a recv that waits for itself: both ranks receive before they send
    with pytest.raises(ProgramError, match="cycle"):
        run(mesh(2), program)


def test_collectives_rendezvous_and_meet_the_ring_formula_with_compute_overlapped():
    n, size = 4, 4 * 10**6
    nodes = {r: (Node(r, 0, "compute", "fwd", duration=1e-4 * (r + 1)),
                 Node(r, 1, "collective", op="all_reduce", nbytes=size, group="world", deps=(0,)),
                 Node(r, 2, "compute", "other", duration=5e-3)) for r in range(n)}
    program = Program(nodes, {"world": tuple(range(n))}).validate()
    result = run(mesh(n), program, algo="ring")
    ring = ring_all_reduce_time(n, size, LAT, BW)
    call = result.calls.row(0, named=True)
    assert call["start_s"] == pytest.approx(4e-4, rel=1e-12)  # the slowest member's arrival
    assert call["time_s"] == pytest.approx(ring, rel=1e-9)
    # the third node has no dependency on the collective: it runs on the compute stream right after fwd
    assert result.time_s == pytest.approx(max(4e-4 + ring, 1e-4 * n + 5e-3), rel=1e-9)
    assert result.compute_s == {r: pytest.approx(1e-4 * (r + 1) + 5e-3) for r in range(n)}


def fabric():
    return leaf_spine(LeafSpineSpec(leaves=4, spines=2, hosts_per_leaf=4, spine_bandwidth=6.25e9, spine_latency=1e-6,
                                    host=HostSpec(nic_bandwidth=12.5e9, nic_latency=1e-6, pcie_bandwidth=64e9)))


def mixed(n=16) -> Program:
    """Two groups' collectives, messages across leaves and compute on two streams, all overlapping."""
    nodes = {}
    for r in range(n):
        peer = (r + 5) % n
        src = (r - 5) % n
        nodes[r] = (
            Node(r, 0, "compute", "a", duration=1e-5 * (r % 3)),
            Node(r, 1, "collective", op="all_reduce", nbytes=2**20 + 7, group="even" if r % 2 == 0 else "odd",
                 deps=(0,)),
            Node(r, 2, "send", nbytes=3 * 10**5, peer=peer, deps=(0,)),
            Node(r, 3, "recv", nbytes=3 * 10**5, peer=src),
            Node(r, 4, "compute", "b", duration=2e-5, deps=(3,), stream="side"),
            Node(r, 5, "collective", op="all_to_all", nbytes=2**18, group="world", deps=(1, 4)),
        )
    groups = {"even": tuple(range(0, n, 2)), "odd": tuple(range(1, n, 2)), "world": tuple(range(n))}
    return Program(nodes, groups).validate()


@pytest.mark.parametrize("algo", ["ring", "tree", "auto"])
def test_the_compiled_loop_equals_the_reference_executor_on_a_mixed_program(algo):
    topo = fabric()
    fast = run(topo, mixed(), algo=algo)
    slow = run(topo, mixed(), algo=algo, compiled=False)
    assert fast.compiled and not slow.compiled
    np.testing.assert_allclose(fast.nodes["start_s"].to_numpy(), slow.nodes["start_s"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fast.nodes["end_s"].to_numpy(), slow.nodes["end_s"].to_numpy(), rtol=1e-9)
    assert fast.time_s == pytest.approx(slow.time_s, rel=1e-9)
    assert len(fast.calls) == 3 and fast.calls["time_s"].min() > 0


@pytest.mark.parametrize("module", ["netsim.program.timeline", "netsim.network.dataflow"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_sends_on_one_stream_run_in_dependency_order_and_share_streams_with_compute():
    """A send listed before the send it depends on (same peer, so the same stream) runs after it; a compute
    node and a send on one named stream run one after the other."""
    size = 10**6
    hop = LAT + size / BW
    nodes = {0: (Node(0, 0, "send", nbytes=size, peer=1, deps=(1,)), Node(0, 1, "send", nbytes=size, peer=1)),
             1: (Node(1, 0, "recv", nbytes=size, peer=0), Node(1, 1, "recv", nbytes=size, peer=0))}
    result = run(mesh(2), Program(nodes, {}).validate())
    assert result.time_s == pytest.approx(2 * hop, rel=1e-9)
    sends = result.nodes.filter(kind="send").sort("node")
    assert sends["start_s"].to_list() == pytest.approx([hop, 0.0], abs=1e-15)
    shared = {0: (Node(0, 0, "compute", "c", duration=1e-3, stream="x"),
                  Node(0, 1, "send", nbytes=size, peer=1, stream="x")),
              1: (Node(1, 0, "recv", nbytes=size, peer=0),)}
    assert run(mesh(2), Program(shared, {}).validate()).time_s == pytest.approx(1e-3 + hop, rel=1e-9)


def test_an_unvalidated_program_is_a_one_line_error():
    bad = Program({0: (Node(0, 0, "compute", "c", duration=1e-3, deps=(7,)),)}, {})
    with pytest.raises(ProgramError, match="depends on node 7"):
        run(mesh(2), bad)


def test_hooks_of_one_instant_survive_a_compaction_their_own_calls_trigger(monkeypatch):
    """Lazily lowered calls of two groups start at the same instant (two hook gates in one instant); the
    first one's dataflow compacts the arrays (slack 0), moving the program: the second hook still finds it."""
    from netsim.collectives import Communicator
    from netsim.network.fluid_dataflow import Loop

    def program(rounds=4):
        nodes = {}
        for r in range(4):
            out = []
            for _ in range(rounds):
                out.append(Node(r, len(out), "compute", "c", duration=1e-4, deps=(len(out) - 1,) if out else ()))
                out.append(Node(r, len(out), "collective", op="all_reduce", nbytes=10**5, group="ab"[r // 2],
                                deps=(len(out) - 1,)))
            nodes[r] = tuple(out)
        return Program(nodes, {"a": (0, 1), "b": (2, 3)})

    times = []
    for slack in (1 << 40, 0):
        monkeypatch.setattr(Loop, "COMPACT_SLACK", slack)
        topo = mesh(8)
        sim = Simulation(topo, record_links=False)
        Communicator(sim, topo.gpus[4:8], name="other").run("all_reduce", 10**5, algo="ring")  # appended first
        r = run_program(sim, program(), {i: int(topo.gpus[i]) for i in range(4)}, lazy=True)
        sim.run(r.done)
        times.append(r.result().time_s)
    assert times[0] == pytest.approx(times[1], rel=1e-12)
    assert times[0] == pytest.approx(4 * (1e-4 + ring_all_reduce_time(2, 10**5, LAT, BW)), rel=1e-9)


def test_the_readme_program_example_prints_what_the_readme_says(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("from netsim.program import Node, Program, run_program")
    code = text[start:text.index("```", start)]
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    claimed = code.rsplit("# ", 1)[1].split(":")[0]  # the number the README's comment gives
    assert printed == claimed == "2.338 ms"

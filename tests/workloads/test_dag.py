"""The per-layer training DAG: closed forms on one link with zero latency, FIFO streams, invariants."""

import numpy as np
import pytest

from netsim.collectives import Communicator
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.workloads.compute import ComputeModel
from netsim.workloads.dag import run_dag
from netsim.workloads.ddp import ddp
from netsim.workloads.utilization import UtilizationConfig, utilization

# 4 uniform layers, 0.1 s a step: F = 1/30 s; B_w = 1/120 s per layer; B_act = 1/90 s for layers 1-3
MODEL = ComputeModel(layers=4, step_time=0.1, params=1e6)  # 16-bit: 500 kB per layer, 2 MB in all
T, LAYER_BYTES = 0.1, 5e5
F = T / 3
A, H = (T / 3) / 3, (T / 3) / 4
R1 = F + A + H  # the first release (the top layer's B_w ends)


def run(method, **kw):
    return utilization(UtilizationConfig(method, MODEL, workers=2, latency=0.0, **kw))


def test_backward_nodes_add_up_to_the_step():
    b_act, b_w = MODEL.backward_nodes()
    assert b_act.tolist() == pytest.approx([0, A, A, A]) and b_w.tolist() == pytest.approx([H] * 4)
    assert float(MODEL.forward().sum() + b_act.sum() + b_w.sum()) == pytest.approx(T, rel=1e-12)
    one = ComputeModel(layers=1, step_time=0.3, params=1e6)
    assert one.backward_nodes()[1].tolist() == pytest.approx([0.2])  # one layer: all of the backward is B_w


def test_ddp_reductions_that_keep_up_expose_only_the_last_one():
    # Two workers: a layer's ring all-reduce takes bytes / bandwidth. Here r = 4 ms < the shortest gap
    # between releases (B_w(0) = 8.3 ms): each reduction ends before the next is released, and only the
    # last one (layer 0, released as the step ends) delays the next forward: wall = S (T + r).
    r, steps = 0.004, 5
    result = run("ddp", bandwidth=LAYER_BYTES / r, outer_steps=steps)
    assert result.wall_s == pytest.approx(steps * (T + r), rel=1e-12)
    assert result.utilization == pytest.approx(T / (T + r), rel=1e-12)
    starts = [s.start for s in result.run.syncs[:4]]
    assert starts == pytest.approx([R1, R1 + A + H, R1 + 2 * (A + H), T], rel=1e-12)  # each at its release


def test_ddp_reductions_that_queue_run_back_to_back_from_the_first_release():
    # r = 30 ms > A + H: from the first release on the stream never idles within a step, so a step
    # ends when the fourth reduction does: wall = S (R1 + L r).
    r, steps = 0.03, 4
    result = run("ddp", bandwidth=LAYER_BYTES / r, outer_steps=steps)
    assert result.wall_s == pytest.approx(steps * (R1 + 4 * r), rel=1e-12)
    first = result.run.syncs[:4]
    assert [s.end for s in first] == pytest.approx([R1 + k * r for k in (1, 2, 3, 4)], rel=1e-12)


def test_diloco_half_utilisation_bandwidth_follows_from_the_backward_window():
    # DiLoCo, H steps per period: the last step releases the layers during its backward and they
    # queue, so a period lasts (H - 1) T + R1 + (model bytes) / B. Utilisation 1/2 needs that to be
    # 2 H T:  B = model bytes / ((H + 1) T - R1).
    inner = 4
    bandwidth = 4 * LAYER_BYTES / ((inner + 1) * T - R1)
    result = run("diloco", bandwidth=bandwidth, inner_steps=inner, outer_steps=2)
    assert result.utilization == pytest.approx(0.5, rel=1e-12)
    assert run("diloco", bandwidth=bandwidth * 1.01, inner_steps=inner, outer_steps=2).utilization > 0.5


def test_one_bucket_per_sync_is_released_when_the_step_ends():
    # bucket_bytes = inf: the whole outer gradient in one all-reduce, released by B_w(0) as the H-th
    # step ends and needed by the next forward's first layer: fully exposed, wall = S (H T + bytes / B).
    r, inner, periods = 0.25, 5, 3
    result = run("diloco", bandwidth=4 * LAYER_BYTES / r, inner_steps=inner, outer_steps=periods,
                 bucket_bytes=float("inf"))
    assert result.wall_s == pytest.approx(periods * (inner * T + r), rel=1e-12)
    assert [s.unit for s in result.run.syncs] == [0] * periods and result.run.syncs[0].nbytes == 4 * LAYER_BYTES
    streaming = run("streaming_diloco", bandwidth=4 * LAYER_BYTES / r, inner_steps=inner, outer_steps=periods,
                    fragments=2, bucket_bytes=float("inf"))
    assert sorted({s.nbytes for s in streaming.run.syncs}) == [2 * LAYER_BYTES]  # one bucket per fragment


def test_streaming_with_one_fragment_is_diloco():
    for bw in (1e6, 1e7, 1e8):
        a = run("diloco", bandwidth=bw, inner_steps=5)
        b = run("streaming_diloco", bandwidth=bw, inner_steps=5, fragments=1, overlap=0)
        assert {k: v for k, v in a.as_dict().items() if k != "method"} == \
            {k: v for k, v in b.as_dict().items() if k != "method"}


def test_streaming_fragments_overlap_the_next_steps_and_tau_helps():
    # At DiLoCo's 50% bandwidth, strided fragments spread the bytes over the period and the merge
    # tau = 1 step later hides more of it: each ordering is strict here.
    inner = 4
    bandwidth = 4 * LAYER_BYTES / ((inner + 1) * T - R1)
    diloco = run("diloco", bandwidth=bandwidth, inner_steps=inner, outer_steps=3)
    s0 = run("streaming_diloco", bandwidth=bandwidth, inner_steps=inner, outer_steps=3, fragments=2)
    s1 = run("streaming_diloco", bandwidth=bandwidth, inner_steps=inner, outer_steps=3, fragments=2, overlap=1)
    assert diloco.utilization < s0.utilization < s1.utilization
    assert diloco.sent_total_B == s0.sent_total_B == s1.sent_total_B


def test_reductions_leave_one_at_a_time_in_release_order_on_the_link():
    topo = full_mesh(2, LAYER_BYTES / 0.03, 0.0)
    sim = Simulation(topo)
    result = run_dag(Communicator(sim, topo.gpus), MODEL, ddp(MODEL, steps=3))
    transfers = sim.run().transfers
    record = result()
    spans = []
    for sync in record.syncs:  # in release order: step, then top layer first
        part = transfers.filter(transfers["tag"].str.ends_with(f"ddp@{sync.step}/unit{sync.unit}"))
        assert len(part) == 4  # 2 ranks x 2 ring steps
        spans.append((float(part["start_s"].min()), float(part["end_s"].max())))
    assert all(e1 <= s2 + 1e-15 for (_, e1), (s2, _) in zip(spans, spans[1:]))
    assert [s.unit for s in record.syncs[:4]] == [0, 1, 2, 3]  # layers 3, 2, 1, 0


def test_steps_without_communication_cost_no_events():
    # DiLoCo: the events of a period do not depend on how many steps it has
    few = run("diloco", bandwidth=1e7, inner_steps=10, outer_steps=2).run.events
    many = run("diloco", bandwidth=1e7, inner_steps=500, outer_steps=2).run.events
    assert few == many


def test_a_slow_gossip_neighbour_delays_only_its_neighbours():
    model = ComputeModel(layers=2, step_time=0.1, params=1e3)
    speeds = (1.0, 1.0, 1.0, 1.0, 2.0, 1.0)  # worker 4 half as fast; ring: 3 and 5 wait for it
    result = utilization(UtilizationConfig("gossip", model, workers=6, bandwidth=1e12, inner_steps=5,
                                           outer_steps=1, speeds=speeds, graph="ring"))
    waits = np.asarray(result.run.wait_s)
    assert waits[[3, 5]] == pytest.approx([0.5, 0.5], rel=1e-9)  # 5 steps x 0.1 s x (2 - 1)
    assert waits[[0, 1, 2, 4]] == pytest.approx([0, 0, 0, 0], abs=1e-12)


@pytest.mark.parametrize("method", ["ddp", "streaming_diloco"])
def test_the_ring_shortcut_joins_the_program_the_same_way_in_both_executors(monkeypatch, method):
    """The shortcut runs each all-reduce outside the program (a hook gate starts it, its end counts the call
    down): the compiled loop and the reference executor give the same run."""
    from netsim.network import FluidNetwork

    runs = []
    for compiled in (True, False):
        monkeypatch.setattr(FluidNetwork, "compile_dataflows", compiled)
        runs.append(run(method, bandwidth=LAYER_BYTES / 0.01, outer_steps=2, inner_steps=3, fragments=2))
    fast, slow = runs
    assert fast.wall_s == pytest.approx(slow.wall_s, rel=1e-12)
    assert [s.end for s in fast.run.syncs] == pytest.approx([s.end for s in slow.run.syncs], rel=1e-12)
    assert fast.run.events == slow.run.events > 0


def test_empty_units_and_listed_layer_weights_on_the_ring_shortcut():
    """A layer without parameters makes an empty unit: it ends at once on the shortcut as on the full network;
    layer weights given as a list (as YAML gives them) work."""
    model = ComputeModel(layers=3, step_time=0.1, params=1e6, layer_weights=[0.0, 0.5, 0.5])
    runs = [utilization(UtilizationConfig("ddp", model, workers=4, bandwidth=1e8, latency=1e-3, outer_steps=2,
                                          full_network=full)) for full in (False, True)]
    assert runs[0].wall_s == pytest.approx(runs[1].wall_s, rel=1e-12)
    empty = [s for s in runs[0].run.syncs if s.nbytes == 0]
    assert empty and all(s.end == s.start for s in empty)


def test_an_overlapped_fragment_is_received_before_the_step_that_needs_it_starts():
    """Streaming DiLoCo with tau = 1 (Algorithm 2): a fragment sent after inner step t is block-received after
    step t + 1, so the whole of step t + 2 waits for it, its first forward included. Two layers, two fragments
    (one layer each), H = 4, an all-reduce of 0.2 s (two steps): every gate stalls, in closed form."""
    model = ComputeModel(layers=2, step_time=T, params=1e6)  # 16-bit: 1 MB per layer
    fwd, (b_act, b_w) = model.forward(), model.backward_nodes()
    top = float(fwd.sum() + b_act[1] + b_w[1])  # from a step's start to the top layer's release
    d = 1e6 / 5e6  # two workers: the ring moves the layer's bytes once each way, at 5 MB/s
    r = utilization(UtilizationConfig("streaming_diloco", model, workers=2, latency=0.0, bandwidth=5e6, inner_steps=4,
                                      outer_steps=2, fragments=2, overlap=1))
    s4 = 1 * T + top + d  # the top layer leaves in step 2; step 4 starts when it has arrived
    s6 = s4 + T + d  # the bottom layer leaves at the end of step 4; step 6 waits for it
    s8 = s6 + top + d  # the top layer again, from step 6
    assert [s.released for s in r.run.syncs] == pytest.approx([T + top, s4 + T, s6 + top, s8 + T], rel=1e-12)
    assert r.wall_s == pytest.approx(s8 + T + d, rel=1e-12)  # the last fragment drains after the last step

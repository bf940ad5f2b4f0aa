"""The fluid model on small cases with known answers, and invariants on random ones."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.network import NetworkOptions
from netsim.sim import Simulation
from netsim.topology import TopologyBuilder, single_switch


def run_transfers(topo, specs, **kw):
    """specs: (start, src gpu index, dst gpu index, bytes); returns the transfers frame and the simulation."""
    sim = Simulation(topo, **kw)

    def start(t, s, d, n):
        yield sim.env.timeout(t)
        yield sim.network.transfer(int(topo.gpus[s]), int(topo.gpus[d]), n)

    for spec in specs:
        sim.process(start(*spec))
    return sim.run().transfers.sort("id"), sim


def test_single_transfer_time_is_latency_plus_bytes_over_bandwidth():
    topo = single_switch(2, 1e9, 2e-6)
    t, _ = run_transfers(topo, [(0.0, 0, 1, 10**6)])
    assert t["end_s"][0] == pytest.approx(1e-3 + 4e-6, rel=1e-12)


def test_sharing_then_speeding_up_when_a_flow_leaves():
    # two flows into gpu2 share its downlink; the small one leaves at 2 ms, the big one speeds up
    topo = single_switch(3, 1e9, 0.0)
    t, sim = run_transfers(topo, [(0.0, 0, 2, 10**6), (0.0, 1, 2, 3 * 10**6)])
    assert t["end_s"].to_list() == pytest.approx([2e-3, 4e-3], rel=1e-12)
    assert sim.network.rate_computations == 2


def test_late_arrival_slows_the_first_flow():
    topo = single_switch(3, 1e9, 0.0)
    t, _ = run_transfers(topo, [(0.0, 0, 2, 2 * 10**6), (1e-3, 1, 2, 10**6)])
    # first ms alone (1 MB), then 1 MB each at half rate for 2 ms
    assert t["end_s"].to_list() == pytest.approx([3e-3, 3e-3], rel=1e-12)


def test_full_duplex_directions_do_not_share():
    topo = single_switch(2, 1e9, 0.0)
    t, _ = run_transfers(topo, [(0.0, 0, 1, 10**6), (0.0, 1, 0, 10**6)])
    assert t["end_s"].to_list() == pytest.approx([1e-3, 1e-3], rel=1e-12)


def test_caps_and_overhead():
    topo = single_switch(3, 1e9, 0.0)
    opts = NetworkOptions(overhead=5e-6, flow_rate_cap=0.25e9)
    t, _ = run_transfers(topo, [(0.0, 0, 1, 10**6)], options=opts)
    assert t["end_s"][0] == pytest.approx(4e-3 + 5e-6, rel=1e-12)
    opts = NetworkOptions(endpoint_rate_cap=0.5e9)
    t, _ = run_transfers(topo, [(0.0, 0, 1, 10**6), (0.0, 0, 2, 10**6)], options=opts)
    assert t["end_s"].to_list() == pytest.approx([4e-3, 4e-3], rel=1e-12)


def test_zero_byte_transfer_costs_latency_only():
    topo = single_switch(2, 1e9, 3e-6)
    t, _ = run_transfers(topo, [(0.0, 0, 1, 0)])
    assert t["end_s"][0] == pytest.approx(6e-6)


@st.composite
def random_fabric(draw):
    """A random connected switch graph with GPUs hanging off it, and random transfers."""
    switches = draw(st.integers(1, 5))
    gpus = draw(st.integers(2, 6))
    b = TopologyBuilder("random")
    for s in range(switches):
        b.add_node(f"s{s}", "switch")
    for s in range(1, switches):  # a random spanning tree, then extra cables
        b.add_cable(f"s{s}", f"s{draw(st.integers(0, s - 1))}", draw(st.floats(1e3, 1e4)), 0.0, "core")
    for _ in range(draw(st.integers(0, 3))):
        a, c = draw(st.integers(0, switches - 1)), draw(st.integers(0, switches - 1))
        if a != c:
            b.add_cable(f"s{a}", f"s{c}", draw(st.floats(1e3, 1e4)), draw(st.floats(0, 1e-3)), "core")
    for g in range(gpus):
        b.add_node(f"g{g}", "gpu")
        b.add_cable(f"g{g}", f"s{draw(st.integers(0, switches - 1))}", draw(st.floats(1e3, 1e4)), 0.0, "host")
    topo = b.build()
    pair = st.tuples(st.integers(0, gpus - 1), st.integers(0, gpus - 1)).filter(lambda p: p[0] != p[1])
    transfers = draw(st.lists(st.tuples(st.floats(0, 1.0), pair, st.integers(1, 10**4)), min_size=1, max_size=12))
    policy = draw(st.sampled_from(["ecmp", "spray", "single"]))
    return topo, [(t, s, d, n) for t, (s, d), n in transfers], policy


@settings(max_examples=60, deadline=None)
@given(random_fabric())
def test_bytes_conserved_and_no_link_over_capacity(case):
    topo, specs, policy = case
    t, sim = run_transfers(topo, specs, routing=policy)
    assert len(t) == len(specs)
    assert t["size_B"].sum() == sum(n for *_, n in specs)  # bytes delivered = bytes sent
    assert (t["end_s"] > t["start_s"]).all()
    meter = sim.meter
    assert (meter.peak <= topo.capacity * (1 + 1e-9)).all()  # never above capacity
    # every link carried exactly the bytes of the routes crossing it
    expected = np.zeros(topo.num_links)
    for (start, s, d, n) in specs:
        route = sim.router.route(int(topo.gpus[s]), int(topo.gpus[d]), ())
        expected[route.links] += n * route.coef
    assert meter.total == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # nothing finishes faster than it could alone (ids follow start order; equal starts keep spec order)
    for row, (start, s, d, n) in zip(t.iter_rows(named=True), sorted(specs, key=lambda spec: spec[0])):
        route = sim.router.route(int(topo.gpus[s]), int(topo.gpus[d]), ())
        solo = n / np.min(topo.capacity[route.links] / route.coef) + route.latency
        assert row["end_s"] - row["start_s"] >= solo * (1 - 1e-9)


def test_tcp_window_caps_a_flow_at_streams_times_window_over_rtt():
    from netsim.topology import full_mesh

    topo = full_mesh(2, 10e9, 0.05)  # 100 ms round trip
    for streams in (1, 4, 100):
        opts = NetworkOptions(tcp_window=16 * 2**20, streams=streams)
        t, _ = run_transfers(topo, [(0.0, 0, 1, 10**9)], options=opts)
        rate = min(10e9, streams * 16 * 2**20 / 0.1)
        assert t["end_s"][0] == pytest.approx(10**9 / rate + 0.05, rel=1e-9)
    with pytest.raises(Exception):
        NetworkOptions(streams=0)

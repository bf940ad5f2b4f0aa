"""`Simulation.run`: until nothing is left, until a time, or until given events have happened."""

import pytest

from netsim.collectives import Communicator, ring_all_reduce_time
from netsim.sim import Simulation
from netsim.topology import single_switch

BW = 10e9


def setup(n=4):
    topo = single_switch(n, BW)
    sim = Simulation(topo, network="analytic")
    return sim, Communicator(sim, topo.gpus)


def test_run_one_event_stops_when_it_has_happened():
    sim, comm = setup()
    done = comm.all_reduce(2**20, algo="ring")
    results = sim.run(done)
    # a single switch: every GPU's link is 2 hops of BW, nothing shared
    assert done.triggered and done.value == pytest.approx(ring_all_reduce_time(4, 2**20, 0.0, BW), rel=1e-12)
    assert sim.now == done.value and results.meta["end_time"] == done.value
    assert results.collectives["op"].to_list() == ["all_reduce"]


def test_run_a_list_waits_for_all_of_them():
    sim, comm = setup()
    small, large = comm.all_gather(2**10, algo="ring"), comm.broadcast(2**24, algo="ring")
    results = sim.run([small, large])
    assert small.triggered and large.triggered
    assert sim.now == max(small.value, large.value) == large.value
    assert len(results.collectives) == 2
    assert sim.run([]).meta["end_time"] == sim.now  # nothing to wait for


def test_run_leaves_later_work_pending_and_until_still_works():
    sim, comm = setup()
    first = comm.all_reduce(2**20, algo="ring")
    sim.run(first)

    def later():
        yield sim.env.timeout(1.0)
        yield comm.all_reduce(2**20, algo="ring")

    sim.process(later())
    sim.run(until=sim.now + 0.5)
    assert sim.now == pytest.approx(first.value + 0.5)
    assert len(sim.run().collectives) == 2  # with neither: until nothing is left


def test_run_rejects_events_and_until_together_and_non_events():
    sim, comm = setup()
    with pytest.raises(ValueError, match="not both"):
        sim.run(comm.barrier(), until=1.0)
    with pytest.raises(TypeError, match="an event or a list of events"):
        sim.run(3.0)


def test_an_event_that_can_never_happen_is_an_error_not_a_hang():
    sim, _ = setup()
    with pytest.raises(RuntimeError, match="No scheduled events left"):
        sim.run(sim.env.event())


def test_a_failed_event_raises_its_exception():
    sim, _ = setup()
    broken = sim.env.event()
    broken.fail(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        sim.run(broken)

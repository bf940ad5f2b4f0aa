"""Faults act in the analytic model as in the fluid one: degraded links slow the bytes left, failed
links move flows to working paths; with one transfer (no contention) both models agree exactly."""

import pytest

from netsim.errors import TopologyError
from netsim.sim import Simulation
from netsim.topology import LeafSpineSpec, leaf_spine, single_switch

S = 2**30


def one_transfer(topo, model, faults, src, dst):
    sim = Simulation(topo, network=model, routing="ecmp")
    sim.network.transfer(topo.node(src), topo.node(dst), S)
    for at, name, kind, factor in faults:
        sim.schedule_fault(at, topo.links_named(name), kind, factor)
    return sim.run()


@pytest.mark.parametrize("model", ["analytic", "fluid"])
@pytest.mark.parametrize("factor", [0.01, 0.25, 0.5])
def test_degrade_mid_transfer_matches_the_closed_form(model, factor):
    topo = single_switch(2, 50e9, 1e-6)
    t1 = 1e-3
    r = one_transfer(topo, model, [(t1, "gpu0->sw", "degrade", factor)], "gpu0", "gpu1")
    expected = t1 + (S - 50e9 * t1) / (factor * 50e9) + 2e-6
    assert r.transfers["end_s"][0] == pytest.approx(expected, rel=1e-12)
    assert r.links.filter(r.links["name"] == "gpu0->sw")["carried_B"][0] == pytest.approx(S, rel=1e-12)


def test_degrade_after_the_transfer_changes_nothing():
    topo = single_switch(2, 50e9, 0.0)
    r = one_transfer(topo, "analytic", [(1.0, "gpu0->sw", "degrade", 0.1)], "gpu0", "gpu1")
    assert r.transfers["end_s"][0] == pytest.approx(S / 50e9, rel=1e-12)


def test_failed_spine_link_moves_the_flow_and_both_models_agree():
    topo = leaf_spine(LeafSpineSpec(leaves=2, spines=2, hosts_per_leaf=1, spine_bandwidth=25e9))
    ends, moved = {}, {}
    for model in ("analytic", "fluid"):
        base = one_transfer(topo, model, [], "h0.gpu0", "h1.gpu0")
        used = [n for n, b in zip(base.links["name"], base.links["carried_B"]) if b > 0 and n.startswith("leaf0->spine")]
        assert len(used) == 1
        r = one_transfer(topo, model, [(1e-3, used[0].replace("->", "<->"), "fail", 0.0)], "h0.gpu0", "h1.gpu0")
        links = dict(zip(r.links["name"], r.links["carried_B"]))
        other = "leaf0->spine1" if used[0] == "leaf0->spine0" else "leaf0->spine0"
        assert links[used[0]] == pytest.approx(25e9 * 1e-3, rel=1e-9)  # only what it carried before the fault
        assert links[used[0]] + links[other] == pytest.approx(S, rel=1e-12)
        ends[model] = r.transfers["end_s"][0]
    assert ends["analytic"] == pytest.approx(ends["fluid"], rel=1e-12)
    assert ends["analytic"] == pytest.approx(S / 25e9, rel=1e-12)  # the other spine is as fast


def test_failure_with_no_working_path_is_a_topology_error():
    topo = single_switch(2, 50e9, 0.0)
    with pytest.raises(TopologyError, match="no working path"):
        one_transfer(topo, "analytic", [(1e-3, "gpu0<->sw", "fail", 0.0)], "gpu0", "gpu1")

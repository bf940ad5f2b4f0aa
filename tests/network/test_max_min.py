"""Max-min fairness: hand-computed cases and hypothesis invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.network import max_min_rates


def solve(flows, capacity, caps=None):
    """flows: list of {link: coef}; returns rates."""
    owner, link, coef = [], [], []
    for f, uses in enumerate(flows):
        for l, c in uses.items():
            owner.append(f), link.append(l), coef.append(c)
    cap = None if caps is None else np.array([np.inf if c is None else c for c in caps], dtype=float)
    rates, load = max_min_rates(np.array(owner), np.array(link), np.array(coef, dtype=float),
                                np.array(capacity, dtype=float), len(flows), cap)
    return rates, load


def test_parking_lot():
    # one long flow over three unit links, one short flow on each link: everyone gets 1/2
    rates, load = solve([{0: 1, 1: 1, 2: 1}, {0: 1}, {1: 1}, {2: 1}], [1, 1, 1])
    assert rates == pytest.approx([0.5, 0.5, 0.5, 0.5], rel=1e-12)
    assert load == pytest.approx([1, 1, 1])


def test_two_bottlenecks():
    # link 0 (cap 1): f0, f1; link 1 (cap 3): f1, f2 -> f0 = f1 = 1/2, f2 takes the rest 5/2
    rates, _ = solve([{0: 1}, {0: 1, 1: 1}, {1: 1}], [1, 3])
    assert rates == pytest.approx([0.5, 0.5, 2.5], rel=1e-12)


def test_rate_capped_flow_leaves_the_rest_to_others():
    rates, _ = solve([{0: 1}, {0: 1}], [1], caps=[0.2, None])
    assert rates == pytest.approx([0.2, 0.8], rel=1e-12)


def test_split_flow_counts_its_share_on_each_path():
    # f0 sprayed half/half over links 0 and 1 (cap 1 each); f1 alone on link 0.
    # Progressive filling: both rise to r; link 0 carries r/2 + r = 1 -> r = 2/3; link 1 then has room
    # but f0 is frozen by link 0 (its fixed split), so f0 = f1 = 2/3.
    rates, load = solve([{0: 0.5, 1: 0.5}, {0: 1}], [1, 1])
    assert rates == pytest.approx([2 / 3, 2 / 3], rel=1e-12)
    assert load == pytest.approx([1.0, 1 / 3], rel=1e-12)


@st.composite
def instances(draw):
    nlinks = draw(st.integers(1, 8))
    nflows = draw(st.integers(1, 12))
    capacity = draw(st.lists(st.floats(0.5, 100.0), min_size=nlinks, max_size=nlinks))
    flows = []
    for _ in range(nflows):
        links = draw(st.lists(st.integers(0, nlinks - 1), min_size=1, max_size=nlinks, unique=True))
        weights = draw(st.lists(st.sampled_from([0.25, 0.5, 1.0]), min_size=len(links), max_size=len(links)))
        flows.append(dict(zip(links, weights)))
    caps = draw(st.lists(st.one_of(st.none(), st.floats(0.1, 50.0)), min_size=nflows, max_size=nflows))
    return flows, capacity, caps


@settings(max_examples=200, deadline=None)
@given(instances())
def test_rates_are_feasible_and_max_min_fair(instance):
    flows, capacity, caps = instance
    rates, load = solve(flows, capacity, caps)
    capacity = np.array(capacity)
    assert (rates > 0).all()
    assert (load <= capacity * (1 + 1e-9)).all(), "a link is above capacity"
    for f, uses in enumerate(flows):
        cap = caps[f]
        if cap is not None:
            assert rates[f] <= cap * (1 + 1e-9)
            if rates[f] >= cap * (1 - 1e-9):
                continue  # held by its own cap
        # otherwise some saturated link on its route, where no other flow has a higher rate
        bottleneck = [
            l for l in uses
            if load[l] >= capacity[l] * (1 - 1e-9)
            and all(rates[g] <= rates[f] * (1 + 1e-9) for g, u in enumerate(flows) if l in u)
        ]
        assert bottleneck, f"flow {f} (rate {rates[f]}) has no bottleneck link"

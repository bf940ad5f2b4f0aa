"""Benchmark: the max-min solver against the plain solver (progressive filling), measured side by side in one run.

The plain solver (`plain_filling` below) passes over every entry in every round (what netsim did
first); netsim's solver does that for the first few rounds and then groups the entries once, so
rounds that freeze few flows stay cheap. Both must agree (checked here to 1e-9). Prints times and ratios; asserts
nothing about speed.
"""

from __future__ import annotations

import sys
import timeit

import numpy as np

from netsim.network import max_min_rates


def plain_filling(entry_flow, entry_link, entry_coef, capacity, num_flows):
    rates = np.zeros(num_flows)
    frozen = np.zeros(num_flows, dtype=bool)
    residual = capacity.astype(float).copy()
    live = np.ones(len(entry_flow), dtype=bool)
    while not frozen.all():
        demand = np.bincount(entry_link[live], weights=entry_coef[live], minlength=len(capacity))
        loaded = demand > 0
        inc = max(float((residual[loaded] / demand[loaded]).min()), 0.0)
        rates[~frozen] += inc
        residual -= inc * demand
        full = loaded & (residual <= 1e-12 * capacity)
        frozen[entry_flow[live & full[entry_link]]] = True
        live = ~frozen[entry_flow]
    return rates


def case(rng, flows, links, per_flow, uneven):
    owner = np.repeat(np.arange(flows), per_flow)
    link = rng.integers(0, links, size=flows * per_flow) if uneven else np.arange(flows * per_flow) % links
    capacity = rng.uniform(1e9, 4e9, links) if uneven else np.full(links, 1e9)
    return owner, link, np.ones(flows * per_flow), capacity, flows


def main() -> int:
    rng = np.random.default_rng(0)
    cases = {
        "1,024 flows, one bottleneck level (a ring step)": case(rng, 1024, 4096, 4, False),
        "4,032 flows, uneven links (a 64-GPU all-to-all step)": case(rng, 4032, 400, 6, True),
        "16,000 flows, uneven links (a 128-GPU all-to-all step)": case(rng, 16000, 800, 6, True),
    }
    print(f"{'case':<58} {'plain ms':>13} {'netsim ms':>10} {'speed-up':>9}")
    for name, args in cases.items():
        assert np.allclose(plain_filling(*args), max_min_rates(*args)[0], rtol=1e-9)
        ref = min(timeit.repeat(lambda: plain_filling(*args), number=3, repeat=5)) / 3
        ours = min(timeit.repeat(lambda: max_min_rates(*args), number=3, repeat=5)) / 3
        print(f"{name:<58} {ref * 1e3:>13.2f} {ours * 1e3:>10.2f} {ref / ours:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

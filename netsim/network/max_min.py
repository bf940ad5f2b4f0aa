"""Max-min fair rates by progressive filling, over a sparse (flow, link) entry list.

A flow f puts `coef` x rate(f) on each link it uses (coef < 1 when the flow is split over
several paths with fixed weights). All unfrozen flows rise together until some link
saturates; the flows crossing it freeze at that level; repeat.
"""

from __future__ import annotations

import numpy as np

from netsim.topology.csr import csr, gather

SATURATED = 1e-12  # a link whose residual is below this fraction of its capacity is full


DENSE_ROUNDS = 4  # rounds done by plain passes over all entries before grouping them


def max_min_rates(
    entry_flow: np.ndarray,
    entry_link: np.ndarray,
    entry_coef: np.ndarray,
    capacity: np.ndarray,
    num_flows: int,
    flow_cap: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Max-min fair rates for `num_flows` flows.

    `entry_*` describe the sparse flow x link matrix: flow `entry_flow[i]` loads link
    `entry_link[i]` (a dense index into `capacity`) with `entry_coef[i]` x its rate.
    `flow_cap` (inf where none) bounds single flows. Returns (rates per flow, load per link).
    The first rounds pass over every live entry (cheapest when, as in most collective steps,
    a few bottleneck levels settle everything); past DENSE_ROUNDS the entries are grouped once
    and each further round touches only the links and flows it freezes.
    """
    nlinks = len(capacity)
    rates = np.zeros(num_flows)
    frozen = np.zeros(num_flows, dtype=bool)
    residual = capacity.astype(np.float64, copy=True)
    capped = flow_cap is not None and bool(np.isfinite(flow_cap).any())
    level = 0.0
    live = np.ones(len(entry_flow), dtype=bool)
    demand = np.bincount(entry_link, weights=entry_coef, minlength=nlinks)
    count = np.bincount(entry_link, minlength=nlinks)  # unfrozen entries per link
    grouped = None
    rounds = 0
    while not frozen.all():
        loaded = count > 0
        if not loaded.any():
            break
        share = residual[loaded] / demand[loaded]
        inc = max(float(share.min()), 0.0)
        if capped:
            inc = min(inc, max(float((flow_cap[~frozen] - level).min()), 0.0))
        level += inc
        residual[loaded] -= inc * demand[loaded]
        full = loaded & (residual <= SATURATED * capacity)
        rounds += 1
        before = frozen.copy()
        if grouped is None:
            frozen[entry_flow[live & full[entry_link]]] = True
        else:
            frozen[entry_flow[gather(*grouped[0], np.flatnonzero(full))]] = True
        if capped:
            frozen |= flow_cap <= level * (1 + SATURATED)
        newly = np.flatnonzero(frozen & ~before)
        rates[newly] = level
        if frozen.all():
            break
        if grouped is None and rounds >= DENSE_ROUNDS:
            grouped = (csr(entry_link, nlinks), csr(entry_flow, num_flows))
        if grouped is None:
            live = ~frozen[entry_flow]
            demand = np.bincount(entry_link[live], weights=entry_coef[live], minlength=nlinks)
            count = np.bincount(entry_link[live], minlength=nlinks)
        elif len(newly):
            entries = gather(*grouped[1], newly)
            links = entry_link[entries]
            demand -= np.bincount(links, weights=entry_coef[entries], minlength=nlinks)
            count -= np.bincount(links, minlength=nlinks)
    rates[~frozen] = level
    load = np.bincount(entry_link, weights=entry_coef * rates[entry_flow], minlength=nlinks)
    return rates, load

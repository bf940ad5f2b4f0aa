"""Max-min fair rates by progressive filling, vectorised over (flow, link) entries.

A flow f puts `coef` x rate(f) on each link it uses (coef < 1 when the flow is split
over several paths with fixed weights). All unfrozen flows rise together until some
link saturates; the flows crossing it freeze at that rate; repeat. Each round is a
handful of numpy operations over the entries, and there are as many rounds as
distinct bottleneck levels.
"""

from __future__ import annotations

import numpy as np

SATURATED = 1e-12  # a link whose residual is below this fraction of its capacity is full


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
    `entry_link[i]` (a dense local index into `capacity`) with `entry_coef[i]` x its rate.
    `flow_cap` (inf where none) bounds single flows. Returns (rates per flow, load per link).
    """
    rates = np.zeros(num_flows)
    frozen = np.zeros(num_flows, dtype=bool)
    residual = capacity.astype(np.float64, copy=True)
    nlinks = len(capacity)
    live = np.ones(len(entry_flow), dtype=bool)
    capped = flow_cap is not None and bool(np.isfinite(flow_cap).any())
    while True:
        demand = np.bincount(entry_link[live], weights=entry_coef[live], minlength=nlinks)
        loaded = demand > 0
        if not loaded.any():
            break
        share = residual[loaded] / demand[loaded]
        inc = max(float(share.min()), 0.0)
        if capped:
            headroom = (flow_cap - rates)[~frozen]
            inc = min(inc, max(float(headroom.min()), 0.0))
        rates[~frozen] += inc
        residual -= inc * demand
        full = loaded & (residual <= SATURATED * capacity)
        done = live & full[entry_link]
        frozen[entry_flow[done]] = True
        if capped:
            frozen |= rates >= flow_cap * (1 - SATURATED)
        if frozen.all():
            break
        live = ~frozen[entry_flow]
    load = np.bincount(entry_link, weights=entry_coef * rates[entry_flow], minlength=nlinks)
    return rates, load

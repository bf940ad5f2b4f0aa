"""A `Route`: the paths one transfer takes, their weights, and the load it puts on each link."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.topology import Topology


@dataclass(frozen=True, eq=False)
class Route:
    """Paths (tuples of link ids) with weights summing to 1.

    By default the transfer is split over its paths in fixed proportions (one flow, one rate:
    ideal spraying). With `independent`, path i carries its own subflow of weights[i] of the
    bytes at its own max-min rate, and the transfer ends with its last subflow.
    `links` / `coef` say what fraction of the transfer's bytes crosses each link
    (a link on several paths gets the sum of their weights); `latency` is the
    slowest path's propagation latency.
    """

    paths: tuple[tuple[int, ...], ...]
    weights: tuple[float, ...]
    links: np.ndarray
    coef: np.ndarray
    latency: float
    independent: bool = False  # True: each path is its own subflow (own rate), not a fixed split

    @classmethod
    def of(cls, topo: Topology, paths: list[tuple[int, ...]], weights: list[float],
           independent: bool = False) -> "Route":
        if not paths or len(paths) != len(weights):
            raise ValueError("a route needs one weight per path")
        total = float(sum(weights))
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"route weights sum to {total}, not 1")
        if len(paths) == 1:  # the common case (ECMP, single): one path, each link once, coefficient 1
            links = np.sort(np.asarray(paths[0], dtype=np.int64))
            latency = float(topo.latency[links].sum())
            return cls((tuple(paths[0]),), (1.0,), links, np.ones(len(links)), latency, False)
        flat = np.concatenate([np.asarray(p, dtype=np.int64) for p in paths])
        w = np.concatenate([np.full(len(p), wt) for p, wt in zip(paths, weights)])
        links, inverse = np.unique(flat, return_inverse=True)
        coef = np.bincount(inverse, weights=w)
        latency = max(float(topo.latency[list(p)].sum()) for p in paths)
        return cls(tuple(paths), tuple(float(x) for x in weights), links, coef, latency,
                   independent and len(paths) > 1)

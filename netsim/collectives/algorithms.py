"""The algorithm registry (op -> name -> schedule builder) and `auto`, the NCCL-like choice.

`auto` predicts each candidate's time with the alpha-beta forms below, alpha and B measured
on the communicator (the slowest latency and the narrowest bottleneck between ring
neighbours, plus the network's per-transfer overhead), and picks the fastest, the way
NCCL's tuner compares its algorithms' latency + size / bandwidth models:
  ring all-reduce        2(n-1)(a + S/(nB)); rings (one per NIC rail, c rails): 2(n-1)(a + S/(ncB))
  double binary tree     (2H + C - 1)(a + 2S/(CB)), H = tree height, C chunks in 1..64
                         (per pipeline slot a rank's NIC carries about 2S/C: two children and
                         a parent in the tree where it is interior, a parent in the other)
  ring reduce-scatter / all-gather (n-1)(a + S/(nB)); direct all-to-all a + (n-1)/n S/B
  chain broadcast / reduce (n + C - 2)(a + S/(CB)); tree (H + C - 1)(a + 2S/(CB))
So latency-bound sizes go to the tree (log n hops) and bandwidth-bound sizes to the ring.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from netsim.collectives.direct import direct, dissemination
from netsim.collectives.halving_doubling import halving_doubling
from netsim.collectives.hierarchical import hierarchical
from netsim.collectives.request import Request
from netsim.collectives.ring import chain, channel_orders, ring, ring_bidirectional, ring_channels
from netsim.collectives.schedule import Schedule
from netsim.collectives.tree import binary_tree, tree
from netsim.topology import PathCache

Builder = Callable[[Request], Schedule]

OPS = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce", "all_to_all", "barrier")

ALGORITHMS: dict[str, dict[str, Builder]] = {
    "all_reduce": {"ring": ring("all_reduce"), "ring_bidir": ring_bidirectional("all_reduce"),
                   "rings": ring_channels("all_reduce"), "tree": tree("all_reduce"),
                   "halving_doubling": halving_doubling("all_reduce"), "hierarchical": hierarchical("all_reduce"),
                   "direct": direct("all_reduce")},
    "reduce_scatter": {"ring": ring("reduce_scatter"), "ring_bidir": ring_bidirectional("reduce_scatter"),
                       "rings": ring_channels("reduce_scatter"), "halving_doubling": halving_doubling("reduce_scatter"),
                       "direct": direct("reduce_scatter")},
    "all_gather": {"ring": ring("all_gather"), "ring_bidir": ring_bidirectional("all_gather"),
                   "rings": ring_channels("all_gather"), "halving_doubling": halving_doubling("all_gather"),
                   "direct": direct("all_gather")},
    "broadcast": {"ring": chain("broadcast"), "tree": tree("broadcast"), "direct": direct("broadcast")},
    "reduce": {"ring": chain("reduce"), "tree": tree("reduce"), "direct": direct("reduce")},
    "all_to_all": {"direct": direct("all_to_all")},
    "barrier": {"dissemination": dissemination},
}


def register_algorithm(op: str, algo: str, builder: Builder) -> None:
    """Make `algo` available for collective `op`."""
    ALGORITHMS.setdefault(op, {})[algo] = builder


def algorithms(op: str) -> list[str]:
    return sorted(ALGORITHMS.get(op, {})) + (["auto"] if op in ALGORITHMS else [])


def alpha_beta(req: Request, overhead: float = 0.0) -> tuple[float, float]:
    """(alpha, B): the slowest path latency (+ overhead) and narrowest bottleneck between ring neighbours."""
    topo = req.topology
    cache = PathCache(topo)
    alpha, bw = 0.0, math.inf
    for a, b in zip(req.nodes.tolist(), np.roll(req.nodes, -1).tolist()):
        if a == b:
            continue
        path = cache.paths(a, b)[0]
        alpha = max(alpha, float(topo.latency[list(path)].sum()))
        bw = min(bw, float(topo.capacity[list(path)].min()))
    return alpha + overhead, bw


def predicted_time(op: str, algo: str, n: int, size: float, alpha: float, bw: float, chunks: int = 1,
                   rails: int = 1) -> float:
    """The alpha-beta prediction `auto` compares (see the module docstring)."""
    if n < 2:
        return 0.0
    t = binary_tree(n)
    h = int(t.height()[t.root])
    if op == "all_reduce" and algo in ("ring", "rings"):
        return 2 * (n - 1) * (alpha + size / (n * bw * (rails if algo == "rings" else 1)))
    if op == "all_reduce" and algo == "tree":
        return (2 * h + chunks - 1) * (alpha + 2 * size / (chunks * bw))
    if op in ("reduce_scatter", "all_gather") and algo in ("ring", "rings"):
        return (n - 1) * (alpha + size / (n * bw * (rails if algo == "rings" else 1)))
    if op in ("broadcast", "reduce") and algo == "ring":
        return (n - 1 + chunks - 1) * (alpha + size / (chunks * bw))
    if op in ("broadcast", "reduce") and algo == "tree":
        return (h + chunks - 1) * (alpha + 2 * size / (chunks * bw))
    if op == "all_to_all":
        return alpha + (n - 1) / n * size / bw
    if op == "barrier":
        return math.ceil(math.log2(n)) * alpha
    raise ValueError(f"no prediction for {op}/{algo}")


AUTO_CANDIDATES = {
    "all_reduce": ("ring", "rings", "tree"), "reduce_scatter": ("ring", "rings"), "all_gather": ("ring", "rings"),
    "broadcast": ("ring", "tree"), "reduce": ("ring", "tree"), "all_to_all": ("direct",),
    "barrier": ("dissemination",),
}
PIPELINE_CHUNKS = (1, 2, 4, 8, 16, 32, 64)


def choose(op: str, req: Request, overhead: float = 0.0) -> tuple[str, int]:
    """`auto`: the (algorithm, chunks) with the smallest predicted time."""
    if req.n < 2:
        return AUTO_CANDIDATES[op][0], 1
    alpha, bw = alpha_beta(req, overhead)
    rails = len(channel_orders(req))
    best = None
    for algo in AUTO_CANDIDATES[op]:
        if algo == "rings" and rails == 1:
            continue  # the same as one ring
        pipelined = algo == "tree" or (op in ("broadcast", "reduce") and algo == "ring")
        for c in PIPELINE_CHUNKS if pipelined else (req.chunks,):
            t = predicted_time(op, algo, req.n, req.nbytes, alpha, bw, c, rails)
            if best is None or t < best[0]:
                best = (t, algo, c)
    return best[1], best[2]

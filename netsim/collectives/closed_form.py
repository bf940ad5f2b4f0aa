"""Closed forms of collective times in the alpha-beta model (a message of m bytes takes alpha + m / bw)
and nccl-tests bus-bandwidth factors.

`alpha` is the per-message latency (s), `bw` the bandwidth of one rank's link (bytes/s), `size`
the buffer in bytes (divisible by what the algorithm divides it by), `chunks` the pipelined
pieces. They hold where no two transfers in flight share a link: the analytic model on any
fabric, the fluid model on a full mesh (the double tree excepted: its two trees share links).
"""

from __future__ import annotations

import math

from netsim.collectives.tree import binary_tree


def tree_height(n: int) -> int:
    t = binary_tree(n)
    return int(t.height()[t.root])


def ring_all_reduce_time(n: int, size: float, alpha: float, bw: float) -> float:
    return 0.0 if n < 2 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bw


def ring_reduce_scatter_time(n: int, size: float, alpha: float, bw: float) -> float:
    return 0.0 if n < 2 else (n - 1) * alpha + (n - 1) / n * size / bw


ring_all_gather_time = ring_reduce_scatter_time


def direct_all_to_all_time(n: int, size: float, alpha: float, bw: float) -> float:
    """Every rank sends (n-1)/n of its buffer through its own link at once (a single switch)."""
    return 0.0 if n < 2 else alpha + (n - 1) / n * size / bw


def closed_form(op: str, algo: str, n: int, size: float, alpha: float, bw: float, chunks: int = 1) -> float:
    """Time of `op` by `algo` on n ranks where no two transfers share a link (see the module docstring)."""
    if n < 2:
        return 0.0
    rounds = 2 * (n - 1) if op == "all_reduce" else n - 1
    if algo == "ring":
        if op in ("broadcast", "reduce"):
            return (n - 1 + chunks - 1) * (alpha + size / (chunks * bw))
        return rounds * (alpha + size / (n * bw))
    if algo == "ring_bidir":
        return rounds * (alpha + size / (2 * n * bw))
    if algo == "tree":
        h = tree_height(n)
        if op == "all_reduce":
            return (2 * h + chunks - 1) * (alpha + size / (2 * chunks * bw))
        return (h + chunks - 1) * (alpha + size / (chunks * bw))
    if algo == "halving_doubling":
        m = 1 << (n.bit_length() - 1)
        phases = 2 if op == "all_reduce" else 1
        core = phases * (math.log2(m) * alpha + (m - 1) / m * size / bw)
        return core + (2 * (alpha + size / bw) if m != n else 0.0)
    if algo == "direct":
        if op in ("broadcast", "reduce"):
            return alpha + size / bw
        return (2 if op == "all_reduce" else 1) * (alpha + size / (n * bw))
    if algo == "dissemination":
        return math.ceil(math.log2(n)) * alpha
    raise ValueError(f"no closed form for {op}/{algo}")


def hierarchical_all_reduce_time(hosts: int, gpus: int, size: float, alpha_local: float, bw_local: float,
                                 alpha_net: float, bw_net: float) -> float:
    """Intra-server ring reduce-scatter + per-rail ring all-reduce of S/G + intra-server all-gather."""
    local = 2 * (gpus - 1) * (alpha_local + size / (gpus * bw_local)) if gpus > 1 else 0.0
    return local + ring_all_reduce_time(hosts, size / gpus, alpha_net, bw_net)


BUSBW_FACTOR = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
    "barrier": lambda n: 1.0,
}


def bus_bandwidth(op: str, n: int, size: float, seconds: float) -> float:
    """nccl-tests busbw (bytes/s): algbw = size / time, times the op's factor."""
    return size / seconds * BUSBW_FACTOR[op](n) if seconds > 0 else float("inf")

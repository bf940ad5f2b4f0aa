"""Closed forms of collective times (REFERENCE.md section 1) and nccl-tests bus-bandwidth factors.

alpha is the per-message latency (s), bw the per-rank link bandwidth (bytes/s), size the
buffer in bytes. They hold on a fabric where no two flows share a link.
"""

from __future__ import annotations


def ring_all_reduce_time(n: int, size: float, alpha: float, bw: float) -> float:
    return 0.0 if n < 2 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bw


def ring_reduce_scatter_time(n: int, size: float, alpha: float, bw: float) -> float:
    return 0.0 if n < 2 else (n - 1) * alpha + (n - 1) / n * size / bw


ring_all_gather_time = ring_reduce_scatter_time


def direct_all_to_all_time(n: int, size: float, alpha: float, bw: float) -> float:
    """Every rank sends (n-1)/n of its buffer through its own link at once."""
    return 0.0 if n < 2 else alpha + (n - 1) / n * size / bw


BUSBW_FACTOR = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
}


def bus_bandwidth(op: str, n: int, size: float, seconds: float) -> float:
    """nccl-tests busbw (bytes/s): algbw = size / time, times the op's factor."""
    return size / seconds * BUSBW_FACTOR[op](n) if seconds > 0 else float("inf")

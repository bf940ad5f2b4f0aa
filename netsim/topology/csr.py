"""Compressed sparse rows over numpy: group items by a key once, then gather whole groups at once.

Used for links by node (path search), transfers by sender (collective steps) and entries by
flow or link (max-min fairness): anywhere a loop over groups would otherwise run in Python.
"""

from __future__ import annotations

import numpy as np


def csr(keys: np.ndarray, num_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, order): the items with key k are order[offsets[k]:offsets[k+1]]."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=num_keys)
    return np.concatenate([[0], np.cumsum(counts)]), order


def gather(offsets: np.ndarray, order: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The items of every key in `rows`, concatenated (row by row, in stored order)."""
    starts = offsets[rows]
    counts = offsets[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=order.dtype)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return order[shift + np.arange(total)]

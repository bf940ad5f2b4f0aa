"""Splitting a buffer of whole bytes into near-equal pieces."""

from __future__ import annotations

import numpy as np


def split_bytes(total: int, parts: int) -> np.ndarray:
    """`parts` byte counts summing to `total`, the first `total % parts` one byte larger."""
    base, extra = divmod(int(total), int(parts))
    sizes = np.full(parts, base, dtype=np.int64)
    sizes[:extra] += 1
    return sizes

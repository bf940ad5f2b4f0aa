"""Deterministic flow hashing (the ECMP hash): the same key and seed always give the same value."""

from __future__ import annotations

import hashlib


def flow_hash(*parts: object) -> int:
    """A 64-bit hash of ints and strings, stable across processes (unlike Python's `hash`)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")

"""Deterministic flow hashing (the ECMP hash): the same key and seed always give the same value."""

from __future__ import annotations

import hashlib

import numpy as np


def flow_hash(*parts: object) -> int:
    """A 64-bit hash of ints and strings, stable across processes (unlike Python's `hash`)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def flow_hashes(seed: object, key: object, src: list[int], dst: list[int], node: list[int]) -> np.ndarray:
    """`flow_hash(seed, s, d, key, v)` for each (s, d, v) of a batch sharing seed and key, as uint64: the
    same text hashed (ints print the same way alone and in a tuple), with the shared parts printed once and
    the digests read in one go."""
    head, mid = f"({seed!r}, ", f", {key!r}, "
    blake = hashlib.blake2b
    texts = [f"{head}{s}, {d}{mid}{v})".encode() for s, d, v in zip(src, dst, node)]
    return np.frombuffer(b"".join([blake(t, digest_size=8).digest() for t in texts]), dtype="<u8")

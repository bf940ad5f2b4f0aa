"""Deterministic flow hashing (the ECMP hash): the same key and seed always give the same value.

The hash is BLAKE2b (8-byte digest) of the text of the tuple hashed. `flow_hash` asks Python's `hashlib`;
`flow_hashes`, for a whole batch of (source, destination, switch) sharing seed and key, writes each text and
hashes it in compiled code (BLAKE2b as RFC 7693 defines it): the same values, ~2.5x faster than hashing the
batch's texts with `hashlib` (5,120 hashes: ~1.5 ms instead of ~3.6; the 1,024-GPU halving-doubling asks for
as many). Compiling it takes ~6 s, once (`python -m netsim.cli.warm` at install; numba keeps it on disk); the
rounds are written out with the state in sixteen locals, without which it ran at half that speed.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Sequence

import numpy as np
from numba import njit


def flow_hash(*parts: object) -> int:
    """A 64-bit hash of ints and strings, stable across processes (unlike Python's `hash`)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def flow_hashes(seed: object, key: object, src: Sequence[int], dst: Sequence[int], node: Sequence[int]) -> np.ndarray:
    """`flow_hash(seed, s, d, key, v)` for each (s, d, v) of a batch sharing seed and key, as uint64 (ints
    print the same way alone and in a tuple, so the text is the same).

    >>> int(flow_hashes(0, ("k",), [1], [2], [3])[0]) == flow_hash(0, 1, 2, ("k",), 3)
    True
    """
    head, mid = f"({seed!r}, ".encode(), f", {key!r}, ".encode()
    if not len(src) == len(dst) == len(node):
        raise ValueError(f"flow_hashes: {len(src)}, {len(dst)} and {len(node)} sources, destinations and switches")
    ids = [np.asarray(x) for x in (src, dst, node)]
    if sys.byteorder != "little" or not all(
            a.dtype.kind in "iu" and (not a.size or (a.min() >= 0 and int(a.max()) <= _INT64_MAX)) for a in ids):
        # (ints past int64 or negative, whose digits the compiled hash does not write, or a big-endian
        # machine, whose words it would read the wrong way round)
        blake = hashlib.blake2b
        texts = [head + f"{s}, {d}".encode() + mid + f"{v})".encode() for s, d, v in zip(*(a.tolist() for a in ids))]
        return np.frombuffer(b"".join([blake(t, digest_size=8).digest() for t in texts]), dtype="<u8")
    src, dst, node = (a.astype(np.int64, copy=False) for a in ids)
    out = np.empty(len(src), dtype=np.uint64)
    _hashes(np.frombuffer(head, dtype=np.uint8), np.frombuffer(mid, dtype=np.uint8), src, dst, node, _IV, _SIGMA,
            out)
    return out


_INT64_MAX = 2**63 - 1
# BLAKE2b's initial words and the order in which each of its 12 rounds takes the message's words (RFC 7693)
_IV = np.array([0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
                0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179], dtype=np.uint64)
_SIGMA = np.array([
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4], [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13], [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11], [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5], [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]],
    dtype=np.int64)


@njit(inline="always")
def _rotr(x, n):
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


@njit(inline="always")
def _mix(a, b, c, d, x, y):
    """BLAKE2b's G: four state words mixed with two message words."""
    a = a + b + x
    d = _rotr(d ^ a, 32)
    c = c + d
    b = _rotr(b ^ c, 24)
    a = a + b + y
    d = _rotr(d ^ a, 16)
    c = c + d
    b = _rotr(b ^ c, 63)
    return a, b, c, d


@njit(cache=True)
def _blake2b8(msg, length, iv, sigma, h):
    """BLAKE2b with an 8-byte digest, no key, of msg[:length] (msg has room to the end of its last 128-byte
    block, which is zeroed here), as a uint64 (the digest read little-endian); h: 8 words of scratch."""
    for i in range(8):
        h[i] = iv[i]
    h[0] ^= np.uint64(0x01010008)  # digest length 8, no key, fan-out and depth 1
    done = 0
    while True:
        last = length - done <= 128
        size = length - done if last else 128
        if last:
            msg[done + size:done + 128] = 0
        m = msg[done:done + 128].view(np.uint64)
        done += size
        v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
        v8, v9, v10, v11, v12, v13, v14, v15 = iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6], iv[7]
        v12 ^= np.uint64(done)  # bytes hashed so far (never past 2^64 here)
        if last:
            v14 = ~v14
        for r in range(12):
            s = sigma[r % 10]
            v0, v4, v8, v12 = _mix(v0, v4, v8, v12, m[s[0]], m[s[1]])  # the columns
            v1, v5, v9, v13 = _mix(v1, v5, v9, v13, m[s[2]], m[s[3]])
            v2, v6, v10, v14 = _mix(v2, v6, v10, v14, m[s[4]], m[s[5]])
            v3, v7, v11, v15 = _mix(v3, v7, v11, v15, m[s[6]], m[s[7]])
            v0, v5, v10, v15 = _mix(v0, v5, v10, v15, m[s[8]], m[s[9]])  # the diagonals
            v1, v6, v11, v12 = _mix(v1, v6, v11, v12, m[s[10]], m[s[11]])
            v2, v7, v8, v13 = _mix(v2, v7, v8, v13, m[s[12]], m[s[13]])
            v3, v4, v9, v14 = _mix(v3, v4, v9, v14, m[s[14]], m[s[15]])
        h[0] ^= v0 ^ v8
        h[1] ^= v1 ^ v9
        h[2] ^= v2 ^ v10
        h[3] ^= v3 ^ v11
        h[4] ^= v4 ^ v12
        h[5] ^= v5 ^ v13
        h[6] ^= v6 ^ v14
        h[7] ^= v7 ^ v15
        if last:
            return h[0]


@njit(inline="always")
def _digits(buf, at, x):
    """x (>= 0) in decimal into buf from `at`; returns the position after it."""
    n = 1
    y = x
    while y >= 10:
        y //= 10
        n += 1
    for i in range(n - 1, -1, -1):
        buf[at + i] = 48 + x % 10
        x //= 10
    return at + n


@njit(cache=True)
def _hashes(head, mid, src, dst, node, iv, sigma, out):
    """out[i]: the hash of the text head + "{src[i]}, {dst[i]}" + mid + "{node[i]})"."""
    buf = np.zeros((len(head) + len(mid) + 3 * 20 + 3) // 128 * 128 + 128, dtype=np.uint8)
    h = np.zeros(8, dtype=np.uint64)
    buf[:len(head)] = head
    for i in range(len(src)):
        at = _digits(buf, len(head), src[i])
        buf[at] = 44  # ", "
        buf[at + 1] = 32
        at = _digits(buf, at + 2, dst[i])
        buf[at:at + len(mid)] = mid
        at = _digits(buf, at + len(mid), node[i])
        buf[at] = 41  # ")"
        out[i] = _blake2b8(buf, at + 1, iv, sigma, h)

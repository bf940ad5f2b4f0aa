"""ECMP's flow hash: stable, and the batch form equal to the single one."""

import pytest


def test_batch_hashes_equal_the_single_hash():
    """The batch form hashes the very text `flow_hash` hashes: same values, for any key and seed."""
    from netsim.routing.hashing import flow_hash, flow_hashes

    for seed, key in [(0, ()), (7, ("all_reduce", 3, "chunk", 1.5)), (2**40, ("x", None, (1, 2)))]:
        src, dst, node = [0, 5, 123456], [9, 0, 7], [3, 3, 99]
        assert flow_hashes(seed, key, src, dst, node).tolist() == [flow_hash(seed, s, d, key, v)
                                                                   for s, d, v in zip(src, dst, node)]


def test_compiled_batch_hashes_are_blake2b_on_texts_of_every_length():
    """The batch form's compiled BLAKE2b against `hashlib`'s: texts of one 128-byte block and of several
    (long keys), at and around a block's end, non-ASCII keys, large ids; and negative ids (which it leaves
    to `hashlib`)."""
    import numpy as np

    from netsim.routing.hashing import flow_hash, flow_hashes

    rng = np.random.default_rng(3)
    lengths = set()
    for trial in range(400):
        n = int(rng.integers(1, 12))
        seed = int(rng.integers(0, 10 ** int(rng.integers(1, 19))))
        key = ("é" * int(rng.integers(0, 4)) + "k" * int(rng.integers(0, 300)), trial) if trial % 4 else (trial,)
        src = rng.integers(0, 10 ** int(rng.integers(1, 19)), n)
        dst, node = rng.integers(0, 10**6, n), rng.integers(0, 10**9, n)
        expected = [flow_hash(seed, s, d, key, v) for s, d, v in zip(src.tolist(), dst.tolist(), node.tolist())]
        assert flow_hashes(seed, key, src, dst, node).tolist() == expected, (seed, key)
        lengths.update(len(repr((seed, s, d, key, v)).encode()) for s, d, v in zip(src.tolist(), dst, node))
    for pad in range(400):  # and every length from ~30 bytes to 4 blocks
        key = ("k" * pad,)
        assert flow_hashes(5, key, [12], [345], [6]).tolist() == [flow_hash(5, 12, 345, key, 6)], pad
        lengths.add(len(repr((5, 12, 345, key, 6)).encode()))
    assert {127, 128, 129, 255, 256, 257, 383, 384, 385} <= lengths
    assert flow_hashes(1, ("k",), [-5, 2], [3, 4], [0, -1]).tolist() == [flow_hash(1, -5, 3, ("k",), 0),
                                                                          flow_hash(1, 2, 4, ("k",), -1)]
    for huge in (np.array([2**63 + 5, 3], dtype=np.uint64), [2**70, 3]):  # past int64: left to hashlib too
        assert flow_hashes(1, ("k",), huge, [1, 2], [0, 0]).tolist() == [
            flow_hash(1, int(huge[0]), 1, ("k",), 0), flow_hash(1, 3, 2, ("k",), 0)]
    with pytest.raises(ValueError, match="3, 1 and 1"):
        flow_hashes(1, ("k",), [1, 2, 3], [1], [1])

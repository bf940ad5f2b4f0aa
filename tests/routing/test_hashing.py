"""ECMP's flow hash: stable, and the batch form equal to the single one."""


def test_batch_hashes_equal_the_single_hash():
    """The batch form hashes the very text `flow_hash` hashes: same values, for any key and seed."""
    from netsim.routing.hashing import flow_hash, flow_hashes

    for seed, key in [(0, ()), (7, ("all_reduce", 3, "chunk", 1.5)), (2**40, ("x", None, (1, 2)))]:
        src, dst, node = [0, 5, 123456], [9, 0, 7], [3, 3, 99]
        assert flow_hashes(seed, key, src, dst, node).tolist() == [flow_hash(seed, s, d, key, v)
                                                                   for s, d, v in zip(src, dst, node)]

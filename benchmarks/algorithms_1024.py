"""Benchmark: 1 GB all-reduce on 1024 GPUs per algorithm: wall time and transfers per second.

Same fabric as ring_allreduce.py's 1024 case (32 leaves x 32 single-GPU hosts, 8 spines,
100 Gbps / 1 us cables), fluid model, ECMP. `ring_bidir` (both directions share each
single-GPU host's NIC and the chains drift apart, so nearly every transfer is its own event
with a fresh max-min computation) takes about a minute. Left out: `direct` (2 x 1024 x 1023
transfers at once, one max-min component of a million flows recomputed at every finish).
Each algorithm runs in its own process; the wall time includes the engine's one-time kernel
loading (~0.2 s). Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

ALGOS = {"ring": 1, "tree": 16, "halving_doubling": 1, "hierarchical": 1, "ring_bidir": 1}  # algo: chunks
SIZE = 10**9 - 10**9 % 1024


def run_one(algo: str) -> dict:
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from ring_allreduce import BW, CASES, LAT

    from netsim.collectives import Communicator
    from netsim.sim import Simulation
    from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

    leaves, hosts, spines = CASES[1024]
    t0 = time.perf_counter()
    spec = LeafSpineSpec(leaves=leaves, spines=spines, hosts_per_leaf=hosts, spine_bandwidth=BW, spine_latency=LAT,
                         host=HostSpec(nic_bandwidth=BW, nic_latency=LAT, pcie_bandwidth=64e9))
    topo = leaf_spine(spec)
    sim = Simulation(topo)
    comm = Communicator(sim, topo.gpus)
    results = sim.run(comm.all_reduce(SIZE, algo=algo, chunks=ALGOS[algo]))
    wall = time.perf_counter() - t0
    n = len(results.transfers)
    return {"algo": algo, "chunks": ALGOS[algo], "wall_s": wall, "transfers": n, "transfers_per_s": n / wall,
            "sim_ms": sim.now * 1e3, "busbw_GBps": SIZE / sim.now * 2 * 1023 / 1024 / 1e9}


def main() -> int:
    if len(sys.argv) == 2:
        print(json.dumps(run_one(sys.argv[1])))
        return 0
    print("1 GB all-reduce on 1024 GPUs per algorithm (leaf-spine, 100 Gbps / 1 us, fluid, ECMP)")
    print(f"{'algorithm':>17} {'chunks':>6} {'wall s':>8} {'transfers':>10} {'transfers/s':>12} {'sim ms':>9} "
          f"{'busbw GB/s':>10}")
    for algo in ALGOS:
        out = subprocess.run([sys.executable, __file__, algo], check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['algo']:>17} {r['chunks']:>6} {r['wall_s']:>8.2f} {r['transfers']:>10} "
              f"{r['transfers_per_s']:>12.0f} {r['sim_ms']:>9.2f} {r['busbw_GBps']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

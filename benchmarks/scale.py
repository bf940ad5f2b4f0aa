"""Benchmark: the engine at scale, 1,024 to 131,072 GPUs on rail-optimized fabrics of 8-GPU servers.

Fabric for N GPUs: N / 8 servers, one 400 Gb/s NIC per GPU, a rail-optimized two-tier leaf-spine (rail r's
NICs on rail r's leaves, at most 64 servers per leaf, as many spines as a leaf has servers: 1:1), NVLink
450 GB/s inside a server, 1 us per hop, fluid model, ECMP. Cases, each in its own process with a time limit
(so peak memory is the case's own):

  load        build the topology and route 1,000 random GPU pairs (what a fabric costs before any traffic)
  ring        1 GiB ring all-reduce, pipelined in 4 chunks
  rings       1 GiB all-reduce, one ring per NIC rail
  tree        1 GiB double binary tree, 16 chunks
  hd          1 GiB halving-doubling
  hier        1 GiB hierarchical all-reduce
  a2a         256 MiB direct all-to-all

Runs keep no per-transfer rows (`Simulation(transfers="drop")`: the scale of the engine, not of a results
table); `--transfers keep drop stream` runs each case each way, one line each, to show what the rows cost
(stream: written to a temporary folder as Parquet parts while the run goes).
Printed per case and size: wall seconds (whole process: import, build, route, run), peak memory (max RSS),
transfers and transfers per second, and the run alone (`sim.run`: routing, the simulation, the results)
with its transfers per second — or the refusal with netsim's own estimate (`--max-transfers`), or
"timeout" — and per case the growth exponent of time and memory between the two largest sizes that ran
(log-log slope). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/scale.py                          # every case, 1,024 .. 8,192 GPUs
    .venv/bin/python benchmarks/scale.py --max-gpus 131072 load   # the fabric alone, up to the limit
    .venv/bin/python benchmarks/scale.py --timeout 600 rings hier
    .venv/bin/python benchmarks/scale.py a2a --max-gpus 2048 --transfers keep drop stream
    .venv/bin/python benchmarks/scale.py rings hier --compress 16 --max-gpus 131072 --timeout 600

With `--compress M` the runs of identical steps (ring, rings, hierarchical) are simulated M steps each and
skipped by their period (`netsim.collectives.repeats`); the note gives the simulated time, the steps skipped
and whether the kept steps were periodic (else the time is an estimate: see validation/compression.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
CASES = {"load": None, "ring": ("all_reduce", 2**30, "ring", 4), "rings": ("all_reduce", 2**30, "rings", 1),
         "tree": ("all_reduce", 2**30, "tree", 16), "hd": ("all_reduce", 2**30, "halving_doubling", 1),
         "hier": ("all_reduce", 2**30, "hierarchical", 1), "a2a": ("all_to_all", 2**28, "direct", 1)}


def fabric(gpus: int):
    from netsim.topology.config import topology_from_dict

    servers = gpus // 8
    groups = max(1, math.ceil(servers / 64))  # leaves per rail
    per_leaf = servers // groups
    return topology_from_dict({
        "kind": "leaf_spine", "name": f"rail{gpus}", "leaves": 8 * groups, "spines": per_leaf,
        "hosts_per_leaf": per_leaf, "gpus_per_host": 8, "nics_per_host": 8, "rail_optimized": True,
        "host_bandwidth": "400Gbps", "spine_bandwidth": "400Gbps", "nvlink_bandwidth": "450GB/s",
        "host_latency": "1us", "spine_latency": "1us"})


def run_one(case: str, gpus: int, transfers: str = "drop", compress: int = 0, limit: int = 0) -> dict:
    t0 = time.perf_counter()
    from netsim.collectives import Communicator
    from netsim.errors import NetsimError
    from netsim.program.budget import check_budget, collective_transfers
    from netsim.sim import Simulation

    topo = fabric(gpus)
    out = {"case": case, "gpus": gpus}
    if case == "load":
        import numpy as np

        from netsim.topology import PathCache

        cache = PathCache(topo)
        rng = np.random.default_rng(0)
        pairs = rng.choice(topo.gpus, size=(1000, 2))
        hops = sum(len(cache.paths(int(a), int(b))[0]) for a, b in pairs if a != b)
        out.update(transfers=0, note=f"{hops} links on 1,000 routes")
    else:
        op, size, algo, chunks = CASES[case]
        folder = tempfile.TemporaryDirectory() if transfers == "stream" else None
        sim = Simulation(topo, record_links=False,
                         transfers=Path(folder.name) / "transfers" if folder else transfers, compress=compress)
        comm = Communicator(sim, topo.gpus)
        try:
            estimate = collective_transfers(comm, op, size, algo, chunks)
            check_budget(estimate, f"{case} on {gpus} GPUs", limit or None)
        except NetsimError as exc:
            out.update(refused=str(exc))
            return out | {"wall_s": time.perf_counter() - t0,
                          "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        t_run = time.perf_counter()
        sim.run(comm.run(op, size, algo=algo, chunks=chunks))
        out.update(transfers=sim.network.transfers_started, sim_ms=sim.now * 1e3, run_s=time.perf_counter() - t_run)
        notes = sim.meta.get("compressed", [])
        if notes:
            skipped = sum(x["steps"] - x["simulated"] for x in notes)
            out.update(note=f"sim {sim.now * 1e3:.3f} ms; {skipped:,} steps by period "
                            f"({'periodic' if all(x['periodic'] for x in notes) else 'not periodic: estimate'})")
    out.update(wall_s=time.perf_counter() - t0, peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", choices=[*CASES, []], default=None)
    parser.add_argument("--max-gpus", type=int, default=8192)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case and size (default 300)")
    parser.add_argument("--transfers", nargs="+", choices=["keep", "drop", "stream"], default=["drop"],
                        help="per-transfer rows: drop (default), keep or stream them; several: each case each way")
    parser.add_argument("--compress", type=int, default=0, metavar="M",
                        help="simulate M steps of each long run of identical steps, the rest by their period")
    parser.add_argument("--max-transfers", type=int, default=0, metavar="N",
                        help="refuse cases past N transfers (default: netsim's own limit)")
    parser.add_argument("--min-gpus", type=int, default=1024)
    parser.add_argument("--one", nargs=5, metavar=("CASE", "GPUS", "TRANSFERS", "COMPRESS", "LIMIT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.one[2], int(args.one[3]), int(args.one[4]))))
        return 0
    cases = args.cases or list(CASES)
    sizes = [n for n in SIZES if args.min_gpus <= n <= args.max_gpus]
    print(f"Scale: rail-optimized fabrics of 8-GPU servers, {sizes[0]:,}-{sizes[-1]:,} GPUs; per case and size: "
          f"wall s (whole process), peak MiB, transfers, transfers/s; the run alone (routing, simulation and "
          f"results; not the import, the fabric or the communicator): seconds and transfers/s; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    for case in cases:
        for mode in args.transfers:
            label = case if len(args.transfers) == 1 or case == "load" else f"{case} {mode}"
            done = []
            for n in sizes:
                try:
                    proc = subprocess.run([sys.executable, __file__, "--one", case, str(n), mode, str(args.compress),
                                           str(args.max_transfers)],
                                          capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{label:>5} {n:>7,} GPUs: timeout after {args.timeout:.0f} s", flush=True)
                    break
                if proc.returncode:
                    print(f"{label:>5} {n:>7,} GPUs: failed ({(proc.stderr.strip().splitlines() or ['?'])[-1]})",
                          flush=True)
                    break
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                if "refused" in r:
                    print(f"{label:>5} {n:>7,} GPUs: refused up front ({r['refused']})", flush=True)
                    break
                rate = f"{r['transfers'] / r['wall_s']:>10.0f}/s" if r["transfers"] else f"{'':>12}"
                if r["transfers"]:
                    rate += f"   run {r['run_s']:>7.2f} s {r['transfers'] / r['run_s']:>9.0f}/s"
                print(f"{label:>5} {n:>7,} GPUs: {r['wall_s']:>8.2f} s {r['peak_mib']:>8.0f} MiB "
                      f"{r['transfers']:>11,} {rate} {r.get('note', '')}", flush=True)
                done.append((n, r["wall_s"], r["peak_mib"]))
            if len(done) >= 2:
                (n1, t1, m1), (n2, t2, m2) = done[-2], done[-1]
                grow = math.log(n2 / n1)
                print(f"{label:>5} growth from {n1:,} to {n2:,} GPUs: time ~n^{math.log(t2 / t1) / grow:.2f}, "
                      f"memory ~n^{math.log(m2 / m1) / grow:.2f}", flush=True)
            if case == "load":
                break  # no transfers: the same either way
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: what flow classes save (`netsim.network.fluid_kernel._same_flow`: identical flows sent at one
instant are one flow of the kernel), each case run with classes and without in the same process.

Cases, on the rail-optimized fabrics of `benchmarks/scale.py` (8-GPU servers, 400 Gb/s NICs, NVLink inside):

  nccl-ring   all-reduce under NCCL's model (`Simulation(collectives="nccl")`): its channels send the same
              bytes between the same two GPUs at one instant (through NVLink inside a server)
  nccl-tree   the same, NCCL's tree
  gather      ideal ring all-gather of 1 GiB in 4 chunks (the chunks of a step leave together)

Printed per case: transfers, flows made (transfers less those that joined a class), flow rates computed
(`flows_rated`: what max-min cost), the compiled loop's seconds (`fluid_kernel.advance`, the best of 3) and
the run's (`sim.run`, best of 3) each way, the ratios, and whether the simulated end times agree (to 1e-9:
classes change only the order of floating-point sums). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/flow_classes.py
    .venv/bin/python benchmarks/flow_classes.py nccl-ring --gpus 512
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = {"nccl-ring": ("nccl", "all_reduce", 2**28, "ring", 1), "nccl-tree": ("nccl", "all_reduce", 2**28, "tree", 1),
         "gather": ("ideal", "all_gather", 2**30, "ring", 4)}


def measure(topo, case: str, classes: bool, repeats: int) -> dict:
    from netsim.collectives import Communicator
    from netsim.network import FluidNetwork
    from netsim.network import fluid_kernel as kernel
    from netsim.sim import Simulation

    model, op, size, algo, chunks = CASES[case]
    advance, spent = kernel.advance, [0.0]

    def timed(*args):
        t = time.perf_counter()
        try:
            return advance(*args)
        finally:
            spent[0] += time.perf_counter() - t

    FluidNetwork.flow_classes = classes
    kernel.advance = timed
    best = {"loop_s": float("inf"), "run_s": float("inf")}
    try:
        for _ in range(repeats):
            spent[0] = 0.0
            sim = Simulation(topo, record_links=False, transfers="drop", collectives=model)
            comm = Communicator(sim, topo.gpus)
            t = time.perf_counter()
            sim.run(comm.run(op, size, algo=algo, chunks=chunks))
            best["run_s"] = min(best["run_s"], time.perf_counter() - t)
            best["loop_s"] = min(best["loop_s"], spent[0])
    finally:
        kernel.advance = advance
        FluidNetwork.flow_classes = True
    net = sim.network
    return best | {"transfers": net.transfers_started, "flows": net.transfers_started - net.flows_joined,
                   "rated": net.flows_rated, "end": sim.now}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", choices=[*CASES, []], default=None)
    parser.add_argument("--gpus", type=int, default=256, help="GPUs (a multiple of 8; default 256)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from scale import fabric

    topo = fabric(args.gpus)
    measure(topo, "gather", True, 1)  # kernels loaded before anything is timed
    print(f"Flow classes on {args.gpus:,} GPUs (rail-optimized, 8 per server), best of {args.repeats}; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    for case in args.cases or list(CASES):
        on, off = measure(topo, case, True, args.repeats), measure(topo, case, False, args.repeats)
        agree = abs(on["end"] - off["end"]) <= 1e-9 * off["end"]
        print(f"{case:>9}: {on['transfers']:>10,} transfers | flows {off['flows']:>10,} -> {on['flows']:>10,} "
              f"| rated {off['rated']:>11,} -> {on['rated']:>11,} | loop {off['loop_s']:6.2f} -> {on['loop_s']:6.2f} s "
              f"({off['loop_s'] / on['loop_s']:.2f}x) | run {off['run_s']:6.2f} -> {on['run_s']:6.2f} s "
              f"({off['run_s'] / on['run_s']:.2f}x) | end times {'agree' if agree else 'DIFFER'} "
              f"({on['end'] * 1e3:.6f} ms)", flush=True)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

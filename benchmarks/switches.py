"""Benchmark: what the fluid engine's switches save, each case run with the switch on and off in the same
process.

Switches (class attributes of `netsim.network.FluidNetwork`, both on by default):

  flow_classes  identical flows sent at one instant are one flow of the kernel (`fluid_kernel._same_flow`)
  local_rates   a recomputation starts from what changed and takes in only the flows whose rates move
                (`fluid_kernel._local`); off, it follows the component through flows at or above the floor

Cases:

  nccl-ring   all-reduce under NCCL's model (`Simulation(collectives="nccl")`) on the rail-optimized fabrics
              of `benchmarks/scale.py` (8-GPU servers, 400 Gb/s NICs, NVLink inside; --gpus): its channels
              send the same bytes between the same two GPUs at one instant
  nccl-tree   the same, NCCL's tree
  gather      ideal ring all-gather of 1 GiB in 4 chunks on the rail fabric (a step's chunks leave together)
  tree        1 GB pipelined tree all-reduce (16 chunks) on `benchmarks/contention.py`'s oversubscribed
              fabric of 1,024 single-GPU hosts (32 leaves x 32, 8 spines, 100 Gb/s, ECMP)
  hd          1 GB halving-doubling all-reduce on that fabric

Printed per case: transfers, flows made (transfers less those that joined a class), flow rates computed
(`flows_rated`: what max-min cost), recomputations settled locally, the compiled loop's seconds
(`fluid_kernel.advance`, the best of 3) and the run's (`sim.run`, best of 3) each way, the ratios, and
whether the simulated end times agree to 1e-9 (the switches change only floating-point rounding). Where
they do not, the case is sensitive to rounding: ECMP runs on these fabrics whose flows end at nearly one
instant can take one event or two: the gather's end moved by 4e-4 when capacities were perturbed by 1e-15
with both switches on, and by 3e-5 to 7e-4 (1e-15, 1e-13) with local_rates off (validation/README, item 2). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/switches.py                              # flow classes, every case
    .venv/bin/python benchmarks/switches.py tree hd --switch local_rates
    .venv/bin/python benchmarks/switches.py nccl-ring --gpus 512
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# case: (fabric, collectives model, op, bytes, algorithm, chunks)
CASES = {"nccl-ring": ("rail", "nccl", "all_reduce", 2**28, "ring", 1),
         "nccl-tree": ("rail", "nccl", "all_reduce", 2**28, "tree", 1),
         "gather": ("rail", "ideal", "all_gather", 2**30, "ring", 4),
         "tree": ("contended", "ideal", "all_reduce", 10**9, "tree", 16),
         "hd": ("contended", "ideal", "all_reduce", 10**9, "halving_doubling", 1)}
SWITCHES = ("flow_classes", "local_rates")


def measure(topo, case: str, switch: str, on: bool, repeats: int) -> dict:
    from netsim.collectives import Communicator
    from netsim.network import FluidNetwork
    from netsim.network import fluid_kernel as kernel
    from netsim.sim import Simulation

    _, model, op, size, algo, chunks = CASES[case]
    size -= size % len(topo.gpus)
    advance, spent = kernel.advance, [0.0]

    def timed(*args):
        t = time.perf_counter()
        try:
            return advance(*args)
        finally:
            spent[0] += time.perf_counter() - t

    setattr(FluidNetwork, switch, on)
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
        setattr(FluidNetwork, switch, True)
    net = sim.network
    return best | {"transfers": net.transfers_started, "flows": net.transfers_started - net.flows_joined,
                   "rated": net.flows_rated, "settled": net.settled_locally, "rates": net.rate_computations,
                   "end": sim.now}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", choices=[*CASES, []], default=None)
    parser.add_argument("--switch", choices=SWITCHES, default="flow_classes", help="default: flow_classes")
    parser.add_argument("--gpus", type=int, default=256, help="GPUs of the rail fabric (a multiple of 8; default 256)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from contention import _fabric
    from scale import fabric

    fabrics = {"rail": fabric(args.gpus), "contended": _fabric(32, 32, 8)}
    measure(fabrics["rail"], "gather", args.switch, True, 1)  # kernels loaded before anything is timed
    print(f"{args.switch} on and off: rail fabric of {args.gpus:,} GPUs (8 per server), contended fabric of 1,024; "
          f"best of {args.repeats}; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs", flush=True)
    for case in args.cases or list(CASES):
        topo = fabrics[CASES[case][0]]
        on = measure(topo, case, args.switch, True, args.repeats)
        off = measure(topo, case, args.switch, False, args.repeats)
        gap = abs(on["end"] - off["end"]) / off["end"]
        print(f"{case:>9}: {on['transfers']:>10,} transfers | flows {off['flows']:>10,} -> {on['flows']:>10,} "
              f"| rated {off['rated']:>11,} -> {on['rated']:>11,} | settled locally {on['settled']:>7,} of "
              f"{on['rates']:>7,} | loop {off['loop_s']:6.2f} -> {on['loop_s']:6.2f} s "
              f"({off['loop_s'] / on['loop_s']:.2f}x) | run {off['run_s']:6.2f} -> {on['run_s']:6.2f} s "
              f"({off['run_s'] / on['run_s']:.2f}x) | end times {'agree' if gap <= 1e-9 else f'differ by {gap:.1e}'} "
              f"({on['end'] * 1e3:.6f} ms)", flush=True)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

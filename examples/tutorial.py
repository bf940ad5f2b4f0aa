"""netsim in ten minutes, from Python: a fabric, collectives, what-if questions, a program, a trace.

Run it as `python examples/tutorial.py` (the test suite runs it too). Every step prints what it found.
"""

import netsim

# 1. A fabric: a shipped topology by name (netsim topo list), or a YAML file, or any graph.
topo = netsim.load_topology("rail64")
print(topo)

# 2. One collective: a Simulation, a Communicator of ranks on GPUs, a call; sizes as unit strings.
sim = netsim.Simulation(topo, routing="ecmp", record_links=False)
comm = netsim.Communicator(sim, topo.gpus)
results = sim.run(comm.all_reduce("1GiB", algo="rings"))
row = results.summary().row(0, named=True)
print(f"1 GiB all-reduce, NCCL-like rings, ECMP: {row['time_s'] * 1e3:.2f} ms, busbw {row['busbw_Bps'] / 1e9:.1f} GB/s")

# 3. What if: the same call under ideal packet spraying, and as one flat ring.
for routing, algo in (("spray", "rings"), ("ecmp", "ring")):
    sim = netsim.Simulation(topo, routing=routing, record_links=False)
    comm = netsim.Communicator(sim, topo.gpus)
    t = sim.run(comm.all_reduce("1GiB", algo=algo)).summary()["time_s"][0]
    print(f"  {algo:5} under {routing:5}: {t * 1e3:.2f} ms")

# 4. Collectives one after another, without writing SimPy.
sim = netsim.Simulation(topo, record_links=False)
comm = netsim.Communicator(sim, topo.gpus[:8])  # one server's GPUs
ends = netsim.run_sequence(sim, [(comm, "reduce_scatter", "256MiB"), (comm, "all_gather", "256MiB")])
print("reduce-scatter then all-gather inside a server end at", ", ".join(f"{t * 1e3:.3f} ms" for t in ends))

# 5. A program: per-rank compute and communication with dependencies, run by the one executor.
program = netsim.Program(
    nodes={r: (netsim.Node(r, 0, "compute", duration=1e-3),
               netsim.Node(r, 1, "collective", op="all_reduce", nbytes=64 << 20, group="dp", deps=(0,)))
           for r in range(4)},
    groups={"dp": (0, 1, 2, 3)})
sim = netsim.Simulation(topo, record_links=False)
run = netsim.run_program(sim, program, {r: int(topo.gpus[8 * r]) for r in range(4)})  # one GPU per server
sim.run(run.done)
print(f"program: 1 ms of compute, then a 64 MiB all-reduce across 4 servers: {run.result().time_s * 1e3:.3f} ms")

"""Timing one collective call on a fresh simulation: what benchmarks, validation and tests all need."""

from __future__ import annotations

import numpy as np

from netsim.collectives.communicator import Communicator
from netsim.network import NetworkOptions
from netsim.sim import Results, Simulation
from netsim.topology import Topology


def time_collective(topology: Topology, op: str, nbytes: int, *, algo: str = "auto", chunks: int = 1,
                    root: int = 0, nodes: np.ndarray | None = None, network: str = "fluid", routing: str = "ecmp",
                    seed: int = 0, options: NetworkOptions | None = None, record_links: bool = True
                    ) -> tuple[float, Results]:
    """Run `op` once on `nodes` (default: every GPU) starting at t = 0; (its duration, the results)."""
    sim = Simulation(topology, network=network, routing=routing, seed=seed, options=options,
                     record_links=record_links)
    comm = Communicator(sim, topology.gpus if nodes is None else nodes)
    done = comm.run(op, nbytes, algo=algo, chunks=chunks, root=root)
    results = sim.run(done)
    return done.value, results

"""netsim: a network-level communication simulator for distributed ML training.

The public Python API, imported from `netsim` (each name loads its module on first use, so `import
netsim` costs nothing)::

    >>> import netsim
    >>> topo = netsim.load_topology("rail64")           # a shipped topology by name, or a YAML file
    >>> sim = netsim.Simulation(topo, record_links=False)
    >>> comm = netsim.Communicator(sim, topo.gpus[:16])  # ranks 0..15 on the first 16 GPUs
    >>> results = sim.run(comm.all_reduce("256MiB", algo="ring"))
    >>> row = results.summary().row(0, named=True)
    >>> row["op"], round(row["time_s"] * 1e3, 3)
    ('all_reduce', 10.115)

Collectives in sequence, without writing SimPy: `run_sequence` starts each when the one before has ended.

    >>> sim = netsim.Simulation(topo, record_links=False)
    >>> comm = netsim.Communicator(sim, topo.gpus[:8])
    >>> ends = netsim.run_sequence(sim, [(comm, "all_reduce", "64MiB"), (comm, "all_gather", "8MiB")])
    >>> [round(t * 1e6, 1) for t in ends]
    [261.0, 277.3]

Names: `load_topology`, `topology_from_dict`, `Topology`, `Simulation`, `Results`, `Communicator`, `OPS`,
`run_sequence`, `Program`, `Node`, `run_program`, `load_trace`, `replay`, `scenario_from_dict`, `simulate`,
`simulate_attention`, `train` (needs the ``train`` extra).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {  # name -> the module that defines it
    "load_topology": "netsim.topology", "topology_from_dict": "netsim.topology", "Topology": "netsim.topology",
    "Simulation": "netsim.sim", "Results": "netsim.sim", "Communicator": "netsim.collectives",
    "OPS": "netsim.collectives", "run_sequence": "netsim.collectives.sequence", "Program": "netsim.program",
    "Node": "netsim.program", "run_program": "netsim.program", "load_trace": "netsim.traces",
    "replay": "netsim.traces.replay", "scenario_from_dict": "netsim.scenario",
    "simulate": "netsim.scenario", "simulate_attention": "netsim.scenario.attention",
    "train": "netsim.training.coupled",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'netsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)

"""Turn a `Scenario` into simulations (one per routing policy) and collect their `Results`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.scenario.config import Scenario
from netsim.sim import Results, Simulation
from netsim.topology import Topology


def resolve_ranks(topo: Topology, ranks: object) -> np.ndarray:
    """GPU node ids for a workload's `ranks`: 'all', a count (the first N GPUs), or GPU indices / node names."""
    gpus = topo.gpus
    if ranks == "all":
        return gpus.copy()
    if isinstance(ranks, int):
        if ranks > len(gpus):
            raise ConfigError(f"asks for {ranks} ranks but the topology has {len(gpus)} GPUs")
        return gpus[:ranks].copy()
    nodes = []
    for r in ranks:
        if isinstance(r, int):
            if not 0 <= r < len(gpus):
                raise ConfigError(f"GPU index {r} out of range (the topology has {len(gpus)} GPUs)")
            nodes.append(int(gpus[r]))
        else:
            if r not in topo.index:
                raise ConfigError(f"unknown host/GPU {r!r}")
            v = topo.index[r]
            if topo.node_kind[v] != "gpu":
                raise ConfigError(f"{r!r} is a {topo.node_kind[v]}, not a GPU")
            nodes.append(v)
    if len(set(nodes)) != len(nodes):
        raise ConfigError("a GPU is listed twice")
    return np.asarray(nodes, dtype=np.int64)


def simulate(scenario: Scenario, policy: str) -> Results:
    """Run the scenario's workload under one routing policy."""
    cfg = scenario.config
    sim = Simulation(scenario.topology, network=cfg.network.model, routing=policy, seed=cfg.seed,
                     options=cfg.network.options())
    comms: dict[tuple, Communicator] = {}

    def program():
        for i, item in enumerate(cfg.workload):
            nodes = resolve_ranks(scenario.topology, item.ranks)
            comm = comms.get(tuple(nodes.tolist()))
            if comm is None:
                comm = comms[tuple(nodes.tolist())] = Communicator(sim, nodes, name=f"comm{len(comms)}")
            label = item.label or f"{i}:{item.op}"
            for _ in range(item.repeat):
                if item.op == "send_recv":
                    yield comm.send(0, 1, item.size, chunks=item.chunks, label=label)
                else:
                    yield comm.run(item.op, item.size, algo=item.algorithm(), chunks=item.chunks, root=item.root,
                                   label=label)

    sim.process(program())
    results = sim.run()
    results.meta.update(scenario=cfg.name, transfers=sim.network.transfers_started)
    return results


def run_scenario(scenario: Scenario, progress: Callable[[str], None] | None = None) -> Results:
    """One simulation per routing policy; frames stacked with a `variant` column (the policy)."""
    runs = {}
    for policy in scenario.config.routing:
        if progress:
            progress(policy)
        runs[policy] = simulate(scenario, policy)
    results = Results.concat(runs)
    results.meta.update(scenario=scenario.name, topology=scenario.topology.name, seed=scenario.config.seed)
    return results

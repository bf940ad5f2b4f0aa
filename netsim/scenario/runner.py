"""Turn a `Scenario` into simulations (one per routing policy) and collect their `Results`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from netsim.collectives import Communicator, ParallelSpec, parallel_groups
from netsim.errors import ConfigError
from netsim.scenario.config import CollectiveItem, Scenario
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


def item_groups(scenario: Scenario, item: CollectiveItem) -> list[np.ndarray]:
    """The GPU groups one workload item runs on: its `ranks`, or every group of kind `group`."""
    if item.group is None:
        return [resolve_ranks(scenario.topology, item.ranks)]
    par = scenario.config.parallel
    if par is None:
        raise ConfigError("'group' needs a 'parallel' section (e.g. parallel: {tp: 8, dp: 4})")
    if item.ranks != "all":
        raise ConfigError("give either 'ranks' or 'group', not both")
    spec = ParallelSpec(tp=par.tp, cp=par.cp, ep=par.ep, dp=par.dp, pp=par.pp)
    return parallel_groups(scenario.topology, spec)[item.group]


def simulate(scenario: Scenario, policy: str) -> Results:
    """Run the scenario's workload under one routing policy."""
    cfg = scenario.config
    sim = Simulation(scenario.topology, network=cfg.network.model, routing=policy, seed=cfg.seed,
                     options=cfg.network.options())
    comms: dict[tuple, Communicator] = {}

    def communicator(nodes: np.ndarray) -> Communicator:
        key = tuple(nodes.tolist())
        if key not in comms:
            comms[key] = Communicator(sim, nodes, name=f"comm{len(comms)}")
        return comms[key]

    def call(comm: Communicator, item: CollectiveItem, label: str):
        if item.op == "send_recv":
            return comm.send(0, 1, item.size, chunks=item.chunks, label=label)
        return comm.run(item.op, item.size, algo=item.algorithm(), chunks=item.chunks, root=item.root, label=label)

    def program():
        for i, item in enumerate(cfg.workload):
            group_comms = [communicator(nodes) for nodes in item_groups(scenario, item)]
            label = item.label or f"{i}:{item.op}" + (f"@{item.group}" if item.group else "")
            for _ in range(item.repeat):  # every group at once; the next call when all have finished
                yield sim.env.all_of([call(comm, item, label) for comm in group_comms])

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

"""Turn a `Scenario` into simulations (one per routing policy) and collect their `Results`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from netsim.collectives import Communicator, ParallelSpec, parallel_groups
from netsim.errors import ConfigError, TopologyError
from netsim.program import Node, Program, run_program
from netsim.scenario.config import CollectiveItem, JobConfig, Scenario
from netsim.sim import Results, Simulation
from netsim.topology import Topology
from netsim.units import format_time


def resolve_ranks(topo: Topology, ranks: object, gpus: np.ndarray | None = None) -> np.ndarray:
    """GPU node ids for a workload's `ranks` among the job's `gpus` (default: all): 'all', a count (the
    first N), or job-local GPU indices / GPU node names."""
    gpus = topo.gpus if gpus is None else gpus
    if ranks == "all":
        return gpus.copy()
    if isinstance(ranks, int):
        if ranks > len(gpus):
            raise ConfigError(f"asks for {ranks} ranks but there are {len(gpus)} GPUs")
        return gpus[:ranks].copy()
    nodes = []
    members = set(gpus.tolist())
    for r in ranks:
        if isinstance(r, int):
            if not 0 <= r < len(gpus):
                raise ConfigError(f"GPU index {r} out of range (there are {len(gpus)} GPUs)")
            nodes.append(int(gpus[r]))
        else:
            if r not in topo.index:
                raise ConfigError(f"unknown host/GPU {r!r}")
            v = topo.index[r]
            if topo.node_kind[v] != "gpu":
                raise ConfigError(f"{r!r} is a {topo.node_kind[v]}, not a GPU")
            if v not in members:
                raise ConfigError(f"GPU {r!r} is not one of this job's GPUs")
            nodes.append(v)
    if len(set(nodes)) != len(nodes):
        raise ConfigError("a GPU is listed twice")
    return np.asarray(nodes, dtype=np.int64)


def place_jobs(topo: Topology, jobs: list[JobConfig], seed: int) -> list[np.ndarray]:
    """GPUs of each job, taken in order from the GPUs still free.

    contiguous: the next free GPUs in topology order; random: a uniform sample of the free
    GPUs (seeded), kept in topology order; fragmented: the free GPUs dealt out leaf by leaf
    (one per leaf in turn), so the job spreads over every leaf it can.
    """
    rng = np.random.default_rng([seed, 0x706C616365])  # its own stream: placement never shifts other draws
    free = topo.gpus.copy()
    leaf = topo.attrs["leaf"]
    placed = []
    for i, job in enumerate(jobs):
        count = len(free) if job.gpus == "all" else job.gpus
        if count > len(free):
            raise ConfigError(f"job {job.name!r} asks for {count} GPUs but only {len(free)} are free",
                              field=f"jobs.{i}.gpus")
        if job.placement == "contiguous":
            chosen = free[:count]
        elif job.placement == "random":
            chosen = np.sort(rng.choice(free, size=count, replace=False))
        else:
            leaves = leaf[free]
            position = np.zeros(len(free), dtype=np.int64)
            for value in np.unique(leaves):
                members = np.flatnonzero(leaves == value)
                position[members] = np.arange(len(members))
            chosen = free[np.lexsort((leaves, position))][:count]
        placed.append(np.asarray(chosen, dtype=np.int64))
        free = np.setdiff1d(free, chosen, assume_unique=True)
        free = topo.gpus[np.isin(topo.gpus, free)]  # keep topology order
    return placed


def item_groups(scenario: Scenario, job: JobConfig, gpus: np.ndarray, item: CollectiveItem) -> list[np.ndarray]:
    """The GPU groups one workload item runs on: its `ranks`, or every group of kind `group`."""
    if item.group is None:
        return [resolve_ranks(scenario.topology, item.ranks, gpus)]
    par = job.parallel
    if par is None:
        raise ConfigError("'group' needs a 'parallel' section (e.g. parallel: {tp: 8, dp: 4})")
    if item.ranks != "all":
        raise ConfigError("give either 'ranks' or 'group', not both")
    spec = ParallelSpec(tp=par.tp, cp=par.cp, ep=par.ep, dp=par.dp, pp=par.pp)
    return parallel_groups(gpus, spec)[item.group]


class _ItemCall:
    """One workload item on one group, as the program executor's engine for that group: the job's communicator
    for those GPUs runs the call (lowered when it starts) with the item's algorithm, chunks and root. A
    communicator is made at its first call, named ``comm0``, ``comm1``... in the order calls start (its name is
    part of the route key its transfers hash by)."""

    def __init__(self, sim: Simulation, comms: dict, job: str, nodes: np.ndarray, item: CollectiveItem):
        self.sim, self.comms, self.job, self.nodes, self.item = sim, comms, job, nodes, item

    def run(self, op: str, nbytes: int, *, algo: str, label: str):
        key = (self.job, tuple(self.nodes.tolist()))
        if key not in self.comms:
            self.comms[key] = Communicator(self.sim, self.nodes, name=f"comm{len(self.comms)}", job=self.job)
        comm, item = self.comms[key], self.item
        if item.op == "send_recv":
            return comm.send(0, 1, item.size, chunks=item.chunks, label=label)
        return comm.run(item.op, item.size, algo=item.algorithm(), chunks=item.chunks, root=item.root, label=label)


def scenario_program(scenario: Scenario, jobs: list[JobConfig], placements: list[np.ndarray], sim: Simulation
                     ) -> tuple[Program, dict[str, _ItemCall], dict[int, int]]:
    """The jobs' workloads as one `Program` (rank r on GPU `gpu_of[r]`, each job's GPUs in placement order),
    with the engine that runs each item's calls: per rank, the job's start as compute, then per item and
    repetition the call of the item's group that holds the rank, then an empty call of every rank of the job
    (the next call starts when all of the job's groups have finished); one communicator per job and GPU list
    (see `_ItemCall`)."""
    comms: dict[tuple, Communicator] = {}
    rank_of: dict[int, int] = {}
    nodes: dict[int, list[Node]] = {}
    groups: dict[str, tuple[int, ...]] = {}
    engines: dict[str, _ItemCall] = {}

    def add(rank: int, **kw) -> None:
        out = nodes[rank]
        out.append(Node(rank, len(out), deps=(len(out) - 1,) if out else (), **kw))

    for job, gpus in zip(jobs, placements):
        ranks = []
        for g in gpus.tolist():
            rank_of[g] = len(rank_of)
            nodes[rank_of[g]] = []
            ranks.append(rank_of[g])
        everyone = f"{job.name}/all"
        groups[everyone] = tuple(ranks)
        if job.start > 0:
            for r in ranks:
                add(r, kind="compute", name="start", duration=float(job.start))
        for i, item in enumerate(job.workload):
            label = item.label or f"{i}:{item.op}" + (f"@{item.group}" if item.group else "")
            parts = []
            for gi, members in enumerate(item_groups(scenario, job, gpus, item)):
                name = f"{job.name}/{i}/{gi}"
                groups[name] = tuple(rank_of[g] for g in members.tolist())
                engines[name] = _ItemCall(sim, comms, job.name, members, item)
                parts.append((name, groups[name]))
            for _ in range(item.repeat):
                for name, members in parts:
                    for r in members:
                        add(r, kind="collective", name=label, op=item.op, nbytes=int(item.size), group=name,
                            algo=item.algorithm())
                for r in ranks:
                    add(r, kind="collective", name="", op="all_reduce", nbytes=0, group=everyone)
    program = Program({r: tuple(v) for r, v in nodes.items()}, groups, source=scenario.source or scenario.name)
    return program, engines, {r: g for g, r in rank_of.items()}


def simulate(scenario: Scenario, policy: str, only: str | None = None, network: str | None = None,
             record_steps: bool = False, transfers: str = "keep") -> Results:
    """Run the scenario under one routing policy (`only`: just that job, on its own placement;
    `network`: another network model than the scenario's; `record_steps`: per-step link loads;
    `transfers`: keep or drop the per-transfer rows, `Simulation`'s `transfers`)."""
    cfg = scenario.config
    sim = Simulation(scenario.topology, **{**cfg.network.simulation(), "network": network or cfg.network.model},
                     routing=policy, seed=cfg.seed, record_steps=record_steps, transfers=transfers)
    jobs = cfg.job_list()
    placements = place_jobs(scenario.topology, jobs, cfg.seed)
    chosen = [(job, gpus) for job, gpus in zip(jobs, placements) if only is None or job.name == only]
    program, engines, gpu_of = scenario_program(scenario, [j for j, _ in chosen], [g for _, g in chosen], sim)
    for fault in cfg.faults:
        sim.schedule_fault(fault.at, scenario.topology.links_named(fault.link), fault.kind, fault.factor)
    try:
        run = run_program(sim, program, gpu_of, external=engines, order="recorded")
        results = sim.run(run.done)  # ends with the last job: a fault scheduled later never happens
    except TopologyError as exc:  # a fault left some pair without a working path
        hit = [i for i, f in enumerate(cfg.faults) if f.at <= sim.now]
        if not hit:
            raise
        i = hit[-1]
        raise ConfigError(f"at {format_time(sim.now)}, after fault {cfg.faults[i].kind} of "
                          f"{cfg.faults[i].link}: {exc.detail}", source=scenario.source, field=f"faults.{i}") from None
    results.meta.update(scenario=cfg.name, transfers=sim.network.transfers_started,
                        placement={job.name: scenario.topology.node_names[int(g[0])] + f" +{len(g) - 1}"
                                   for job, g in zip(jobs, placements)})
    return results


def export_program(scenario: Scenario) -> Program:
    """The scenario's jobs as one program (global ranks, a process group per job item's communicator), as
    `simulate` runs it: what `netsim run -o` writes as Chakra ET."""
    cfg = scenario.config
    sim = Simulation(scenario.topology, **cfg.network.simulation(), routing=cfg.routing[0], seed=cfg.seed,
                     record_links=False)
    jobs = cfg.job_list()
    program, _, _ = scenario_program(scenario, jobs, place_jobs(scenario.topology, jobs, cfg.seed), sim)
    return program


def run_scenario(scenario: Scenario, progress: Callable[[str], None] | None = None, transfers: str = "keep"
                 ) -> Results:
    """One simulation per routing policy; frames stacked with a `variant` column (the policy)."""
    runs = {}
    for policy in scenario.config.routing:
        if progress:
            progress(policy)
        runs[policy] = simulate(scenario, policy, transfers=transfers)
    results = Results.concat(runs)
    results.meta.update(scenario=scenario.name, topology=scenario.topology.name, seed=scenario.config.seed)
    return results

"""A scenario's work estimate (`netsim.program.budget` has the rules and the ceiling), checked before it
runs."""

from __future__ import annotations

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.program.budget import MAX_TRANSFERS, call_work, check_budget, check_flows_at_once, collective_transfers
from netsim.scenario.config import Scenario
from netsim.scenario.runner import item_groups, place_jobs
from netsim.sim import Simulation


def scenario_transfers(scenario: Scenario, at_once: bool = True) -> int:
    """Transfers a scenario creates over all its routing variants (faults and C4P re-plans aside). With
    `at_once`, a scenario that starts more than `MAX_FLOWS_AT_ONCE` transfers at one instant (its jobs' largest
    items together) is refused."""
    cfg = scenario.config
    sim = Simulation(scenario.topology, **cfg.network.simulation(), seed=cfg.seed, record_links=False)
    total = peak = 0
    for j, (job, gpus) in enumerate(zip(cfg.job_list(), place_jobs(scenario.topology, cfg.job_list(), cfg.seed))):
        where = f"jobs.{j}.workload" if cfg.jobs else "workload"
        largest = 0  # a job's items run one after another, its groups (and the jobs) at once
        for i, item in enumerate(job.workload):
            started = 0
            for nodes in item_groups(scenario, job, gpus, item):
                comm = Communicator(sim, nodes, name=f"{where}.{i}")
                try:  # counting is where an algorithm refuses a group it cannot serve
                    calls, together = call_work(comm, item.op, item.size, item.algorithm(), item.chunks, item.root)
                except ConfigError as exc:
                    raise ConfigError(exc.detail, source=scenario.source,
                                      field=f"{where}.{i}.{exc.field or 'algo'}") from None
                total += item.repeat * calls
                started += together
            largest = max(largest, started)
        peak += largest
    if at_once:
        check_flows_at_once(peak, f"scenario {scenario.name!r}", source=scenario.source)
    return total * len(cfg.routing)


__all__ = ["MAX_TRANSFERS", "check_budget", "collective_transfers", "scenario_transfers"]

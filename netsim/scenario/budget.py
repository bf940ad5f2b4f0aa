"""Work estimates: refuse, before it starts, a command that would create more transfers than a
laptop run should (a million-size sweep, 1e8 pipelined chunks), with the estimate in the message.

The estimate is exact for collectives: an algorithm's schedule is built once with one chunk and its
transfers counted; pipelined chunks copy every transfer once per chunk. The ceiling `MAX_TRANSFERS`
(5 million transfers: a few minutes of fluid simulation) is lifted with `--max-transfers N`.
"""

from __future__ import annotations

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.scenario.config import Scenario
from netsim.scenario.runner import item_groups, place_jobs
from netsim.sim import Simulation

MAX_TRANSFERS = 5_000_000


def collective_transfers(comm: Communicator, op: str, nbytes: int, algo: str = "auto", chunks: int = 1,
                         root: int = 0) -> int:
    """Transfers one call of `op` on `comm` creates (`auto` resolved as the run would)."""
    if op == "send_recv":
        return chunks
    chosen, used_chunks, _ = comm.resolve(op, nbytes, algo, chunks, root)
    schedule = comm.schedule(op, nbytes, chosen, 1, root)
    return sum(len(step.src) for step in schedule.steps) * used_chunks


def check_budget(estimate: int, what: str, limit: int | None, *, source: str | None = None,
                 field: str = "--max-transfers") -> None:
    """Refuse work estimated at more than `limit` transfers (None: the default ceiling)."""
    limit = MAX_TRANSFERS if limit is None else limit
    if estimate > limit:
        raise ConfigError(f"{what} would create about {estimate:,} transfers, more than the limit of {limit:,}; "
                          f"lower it, or raise the limit with --max-transfers {estimate}", source=source, field=field)


def scenario_transfers(scenario: Scenario) -> int:
    """Transfers a scenario creates over all its routing variants (faults and C4P re-plans aside)."""
    cfg = scenario.config
    sim = Simulation(scenario.topology, network=cfg.network.model, seed=cfg.seed, options=cfg.network.options(),
                     record_links=False)
    total = 0
    for j, (job, gpus) in enumerate(zip(cfg.job_list(), place_jobs(scenario.topology, cfg.job_list(), cfg.seed))):
        where = f"jobs.{j}.workload" if cfg.jobs else "workload"
        for i, item in enumerate(job.workload):
            for nodes in item_groups(scenario, job, gpus, item):
                comm = Communicator(sim, nodes, name=f"{where}.{i}")
                try:  # building the schedule is where an algorithm refuses a group it cannot serve
                    calls = collective_transfers(comm, item.op, item.size, item.algorithm(), item.chunks, item.root)
                except ConfigError as exc:
                    raise ConfigError(exc.detail, source=scenario.source,
                                      field=f"{where}.{i}.{exc.field or 'algo'}") from None
                total += item.repeat * calls
    return total * len(cfg.routing)

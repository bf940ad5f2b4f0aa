"""Reading scenario files: validation, topology building and workload checks, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from netsim.collectives import ParallelSpec, algorithms
from netsim.config import read_yaml, validated
from netsim.errors import ConfigError
from netsim.scenario.config import Scenario, ScenarioConfig
from netsim.scenario.runner import item_groups, place_jobs
from netsim.routing import make_policy
from netsim.topology import PathCache, topology_from_dict
from netsim.topology.config import find_topology, shipped_topologies


def topology_of(value: str | dict, source: str, base: Path | None):
    """A scenario's `topology`: a file (relative to the scenario's folder, then the working one), the name of a
    shipped topology (``rail64``), or inline."""
    if not isinstance(value, str):
        return topology_from_dict(value, source=source, field="topology")
    found = find_topology(value, base)
    if found is None:
        path = Path(value)
        candidates = [path] if path.is_absolute() else [(base or Path.cwd()) / path, Path.cwd() / path]
        other = next((c for c in candidates if c.exists()), None)
        why = (f"is not a file ({other})" if other is not None else
               f"not found, and not the name of a shipped topology ({', '.join(shipped_topologies())})")
        raise ConfigError(f"topology file {value!r} {why}", source=source, field="topology")
    return topology_from_dict(read_yaml(found), source=str(found))


def scenario_from_dict(data: object, *, source: str, base: Path | None = None) -> Scenario:
    config = validated(ScenarioConfig, data, source)
    topology = topology_of(config.topology, source, base)
    scenario = Scenario(config, topology, source)
    _check_workload(scenario)
    return scenario


def _check_workload(scenario: Scenario) -> None:
    cfg, source = scenario.config, scenario.source
    if bool(cfg.workload) == bool(cfg.jobs):
        raise ConfigError("give either a 'workload' or a list of 'jobs' (one of the two)", source=source,
                          field="workload")
    if cfg.jobs and cfg.parallel is not None:
        raise ConfigError("with 'jobs', give 'parallel' inside each job", source=source, field="parallel")
    for i, fault in enumerate(cfg.faults):
        try:
            scenario.topology.links_named(fault.link)
        except ConfigError as exc:
            raise ConfigError(exc.detail, source=source, field=f"faults.{i}.link") from None
    try:
        cfg.network.options()
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=source, field=exc.field) from None
    for policy in cfg.routing:
        try:
            make_policy(policy, scenario.topology, PathCache(scenario.topology), cfg.seed)
        except ConfigError as exc:
            raise ConfigError(exc.detail, source=source, field="routing") from None
    names = [job.name for job in cfg.jobs]
    if len(set(names)) != len(names):
        raise ConfigError("two jobs share a name", source=source, field="jobs")
    try:
        placements = place_jobs(scenario.topology, cfg.job_list(), cfg.seed)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=source, field=exc.field) from None
    for j, (job, gpus) in enumerate(zip(cfg.job_list(), placements)):
        where = f"jobs.{j}.workload" if cfg.jobs else "workload"
        if job.parallel is not None:  # checked whether or not an item uses `group:`
            try:
                spec = ParallelSpec(**job.parallel.model_dump())
            except ConfigError as exc:
                raise ConfigError(exc.detail, source=source, field=(f"jobs.{j}." if cfg.jobs else "") + exc.field) \
                    from None
            if spec.world > len(gpus):
                raise ConfigError(f"tp x cp x dp x pp = {spec.world} ranks, but the job has {len(gpus)} GPUs",
                                  source=source, field=(f"jobs.{j}." if cfg.jobs else "") + "parallel")
        for i, item in enumerate(job.workload):
            try:
                groups = item_groups(scenario, job, gpus, item)
            except ConfigError as exc:
                field = f"{where}.{i}.group" if item.group is not None else f"{where}.{i}.ranks"
                if exc.field and exc.field.startswith("parallel"):
                    field = (f"jobs.{j}." if cfg.jobs else "") + exc.field
                raise ConfigError(exc.detail, source=source, field=field) from None
            _check_item(item, groups, source, f"{where}.{i}")
            if item.op == "send_recv" and len(groups[0]) != 2:
                raise ConfigError(f"send_recv needs exactly 2 ranks, got {len(groups[0])}", source=source,
                                  field=f"{where}.{i}.ranks")
            if item.op != "send_recv" and item.algorithm() not in algorithms(item.op):
                raise ConfigError(f"no algorithm {item.algorithm()!r} for {item.op} (known: "
                                  f"{', '.join(algorithms(item.op))})", source=source, field=f"{where}.{i}.algo")


def _check_item(item, groups: list, source: str, where: str) -> None:
    """What pydantic cannot see alone: sizes against the groups they run on."""
    if not groups or any(len(g) == 0 for g in groups):
        raise ConfigError("expected at least one rank, got none", source=source, field=f"{where}.ranks")
    smallest = min(len(g) for g in groups)  # a 1-rank group is allowed: it moves nothing and takes no time
    if item.op in ("broadcast", "reduce") and item.root >= smallest:
        raise ConfigError(f"root {item.root} is outside a group of {smallest} ranks", source=source,
                          field=f"{where}.root")
    if item.chunks > max(item.size, 1):
        raise ConfigError(f"{item.chunks} chunks for {item.size} bytes: a chunk must hold at least one byte",
                          source=source, field=f"{where}.chunks")


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    return scenario_from_dict(read_yaml(p), source=str(path), base=p.parent)


def default_scenario() -> Scenario:
    """The built-in scenario that `netsim run` uses with no argument."""
    path = Path(__file__).resolve().parent.parent / "data" / "default_scenario.yaml"
    return scenario_from_dict(read_yaml(path), source="<built-in default>")

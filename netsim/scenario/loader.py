"""Reading scenario files: validation, topology building and workload checks, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from netsim.collectives import algorithms
from netsim.errors import ConfigError
from netsim.scenario.config import Scenario, ScenarioConfig
from netsim.scenario.runner import item_groups
from netsim.topology import read_yaml, topology_from_dict
from netsim.topology.config import pydantic_error


def scenario_from_dict(data: object, *, source: str, base: Path | None = None) -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", source=source)
    try:
        config = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source) from None
    if isinstance(config.topology, str):
        path = Path(config.topology)
        candidates = [path] if path.is_absolute() else [(base or Path.cwd()) / path, Path.cwd() / path]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"topology file {config.topology!r} not found", source=source, field="topology")
        topology = topology_from_dict(read_yaml(found), source=str(found))
    else:
        topology = topology_from_dict(config.topology, source=source, field="topology")
    scenario = Scenario(config, topology, source)
    _check_workload(scenario)
    return scenario


def _check_workload(scenario: Scenario) -> None:
    for i, item in enumerate(scenario.config.workload):
        try:
            groups = item_groups(scenario, item)
        except ConfigError as exc:
            field = exc.field if exc.field and exc.field.startswith("parallel") else f"workload.{i}.ranks"
            if item.group is not None and scenario.config.parallel is None:
                field = f"workload.{i}.group"
            raise ConfigError(exc.detail, source=scenario.source, field=field) from None
        nodes = groups[0]
        if item.op == "send_recv" and len(nodes) != 2:
            raise ConfigError(f"send_recv needs exactly 2 ranks, got {len(nodes)}", source=scenario.source,
                              field=f"workload.{i}.ranks")
        if item.op != "send_recv" and item.algorithm() not in algorithms(item.op):
            raise ConfigError(f"no algorithm {item.algorithm()!r} for {item.op} (known: "
                              f"{', '.join(algorithms(item.op))})", source=scenario.source, field=f"workload.{i}.algo")


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    return scenario_from_dict(read_yaml(p), source=str(path), base=p.parent)


def default_scenario() -> Scenario:
    """The built-in scenario that `netsim run` uses with no argument."""
    path = Path(__file__).resolve().parent.parent / "data" / "default_scenario.yaml"
    return scenario_from_dict(read_yaml(path), source="<built-in default>")

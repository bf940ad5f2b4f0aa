"""The scenario file: topology, network model, routing, workload, seed, outputs — validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from netsim.errors import ConfigError
from netsim.network import NetworkOptions
from netsim.routing import policy_names
from netsim.topology import Topology, read_yaml, topology_from_dict
from netsim.topology.config import Bandwidth, Duration, Size, pydantic_error


def _routing(value: object) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("expected a policy name or a list of them")
    known = policy_names()
    for n in names:
        if n.partition(":")[0] not in known:
            raise ValueError(f"unknown routing policy {n!r} (known: {', '.join(known)})")
    if len(set(names)) != len(names):
        raise ValueError("a policy is listed twice")
    return names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Strict):
    model: Literal["fluid", "analytic"] = "fluid"
    overhead: Duration = 0.0
    flow_rate_cap: Bandwidth | None = None
    endpoint_rate_cap: Bandwidth | None = None

    def options(self) -> NetworkOptions:
        return NetworkOptions(self.overhead, self.flow_rate_cap, self.endpoint_rate_cap)


def _network(value: object) -> object:
    return {"model": value} if isinstance(value, str) else value


class CollectiveItem(_Strict):
    """One collective in the workload, run `repeat` times back to back."""

    op: Literal["all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce", "all_to_all", "barrier",
                "send_recv"]
    size: Size = 0
    algo: str | None = None
    root: Annotated[int, Field(ge=0, strict=True)] = 0
    ranks: Union[Literal["all"], Annotated[int, Field(ge=1, strict=True)], list[Union[int, str]]] = "all"
    chunks: Annotated[int, Field(ge=1, strict=True)] = 1
    repeat: Annotated[int, Field(ge=1, strict=True)] = 1
    label: str | None = None

    def algorithm(self) -> str:
        return self.algo or ("direct" if self.op == "send_recv" else "auto")


class OutputsConfig(_Strict):
    parquet: bool = True
    report: bool = True


class ScenarioConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "scenario"
    description: str = ""
    topology: Union[str, dict]
    network: Annotated[NetworkConfig, BeforeValidator(_network)] = NetworkConfig()
    routing: Annotated[list[str], BeforeValidator(_routing)] = ["ecmp"]
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    workload: Annotated[list[CollectiveItem], Field(min_length=1)]
    outputs: OutputsConfig = OutputsConfig()


class Scenario:
    """A validated scenario with its topology built."""

    def __init__(self, config: ScenarioConfig, topology: Topology, source: str):
        self.config, self.topology, self.source = config, topology, source

    @property
    def name(self) -> str:
        return self.config.name


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
    from netsim.scenario.runner import resolve_ranks

    for i, item in enumerate(scenario.config.workload):
        try:
            nodes = resolve_ranks(scenario.topology, item.ranks)
        except ConfigError as exc:
            raise ConfigError(exc.detail, source=scenario.source, field=f"workload.{i}.ranks") from None
        if item.op == "send_recv" and len(nodes) != 2:
            raise ConfigError(f"send_recv needs exactly 2 ranks, got {len(nodes)}", source=scenario.source,
                              field=f"workload.{i}.ranks")
        if item.op != "send_recv":
            from netsim.collectives import algorithms

            if item.algorithm() not in algorithms(item.op):
                raise ConfigError(f"no algorithm {item.algorithm()!r} for {item.op} (known: "
                                  f"{', '.join(algorithms(item.op))})", source=scenario.source,
                                  field=f"workload.{i}.algo")


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    return scenario_from_dict(read_yaml(p), source=str(path), base=p.parent)


def default_scenario() -> Scenario:
    """The built-in scenario that `netsim run` uses with no argument."""
    path = Path(__file__).resolve().parent.parent / "data" / "default_scenario.yaml"
    return scenario_from_dict(read_yaml(path), source="<built-in default>")

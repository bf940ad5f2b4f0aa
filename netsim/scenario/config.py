"""The scenario file: topology, network model, routing, workload, seed, outputs — validated by pydantic."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from netsim.collectives import KINDS, OPS
from netsim.config.name import Name
from netsim.errors import ConfigError
from netsim.network import NetworkOptions, model_class
from netsim.routing import policy_names
from netsim.collectives.nccl import ARCHS
from netsim.sim.simulation import COLLECTIVE_MODELS, MIN_COMPRESS
from netsim.topology import Topology
from netsim.topology.config import Bandwidth, Duration, Size


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


def _model(value: str) -> str:
    try:
        model_class(value)
    except ConfigError as exc:
        raise ValueError(exc.detail) from None
    return value


Op = Literal[OPS + ("send_recv",)]  # the collectives, and point-to-point between two ranks
GroupKind = Literal[KINDS]


def _compress(value: int) -> int:
    if 0 < value < MIN_COMPRESS:
        raise ValueError(f"must be 0 (every step) or at least {MIN_COMPRESS} steps, got {value}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Strict):
    model: Annotated[str, AfterValidator(_model)] = "fluid"  # a name in netsim.network.MODELS
    overhead: Duration = 0.0
    flow_rate_cap: Bandwidth | None = None
    endpoint_rate_cap: Bandwidth | None = None
    tcp_window: Size | None = None
    streams: Annotated[int, Field(ge=1, strict=True)] = 1
    # how collectives run: "ideal" (netsim's algorithms at line rate) or "nccl" (NCCL's tuner, protocols,
    # channels; `sm` is the GPUs' compute capability x 10: 80 A100, 86 A10, 90 H100)
    collectives: Literal[COLLECTIVE_MODELS] = "ideal"
    sm: Literal[ARCHS] = 90
    # steps simulated of each long run of identical collective steps, the rest skipped by their period
    # (0: every step; else at least 4; see netsim.collectives.repeats)
    compress: Annotated[int, Field(ge=0, strict=True), AfterValidator(_compress)] = 0

    def options(self) -> NetworkOptions:
        return NetworkOptions(self.overhead, self.flow_rate_cap, self.endpoint_rate_cap,
                              None if self.tcp_window is None else float(self.tcp_window), self.streams)

    def simulation(self) -> dict:
        """The `Simulation` arguments this section sets: model, options, collectives, sm, compress."""
        return {"network": self.model, "options": self.options(), "collectives": self.collectives, "sm": self.sm,
                "compress": self.compress}


def _network(value: object) -> object:
    return {"model": value} if isinstance(value, str) else value


class CollectiveItem(_Strict):
    """One collective in the workload, run `repeat` times back to back."""

    op: Op
    size: Size = 0
    algo: str | None = None
    root: Annotated[int, Field(ge=0, strict=True)] = 0
    ranks: Union[Literal["all"], Annotated[int, Field(ge=1, strict=True)], list[Union[int, str]]] = "all"
    chunks: Annotated[int, Field(ge=1, strict=True)] = 1
    group: GroupKind | None = None
    repeat: Annotated[int, Field(ge=1, strict=True)] = 1
    label: str | None = None

    def algorithm(self) -> str:
        return self.algo or ("direct" if self.op == "send_recv" else "auto")


class ParallelConfig(_Strict):
    """Sizes of the parallel dimensions; workload items with `group:` run on every group of one kind."""

    tp: Annotated[int, Field(ge=1, strict=True)] = 1
    cp: Annotated[int, Field(ge=1, strict=True)] = 1
    ep: Annotated[int, Field(ge=1, strict=True)] = 1
    dp: Annotated[int, Field(ge=1, strict=True)] = 1
    pp: Annotated[int, Field(ge=1, strict=True)] = 1


class JobConfig(_Strict):
    """One job on a shared fabric: its GPUs, where they are, when it starts, what it runs."""

    name: Name
    gpus: Annotated[int, Field(ge=1, strict=True)] | Literal["all"] = "all"
    placement: Literal["contiguous", "random", "fragmented"] = "contiguous"
    start: Duration = 0.0
    parallel: ParallelConfig | None = None
    workload: Annotated[list[CollectiveItem], Field(min_length=1)]


class FaultConfig(_Strict):
    """A link failing or slowing down at a given time: link 'a->b' or the cable 'a<->b'."""

    at: Duration = 0.0
    link: str
    kind: Literal["fail", "degrade"] = "fail"
    factor: Annotated[float, Field(gt=0, le=1)] = 0.5


class OutputsConfig(_Strict):
    parquet: bool = True
    report: bool = True


class ScenarioConfig(_Strict):
    name: Name = "scenario"
    description: str = ""
    topology: Union[str, dict]
    network: Annotated[NetworkConfig, BeforeValidator(_network)] = NetworkConfig()
    routing: Annotated[list[str], BeforeValidator(_routing)] = ["ecmp"]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)] = 0
    parallel: ParallelConfig | None = None
    workload: list[CollectiveItem] = []
    jobs: list[JobConfig] = []
    faults: list[FaultConfig] = []
    outputs: OutputsConfig = OutputsConfig()

    def job_list(self) -> list[JobConfig]:
        """The jobs; a scenario with a top-level `workload` is one job on every GPU."""
        if self.jobs:
            return list(self.jobs)
        return [JobConfig(name="job", gpus="all", parallel=self.parallel, workload=self.workload)]


class Scenario:
    """A validated scenario with its topology built."""

    def __init__(self, config: ScenarioConfig, topology: Topology, source: str):
        self.config, self.topology, self.source = config, topology, source

    @property
    def name(self) -> str:
        return self.config.name

"""The scenario kinds a sweep can run, one registry: name, one line of help, the columns it reports, a
function from a resolved scenario mapping (and the folder its relative paths start from) to result rows
(dicts of metric -> value; several rows where a run reports several items, e.g. one per collective), and
a check that builds everything a run needs short of running it.

The check is what lets a sweep refuse a point that cannot be valid (an unknown key, a wrong type, a value
out of range, more work than the transfer ceiling) before anything runs: it raises the `ConfigError` the
run would raise, naming the field inside the point. The run function builds through the same code, so a
point that passes the check fails at run time only on what the check cannot see.

A kind's function must be importable from a fresh process (executors send the point, not the function)
and deterministic for a given scenario: the same point gives the same rows whichever worker runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from netsim.errors import ConfigError
from netsim.faults.spec import PARTS

SOURCE = "sweep point"  # the source named by errors raised while a point runs (the table keeps them)


# --- run: a collective scenario ---------------------------------------------------------------------

def _scenario(document: dict, folder: Path):
    from netsim.scenario import scenario_from_dict

    return scenario_from_dict(document, source=SOURCE, base=folder)


def _check_run(document: dict, folder: Path, max_transfers: int | None) -> None:
    from netsim.scenario.budget import check_budget, scenario_transfers

    scenario = _scenario(document, folder)
    check_budget(scenario_transfers(scenario), "the point", max_transfers)


def _run(document: dict, folder: Path) -> list[dict]:
    from netsim.scenario import run_scenario, summarize

    results = run_scenario(_scenario(document, folder))
    rows = summarize(results).to_dicts()
    end = max(v["end_time"] for v in results.meta["variants"].values())
    return [r | {"end_time_s": end} for r in rows]


# --- compare: a routing A/B -------------------------------------------------------------------------

def _comparison(document: dict, folder: Path):
    """(scenario, policies, alone) of a comparison point, every policy built once on the topology."""
    from netsim.routing import make_policy
    from netsim.topology import PathCache

    doc = dict(document)
    policies = doc.pop("policies", None)
    alone = doc.pop("alone", False)
    if not isinstance(policies, list) or not policies or not all(isinstance(p, str) for p in policies):
        raise ConfigError(f"expected a list of routing policy names to compare, got {policies!r}", field="policies")
    if len(set(policies)) != len(policies):
        raise ConfigError(f"expected distinct routing policies, got {policies!r}", field="policies")
    if not isinstance(alone, bool):
        raise ConfigError(f"expected true or false, got {alone!r}", field="alone")
    scenario = _scenario(doc, folder)
    for i, policy in enumerate(policies):
        try:
            make_policy(policy, scenario.topology, PathCache(scenario.topology), scenario.config.seed)
        except ConfigError as exc:
            raise ConfigError(exc.detail, field=f"policies.{i}") from None
    return scenario, policies, alone


def _check_compare(document: dict, folder: Path, max_transfers: int | None) -> None:
    from netsim.scenario.budget import check_budget, scenario_transfers

    scenario, policies, alone = _comparison(document, folder)
    per_run = scenario_transfers(scenario) // len(scenario.config.routing)
    # the ideal references (each job alone: one run's transfers in all), each policy with all jobs, and
    # with `alone` each job alone again under each policy
    runs = 1 + len(policies) * (2 if alone and len(scenario.config.job_list()) > 1 else 1)
    check_budget(per_run * runs, f"comparing {len(policies)} policies", max_transfers)


def _compare(document: dict, folder: Path) -> list[dict]:
    from netsim.scenario.compare import compare_routing

    scenario, policies, alone = _comparison(document, folder)
    return compare_routing(scenario, policies, alone=alone).table.to_dicts()


# --- utilization: a low-communication training setting ----------------------------------------------

Int = Annotated[int, Field(strict=True)]
Float = Annotated[float, Field(strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    step_time: Float | str
    params: Float | str
    layer_weights: list[Float] = []
    forward_share: Float = 1 / 3


class _Utilization(BaseModel):
    """The sweep's utilisation document: the fields of `UtilizationConfig` with the command line's bounds
    (`netsim utilization`), times, bandwidths and sizes as numbers or with units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    model: _Model
    workers: Annotated[int, Field(strict=True, ge=2, le=256)] = 2
    bandwidth: Float | str = 10e9 / 8
    latency: Float | str = 0.0
    inner_steps: Annotated[int, Field(strict=True, ge=1, le=10**6)] = 100
    fragments: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 1
    overlap: Annotated[int, Field(strict=True, ge=0, le=10**6)] = 0
    bits: Literal[4, 8, 16, 32] = 16
    outer_steps: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 3
    speeds: list[Float] | None = None
    jitter: Float = 0.0
    seed: Annotated[int, Field(strict=True, ge=0, lt=2**63)] = 0
    bucket_bytes: Float | str | None = None
    graph: str = "ring"
    final_merge: bool = False
    per_layer: bool = False
    tcp_window: Float | str | None = None
    streams: Annotated[int, Field(strict=True, ge=1, le=4096)] = 1
    topology: Union[str, dict, None] = None
    worker_gpus: list[str] | None = None
    gpus_per_worker: Annotated[int, Field(strict=True, ge=1, le=4096)] = 1
    full_network: bool = False


def _number(value: float | str, field: str) -> float:
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"expected a number, got {value!r}", field=field) from None


def _utilization_config(document: dict, folder: Path):
    from netsim.config import validated
    from netsim.scenario.loader import topology_of
    from netsim.units import parse_bandwidth, parse_size, parse_time
    from netsim.workloads.compute import ComputeModel
    from netsim.workloads.utilization import UtilizationConfig

    cfg = validated(_Utilization, document, SOURCE)
    m = cfg.model
    try:
        model = ComputeModel(m.layers, parse_time(m.step_time, field="step_time"), _number(m.params, "params"),
                             tuple(m.layer_weights), m.forward_share)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=SOURCE, field=f"model.{exc.field}" if exc.field else "model") from None
    kw = cfg.model_dump(exclude={"model", "topology"})
    for name, parse in (("bandwidth", parse_bandwidth), ("latency", parse_time), ("tcp_window", parse_size),
                        ("bucket_bytes", parse_size)):
        if isinstance(kw[name], str):
            kw[name] = parse(kw[name], field=name)
    for name in ("speeds", "worker_gpus"):
        if kw[name] is not None:
            kw[name] = tuple(kw[name])
    topology = None if cfg.topology is None else topology_of(cfg.topology, SOURCE, folder)
    try:
        return UtilizationConfig(model=model, topology=topology, **kw)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=SOURCE, field=exc.field) from None


def _check_utilization(document: dict, folder: Path, max_transfers: int | None) -> None:
    _utilization_config(document, folder)


def _utilization(document: dict, folder: Path) -> list[dict]:
    from netsim.workloads.utilization import utilization

    return [utilization(_utilization_config(document, folder)).as_dict()]


# --- attention: context-parallel attention ----------------------------------------------------------

def _attention_config(document: dict, folder: Path):
    from netsim.config import validated
    from netsim.scenario.attention import AttentionScenario, check_attention
    from netsim.scenario.loader import topology_of

    cfg = validated(AttentionScenario, document, SOURCE)
    return cfg, check_attention(cfg, topology_of(cfg.topology, SOURCE, folder), SOURCE)


def _check_attention(document: dict, folder: Path, max_transfers: int | None) -> None:
    _attention_config(document, folder)


def _attention(document: dict, folder: Path) -> list[dict]:
    from netsim.scenario.attention import attention_summary, simulate_attention

    cfg, topo = _attention_config(document, folder)
    return attention_summary(simulate_attention(cfg, topo)).to_dicts()


# --- faults: a fault scenario -----------------------------------------------------------------------

def _fault_config(document: dict, folder: Path):
    """The checks of `netsim faults` on a file, on a mapping."""
    from netsim.scenario.faults import fault_scenario_from_dict

    return fault_scenario_from_dict(document, SOURCE, folder)


def _check_faults(document: dict, folder: Path, max_transfers: int | None) -> None:
    _fault_config(document, folder)


def _faults(document: dict, folder: Path) -> list[dict]:
    from netsim.scenario.faults import run_scenario

    cfg, topo = _fault_config(document, folder)
    return [{"mode": mode} | r.summary() for mode, r in run_scenario(cfg, topo).items()]


# --- the registry -----------------------------------------------------------------------------------

SUMMARY = ("variant", "job", "label", "op", "algo", "ranks", "size_B", "count", "time_mean_s", "time_max_s",
           "algbw_Bps", "busbw_Bps", "max_link_peak", "max_link_B")
# metric names before every output column named its unit -> their names now (for a one-line hint)
RENAMED = {"bytes": "size_B", "time_mean": "time_mean_s", "time_max": "time_max_s", "algbw": "algbw_Bps",
           "busbw": "busbw_Bps", "max_link_bytes": "max_link_B", "end_time": "end_time_s",
           "time_alone": "time_alone_s", "busbw_ideal": "busbw_ideal_Bps", "time_ideal": "time_ideal_s",
           "bytes_per_worker": "sent_per_worker_B", "bytes_total": "sent_total_B", "bytes_sent": "sent_B",
           "busiest_link_bytes": "busiest_link_B"}


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    run: Callable[[dict, Path], list[dict]]
    check: Callable[[dict, Path, int | None], None]  # raises the ConfigError a run would, without running
    metrics: tuple[str, ...]  # the columns its rows have (what `metrics:` may keep)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("run", "a collective scenario (netsim run): per variant and workload item, time, algbw, busbw", _run,
         _check_run, SUMMARY + ("end_time_s",)),
    Kind("compare", "a multi-job routing A/B (netsim compare-routing): the scenario plus policies: [...] (and "
         "alone: true for the slowdown column); per policy, job and collective, busbw % of ideal", _compare,
         _check_compare, SUMMARY + ("time_alone_s", "busbw_ideal_Bps", "time_ideal_s", "pct_of_ideal", "slowdown",
                                    "worst_step_load_ratio")),
    Kind("utilization", "a training utilisation setting (the fields of netsim utilization; model: {layers, "
         "step_time, params}; bandwidth and times as numbers or with units, e.g. 10Gbps, 100ms)",
         _utilization, _check_utilization,
         ("method", "utilization", "wall_s", "exposed_comm_s", "sent_per_worker_B", "sent_total_B", "peak_demand_Bps",
          "outer_step_s", "straggler_wait_s", "events_per_step")),
    Kind("attention", "an attention scenario (netsim attention): per scheme, time and communication", _attention,
         _check_attention, ("scheme", "gpus", "time_s", "step_s", "compute_s", "exposed_comm_s", "sent_B",
                            "busiest_link", "busiest_link_B", "busiest_link_utilization")),
    Kind("faults", "a fault scenario (netsim faults): wall time and downtime with and without detection", _faults,
         _check_faults, ("mode", "wall_s", "fault_free_s", "overhead_s", "iterations_per_s", "healthy_iteration_s",
                         *(f"{p}_s" for p in PARTS), "false_alarms", "checks")),
)}

"""The scenario kinds a sweep can run, one registry: name, one line of help, and a function from a
resolved scenario mapping (and the folder its relative paths start from) to result rows (dicts of
metric -> value; several rows where a run reports several items, e.g. one per collective).

A kind's function must be importable from a fresh process (executors send the point, not the function)
and deterministic for a given scenario: the same point gives the same rows whichever worker runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def _run(document: dict, folder: Path) -> list[dict]:
    from netsim.scenario import run_scenario, scenario_from_dict, summarize

    scenario = scenario_from_dict(document, source="sweep point", base=folder)
    results = run_scenario(scenario)
    rows = summarize(results).to_dicts()
    end = max(v["end_time"] for v in results.meta["variants"].values())
    return [r | {"end_time": end} for r in rows]


def _compare(document: dict, folder: Path) -> list[dict]:
    from netsim.errors import ConfigError
    from netsim.scenario import scenario_from_dict
    from netsim.scenario.compare import compare_routing

    doc = dict(document)
    policies = doc.pop("policies", None)
    alone = doc.pop("alone", False)
    if not isinstance(policies, list) or not policies:
        raise ConfigError("expected a list of routing policies to compare", field="policies")
    scenario = scenario_from_dict(doc, source="sweep point", base=folder)
    return compare_routing(scenario, [str(x) for x in policies], alone=bool(alone)).table.to_dicts()


def _utilization(document: dict, folder: Path) -> list[dict]:
    from netsim.workloads.compute import ComputeModel
    from netsim.workloads.utilization import UtilizationConfig, utilization

    from netsim.units import parse_bandwidth, parse_time

    doc = dict(document)
    model = dict(doc.pop("model"))
    if isinstance(model.get("step_time"), str):
        model["step_time"] = parse_time(model["step_time"], field="model.step_time")
    if isinstance(model.get("params"), str):
        model["params"] = _number(model["params"], "model.params")
    model = ComputeModel(**model)
    for name, parse in (("bandwidth", parse_bandwidth), ("latency", parse_time)):
        if isinstance(doc.get(name), str):
            doc[name] = parse(doc[name], field=name)
    if doc.get("speeds") is not None:
        doc["speeds"] = tuple(doc["speeds"])
    return [utilization(UtilizationConfig(model=model, **doc)).as_dict()]


def _number(text: str, field: str) -> float:
    from netsim.errors import ConfigError

    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"expected a number, got {text!r}", field=field) from None


def _attention(document: dict, folder: Path) -> list[dict]:
    from netsim.config import validated
    from netsim.scenario.attention import AttentionScenario, attention_summary, check_attention, simulate_attention
    from netsim.scenario.loader import topology_of

    cfg = validated(AttentionScenario, document, "sweep point")
    topo = check_attention(cfg, topology_of(cfg.topology, "sweep point", folder))
    return attention_summary(simulate_attention(cfg, topo)).to_dicts()


def _faults(document: dict, folder: Path) -> list[dict]:
    from netsim.config import validated
    from netsim.scenario.faults import FaultScenario, run_scenario
    from netsim.scenario.loader import topology_of

    cfg = validated(FaultScenario, document, "sweep point")
    topo = topology_of(cfg.topology, "sweep point", folder)
    return [{"mode": mode} | r.summary() for mode, r in run_scenario(cfg, topo).items()]


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    run: Callable[[dict, Path], list[dict]]


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("run", "a collective scenario (netsim run): per variant and workload item, time, algbw, busbw", _run),
    Kind("compare", "a multi-job routing A/B (netsim compare-routing): the scenario plus policies: [...] (and "
         "alone: true for the slowdown column); per policy, job and collective, busbw % of ideal", _compare),
    Kind("utilization", "a training utilisation setting (the fields of netsim utilization; model: {layers, "
         "step_time, params}; bandwidth and times as numbers or with units, e.g. 10Gbps, 100ms)",
         _utilization),
    Kind("attention", "an attention scenario (netsim attention): per scheme, time and communication", _attention),
    Kind("faults", "a fault scenario (netsim faults): wall time and downtime with and without detection", _faults),
)}

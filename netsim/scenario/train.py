"""Training scenarios (`netsim train`): real training per method on a simulated fabric, and its outputs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Callable, Literal, Union

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.sim import Simulation
from netsim.scenario.loader import topology_of, validated
from netsim.topology import read_yaml
from netsim.topology.config import Duration
from netsim.training.coupled import TrainConfig, train
from netsim.training.model import ModelConfig, TinyLM


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelFields(_Strict):
    layers: Annotated[int, Field(ge=1, strict=True)] = 2
    width: Annotated[int, Field(ge=8, strict=True)] = 64
    heads: Annotated[int, Field(ge=1, strict=True)] = 4
    context: Annotated[int, Field(ge=4, strict=True)] = 64


class TrainScenario(_Strict):
    name: str = "training"
    topology: Union[str, dict]
    workers: Annotated[int, Field(ge=2, strict=True)] | None = None  # default: one per datacenter
    methods: list[Literal["ddp", "diloco", "streaming_diloco", "noloco", "gossip"]] = ["ddp", "diloco"]
    graph: Literal["ring", "exponential", "random"] = "ring"
    final_merge: bool = False
    steps: Annotated[int, Field(ge=1, strict=True)] = 100
    inner_steps: Annotated[int, Field(ge=1, strict=True)] = 20
    fragments: Annotated[int, Field(ge=1, strict=True)] = 4
    overlap: Annotated[int, Field(ge=0, strict=True)] = 1
    exchange: Literal["fp32", "bf16", "fp8", "e3m0"] = "bf16"
    batch: Annotated[int, Field(ge=1, strict=True)] = 16
    lr: Annotated[float, Field(gt=0)] = 3e-3
    model: ModelFields = ModelFields()
    step_time: Duration | None = None  # fixed compute per step; none: measured torch time x time_scale
    time_scale: Annotated[float, Field(gt=0)] = 1.0
    device_flops: Annotated[float, Field(gt=0)] | None = None  # peak FLOP/s of the target device ...
    mfu: Annotated[float, Field(gt=0, le=1)] = 0.4  # ... at this model FLOPs utilisation: 6 P tokens / (peak mfu)
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    target_loss: Annotated[float, Field(gt=0)] | None = None
    speeds: list[Annotated[float, Field(gt=0)]] = []  # per-worker slowdown factors (stragglers)


def load_train_scenario(path: str | Path | None) -> tuple[TrainScenario, object, str]:
    source = str(path) if path else "<built-in training scenario>"
    file = Path(path) if path else Path(__file__).resolve().parent.parent / "data" / "default_training.yaml"
    cfg = validated(TrainScenario, read_yaml(file), source)
    return cfg, topology_of(cfg.topology, source, file.parent), source


def worker_nodes(topo, workers: int | None) -> np.ndarray:
    """The first GPU of each datacenter (or the first `workers` GPUs where there are no datacenters)."""
    dcs = topo.gpu_attr("dc")
    if (dcs >= 0).any():
        firsts = [int(topo.gpus[np.flatnonzero(dcs == d)[0]]) for d in sorted(set(dcs.tolist()))]
        if workers is not None and workers > len(firsts):
            raise ConfigError(f"{workers} workers but {len(firsts)} datacenters", field="workers")
        return np.array(firsts[:workers] if workers else firsts, dtype=np.int64)
    count = workers or len(topo.gpus)
    return topo.gpus[:count]


def run_training(cfg: TrainScenario, topo, progress: Callable[[str], None] | None = None) -> dict[str, pl.DataFrame]:
    """Per method: the per-step losses with simulated time and bytes sent so far, and a summary."""
    nodes = worker_nodes(topo, cfg.workers)
    model = ModelConfig(cfg.model.layers, cfg.model.width, cfg.model.heads, cfg.model.context)
    steps, summaries = [], []
    for method in cfg.methods:
        if progress:
            progress(method)
        sim = Simulation(topo, seed=cfg.seed, record_links=False)
        comm = Communicator(sim, nodes, name="workers")
        tc = TrainConfig(method=method, steps=cfg.steps, inner_steps=cfg.inner_steps, batch=cfg.batch, lr=cfg.lr,
                         exchange=cfg.exchange, model=model, seed=cfg.seed, step_time=cfg.step_time,
                         time_scale=cfg.time_scale, fragments=cfg.fragments, overlap=cfg.overlap,
                         speeds=tuple(cfg.speeds), graph=cfg.graph, final_merge=cfg.final_merge)
        if cfg.device_flops is not None:  # FLOPs against the device: the same fixed time every step
            params = sum(p.numel() for p in TinyLM(model).parameters())
            tokens = cfg.batch * cfg.model.context
            tc = replace(tc, step_time=6 * params * tokens / (cfg.device_flops * cfg.mfu))
        state = train(comm, tc)
        results = sim.run()
        frame = state["frame"]()
        t = results.transfers.sort("end")
        cum = np.concatenate([[0], np.cumsum(t["bytes"].to_numpy())])  # bytes delivered by the fabric so far
        upto = np.searchsorted(t["end"].to_numpy(), frame["time"].to_numpy(), side="right")
        frame = frame.with_columns(pl.Series("bytes_sent", cum[upto]))
        mean = (frame.group_by("step", maintain_order=True)
                .agg(pl.col("loss").mean(), pl.col("time").max(), pl.col("bytes_sent").max()).sort("step"))
        compute = frame.group_by("worker").agg(pl.col("compute_s").sum())["compute_s"].mean()
        reached = mean.filter(pl.col("loss") <= cfg.target_loss) if cfg.target_loss else mean.clear()
        summaries.append({
            "method": method, "final_loss": float(mean["loss"].tail(10).mean()), "wall_s": float(sim.now),
            "bytes": int(results.transfers["bytes"].sum()), "utilization": float(compute / sim.now),
            "time_to_target_s": float(reached["time"][0]) if len(reached) else None,
        })
        summaries[-1]["torch_s"] = float(state["torch_seconds"].sum())
        steps.append(frame.with_columns(pl.col("loss").exp().alias("perplexity")))
    return {"steps": pl.concat(steps), "summary": pl.DataFrame(summaries)}

"""Training scenarios (`netsim train`): real training per method on a simulated fabric, and its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Literal, Union

import numpy as np
import polars as pl
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.sim import Simulation
from netsim.scenario.loader import topology_of, validated
from netsim.topology import read_yaml
from netsim.topology.config import Duration
from netsim.training.coupled import MAX_LR, TrainConfig, train
from netsim.training.model import MAX_CONTEXT, MAX_WIDTH, ModelConfig, TinyLM
from netsim.training.quantize import FORMATS
from netsim.workloads.gossip import GRAPHS
from netsim.workloads.limits import MAX_SECONDS, MAX_SPEED
from netsim.workloads.methods import TRAINING_NAMES, check_method


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _training_method(value: object) -> object:
    """A method name real training runs (the registry's message, naming the known ones, if not)."""
    try:
        return check_method(value, training=True)
    except ConfigError as exc:
        raise ValueError(exc.detail) from None


# The allowed values come from the registries: methods (netsim.workloads.methods), graphs, formats.
MethodName = Annotated[Literal[TRAINING_NAMES], BeforeValidator(_training_method)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
MAX_STEPS = 1_000_000  # steps of real training: per-step records are kept, and a step takes milliseconds at best


class ModelFields(_Strict):
    layers: Annotated[int, Field(ge=1, le=1024, strict=True)] = 2
    width: Annotated[int, Field(ge=8, le=MAX_WIDTH, strict=True)] = 64
    heads: Annotated[int, Field(ge=1, strict=True)] = 4
    context: Annotated[int, Field(ge=4, le=MAX_CONTEXT, strict=True)] = 64


class TrainScenario(_Strict):
    name: str = "training"
    topology: Union[str, dict]
    workers: Annotated[int, Field(ge=2, le=1024, strict=True)] | None = None  # default: one per datacenter
    methods: Annotated[list[MethodName], Field(min_length=1)] = ["ddp", "diloco"]
    graph: Literal[GRAPHS] = "ring"
    final_merge: bool = False
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS, strict=True)] = 100
    inner_steps: Annotated[int, Field(ge=1, le=MAX_STEPS, strict=True)] = 20
    fragments: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 4
    overlap: Annotated[int, Field(ge=0, le=MAX_STEPS, strict=True)] = 1
    exchange: Literal[tuple(FORMATS)] = "bf16"
    batch: Annotated[int, Field(ge=1, strict=True)] = 16
    lr: Annotated[Finite, Field(gt=0, le=MAX_LR)] = 3e-3
    model: ModelFields = ModelFields()
    step_time: Duration | None = None  # fixed compute per step; none: measured torch time x time_scale
    time_scale: Annotated[Finite, Field(gt=0, le=MAX_SPEED)] = 1.0
    device_flops: Annotated[Finite, Field(gt=0)] | None = None  # peak FLOP/s of the target device ...
    mfu: Annotated[Finite, Field(gt=0, le=1)] = 0.4  # ... at this model FLOPs utilisation: 6 P tokens / (peak mfu)
    seed: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)] = 0
    target_loss: Annotated[Finite, Field(gt=0)] | None = None
    speeds: list[Annotated[Finite, Field(gt=0, le=MAX_SPEED)]] = []  # per-worker slowdown factors (stragglers)

    def transformer(self) -> ModelConfig:
        """The model of every worker (its own checks: heads dividing the width, ...)."""
        return ModelConfig(self.model.layers, self.model.width, self.model.heads, self.model.context)

    def train_config(self, method: str) -> TrainConfig:
        """The `TrainConfig` of one method (its own checks: fragments per block, the step time, ...). With
        `device_flops`, every step takes 6 x parameters x tokens FLOPs at `mfu` of the device's peak."""
        model = self.transformer()
        step_time = self.step_time
        if self.device_flops is not None:
            params = sum(p.numel() for p in TinyLM(model).parameters())
            step_time = 6 * params * self.batch * self.model.context / (self.device_flops * self.mfu)
        return TrainConfig(method=method, steps=self.steps, inner_steps=self.inner_steps, batch=self.batch, lr=self.lr,
                           exchange=self.exchange, model=model, seed=self.seed, step_time=step_time,
                           time_scale=self.time_scale, fragments=self.fragments, overlap=self.overlap,
                           speeds=tuple(self.speeds), graph=self.graph, final_merge=self.final_merge)


def load_train_scenario(path: str | Path | None) -> tuple[TrainScenario, object, str]:
    source = str(path) if path else "<built-in training scenario>"
    file = Path(path) if path else Path(__file__).resolve().parent.parent / "data" / "default_training.yaml"
    cfg = validated(TrainScenario, read_yaml(file), source)
    topo = topology_of(cfg.topology, source, file.parent)
    check_train_scenario(cfg, topo, source)
    return cfg, topo, source


def check_train_scenario(cfg: TrainScenario, topo, source: str) -> None:
    """What the schema alone cannot see, as one-line errors naming the field: the model's shape, fragments
    against blocks, the step time from FLOPs, workers against the topology and the speed factors, and a
    context against a data shard."""
    try:
        nodes = worker_nodes(topo, cfg.workers)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=source, field=exc.field) from None
    if cfg.speeds and len(cfg.speeds) != len(nodes):
        raise ConfigError(f"{len(cfg.speeds)} speed factors for {len(nodes)} workers", source=source, field="speeds")
    try:
        cfg.transformer()
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=source, field=f"model.{exc.field}") from None
    memory = training_memory(cfg)
    if memory > MAX_TRAINING_MEMORY:
        raise ConfigError(f"model and batch need about {memory / 2**30:,.1f} GiB per worker in memory, more than the "
                          f"{MAX_TRAINING_MEMORY / 2**30:g} GiB limit; lower batch, model.context, width or layers",
                          source=source, field="batch")
    if len(set(cfg.methods)) != len(cfg.methods):
        raise ConfigError("a method is listed twice", source=source, field="methods")
    for method in cfg.methods:
        try:
            cfg.train_config(method).check_data(len(nodes))
        except ConfigError as exc:
            if exc.field == "step_time" and cfg.device_flops is not None:
                raise ConfigError(f"with mfu {cfg.mfu:g} it gives a step time beyond {MAX_SECONDS:g} s (the limit)",
                                  source=source, field="device_flops") from None
            raise ConfigError(exc.detail, source=source, field=exc.field) from None


MAX_TRAINING_MEMORY = 4 * 2**30  # bytes per worker's model, optimiser and activations: every worker is a process here


def training_memory(cfg: TrainScenario) -> float:
    """Bytes one worker's model needs, roughly: parameters with AdamW state and outer copies (8 floats each),
    activations kept for the backward (about 16 floats per token, width unit and layer) and attention
    scores (context x heads per token and layer), in fp32."""
    m = cfg.model
    params = 12 * m.layers * m.width ** 2 + 2 * 256 * m.width + m.context * m.width
    tokens = cfg.batch * m.context
    return 4.0 * (8 * params + tokens * m.layers * (16 * m.width + 2 * m.context * m.heads))


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
    """Per method: the per-step losses with simulated time and bytes sent so far, and a summary; and the
    timing programs (`programs`: method -> program) and their node rows (`timeline`: rows, process names;
    method i's worker w is rank i x workers + w)."""
    nodes = worker_nodes(topo, cfg.workers)
    steps, summaries, timelines, names, programs = [], [], [], {}, {}
    for i, method in enumerate(cfg.methods):
        if progress:
            progress(method)
        sim = Simulation(topo, seed=cfg.seed, record_links=False)
        comm = Communicator(sim, nodes, name="workers")
        state = train(comm, cfg.train_config(method))
        results = sim.run()
        frame = state["frame"]()
        t = results.transfers.sort("end_s")
        cum = np.concatenate([[0], np.cumsum(t["size_B"].to_numpy())])  # bytes delivered by the fabric so far
        upto = np.searchsorted(t["end_s"].to_numpy(), frame["time_s"].to_numpy(), side="right")
        frame = frame.with_columns(pl.Series("sent_B", cum[upto]))
        mean = (frame.group_by("step", maintain_order=True)
                .agg(pl.col("loss").mean(), pl.col("time_s").max(), pl.col("sent_B").max()).sort("step"))
        compute = frame.group_by("worker").agg(pl.col("compute_s").sum())["compute_s"].mean()
        reached = mean.filter(pl.col("loss") <= cfg.target_loss) if cfg.target_loss else mean.clear()
        summaries.append({
            "method": method, "final_loss": float(mean["loss"].tail(10).mean()), "wall_s": float(sim.now),
            "sent_B": int(results.transfers["size_B"].sum()), "utilization": float(compute / sim.now),
            "time_to_target_s": float(reached["time_s"][0]) if len(reached) else None,
        })
        summaries[-1]["torch_s"] = float(state["torch_seconds"].sum())
        summaries[-1]["syncs"] = state["syncs"]()  # 0: the method never synchronised within `steps`
        steps.append(frame.with_columns(pl.col("loss").exp().alias("perplexity")))
        first = i * len(nodes)  # the run's timeline: method i's worker w is process first + w
        timelines.append(state["run"].result().nodes.with_columns(pl.col("rank") + first))
        programs[method] = state["program"]
        names.update({first + w: f"{method} worker {w} ({topo.node_names[int(g)]})" for w, g in enumerate(nodes)})
    return {"steps": pl.concat(steps), "summary": pl.DataFrame(summaries),
            "timeline": (pl.concat(timelines), names), "programs": programs}

"""Real training on the simulated clock: M workers, each a real TinyLM with its own AdamW (or SGD) and
data shard, in one process. Every step's compute time is the measured torch time (times `time_scale`)
or a fixed `step_time`; every exchange sends the exact bytes of its tensors (after quantisation)
through the simulated network, and the maths waits for them: a late message really is late.

Methods so far: `ddp` (gradients averaged every step) and `diloco` (H inner steps, then the averaged
outer gradient drives an outer SGD-Nesterov step of the global parameters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import polars as pl
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.training.data import Shard, corpus_bytes
from netsim.training.model import ModelConfig, TinyLM
from netsim.training.outer import OuterNesterov, average
from netsim.training.quantize import FORMATS, payload_bytes, quantize
from netsim.workloads.syncs import SyncPoint

METHODS = ("ddp", "diloco")
STEP_SCHEMA = {"method": pl.Utf8, "worker": pl.Int64, "step": pl.Int64, "time": pl.Float64, "loss": pl.Float64,
               "compute_s": pl.Float64}


@dataclass(frozen=True)
class TrainConfig:
    method: str = "diloco"
    steps: int = 40
    inner_steps: int = 10  # H
    batch: int = 8
    lr: float = 3e-3
    inner_optimizer: str = "adamw"  # or "sgd"
    outer_lr: float = 0.7
    outer_momentum: float = 0.9
    exchange: str = "bf16"  # format of exchanged values
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    step_time: float | None = None  # fixed seconds per step; None: measured torch time x time_scale
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r} (known: {', '.join(METHODS)})", field="method")
        if self.exchange not in FORMATS:
            raise ConfigError(f"unknown format {self.exchange!r} (known: {', '.join(FORMATS)})", field="exchange")
        if self.inner_optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"expected adamw or sgd, got {self.inner_optimizer!r}", field="inner_optimizer")


class Exchange:
    """The values of one sync: contributions gathered, network time paid, then the mean (fp32)."""

    def __init__(self, comm: Communicator, numel: int, cfg: TrainConfig, label: str):
        self.sync = SyncPoint(comm, payload_bytes(numel, cfg.exchange), comm.size, label=label)
        self.values: dict[int, torch.Tensor] = {}
        self.fmt = cfg.exchange
        self._mean: torch.Tensor | None = None

    def contribute(self, worker: int, vector: torch.Tensor) -> None:
        self.values[worker] = quantize(vector, self.fmt)
        self.sync.arrive(worker)

    def mean(self) -> torch.Tensor:
        if self._mean is None:
            self._mean = average([self.values[w] for w in sorted(self.values)])
        return self._mean


def train(comm: Communicator, cfg: TrainConfig) -> dict:
    """Start the workers as SimPy processes on `comm`'s simulation; run the simulation, then read
    `result["frame"]()` for the per-step losses and times."""
    sim = comm.sim
    m = comm.size
    torch.manual_seed(cfg.seed)
    base = TinyLM(cfg.model)
    start = parameters_to_vector(base.parameters()).detach().clone()
    data = corpus_bytes()
    rows: list[dict] = []
    outer = OuterNesterov(start, cfg.outer_lr, cfg.outer_momentum, nesterov=cfg.outer_momentum > 0)
    exchanges: dict[int, Exchange] = {}
    applied: dict[int, torch.Tensor] = {}

    def exchange(t: int) -> Exchange:
        if t not in exchanges:
            exchanges[t] = Exchange(comm, start.numel(), cfg, label=f"{cfg.method}@{t}")
        return exchanges[t]

    def worker(w: int):
        model = TinyLM(cfg.model)
        vector_to_parameters(start.clone(), model.parameters())
        opt = (torch.optim.AdamW(model.parameters(), lr=cfg.lr) if cfg.inner_optimizer == "adamw"
               else torch.optim.SGD(model.parameters(), lr=cfg.lr))
        shard = Shard(data, w, m, cfg.model.context, cfg.batch, cfg.seed)
        for t in range(1, cfg.steps + 1):
            tic = time.perf_counter()
            opt.zero_grad()
            loss = model.loss(shard.next())
            loss.backward()
            measured = time.perf_counter() - tic
            compute = cfg.step_time if cfg.step_time is not None else measured * cfg.time_scale
            yield sim.env.timeout(compute)
            if cfg.method == "ddp":
                ex = exchange(t)
                ex.contribute(w, parameters_to_vector(p.grad for p in model.parameters()))
                yield ex.sync.done
                grads = ex.mean()
                offset = 0
                for p in model.parameters():
                    p.grad = grads[offset:offset + p.numel()].view_as(p).clone()
                    offset += p.numel()
                opt.step()
            else:
                opt.step()
                if t % cfg.inner_steps == 0:
                    ex = exchange(t)
                    local = parameters_to_vector(model.parameters()).detach()
                    ex.contribute(w, outer.params - local)
                    yield ex.sync.done
                    if t not in applied:  # the first worker back applies the outer step for everyone
                        applied[t] = outer.step(ex.mean()).clone()
                    vector_to_parameters(applied[t].clone(), model.parameters())
            rows.append({"method": cfg.method, "worker": w, "step": t, "time": sim.now, "loss": float(loss.item()),
                         "compute_s": compute})

    for w in range(m):
        sim.process(worker(w))
    return {"frame": lambda: pl.DataFrame(rows, schema=STEP_SCHEMA).sort("worker", "step"),
            "exchanges": exchanges}

"""Real training on the simulated clock: M workers, each a real TinyLM with its own AdamW (or SGD) and
data shard, in one process. Every step's compute time is the measured torch time (times `time_scale`)
or a fixed `step_time`; every exchange sends the exact bytes of its tensors (after quantisation)
through the simulated network, and the maths waits for them: a late message really is late.

Methods (those the registry `netsim.workloads.methods` marks `trains`): `ddp` (gradients averaged every
step), `diloco` (H inner steps, then the averaged outer gradient drives an outer SGD-Nesterov step of
the global parameters), `streaming_diloco` (F fragments strided by block, fragment p synced after the steps t with (t - round(pH/F)) mod H == 0,
merged tau steps later as local <- alpha local + (1 - alpha) global) and `noloco` (every H steps a
random pair exchanges outer gradients and slow weights; each worker's own Nesterov step plus a pull
of its slow weights toward the pair's mean; no all-reduce, no barrier) and `gossip` (D-SGD: every H
steps average parameters with the round's neighbours on a ring, a one-peer exponential graph or
random pairs; with `final_merge`, one global all-reduce of the parameters at the end).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.training.data import Shard, corpus_bytes, corpus_size
from netsim.training.model import ModelConfig, TinyLM
from netsim.training.outer import OuterNesterov, average
from netsim.training.quantize import FORMATS, payload_bytes, quantize
from netsim.workloads.diloco import StreamingConfig, due_fragments
from netsim.workloads.gossip import GRAPHS, neighbours
from netsim.workloads.limits import MAX_SECONDS, MAX_SPEED, factors, integer, number
from netsim.workloads.methods import check_method
from netsim.workloads.syncs import SyncPoint, send

MAX_LR = 1e3  # a learning rate beyond this only makes NaNs
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
    fragments: int = 4  # F (streaming_diloco)
    overlap: int = 1  # tau (streaming_diloco)
    alpha: float = 0.5  # mixing of the local and merged fragment (streaming_diloco)
    pull: float = 0.5  # NoLoCo: weight of the pull toward the pair's mean slow weights
    graph: str = "ring"  # gossip: ring, exponential or random
    final_merge: bool = False  # gossip: one global average at the end
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    step_time: float | None = None  # fixed seconds per step; None: measured torch time x time_scale
    time_scale: float = 1.0
    speeds: tuple[float, ...] = ()  # per-worker slowdown factors (stragglers); empty: all 1

    def __post_init__(self) -> None:
        check_method(self.method, training=True)
        if self.exchange not in FORMATS:
            raise ConfigError(f"unknown format {self.exchange!r} (known: {', '.join(FORMATS)})", field="exchange")
        if self.inner_optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"expected adamw or sgd, got {self.inner_optimizer!r}", field="inner_optimizer")
        if self.graph not in GRAPHS:
            raise ConfigError(f"unknown graph {self.graph!r} (known: {', '.join(GRAPHS)})", field="graph")
        for name in ("steps", "inner_steps", "batch", "fragments"):
            integer(getattr(self, name), name, lo=1)
        integer(self.overlap, "overlap", lo=0)
        integer(self.seed, "seed", lo=0)
        number(self.lr, "lr", lo=0, lo_open=True, hi=MAX_LR)
        number(self.outer_lr, "outer_lr", lo=0, hi=MAX_LR)
        number(self.outer_momentum, "outer_momentum", lo=0, hi=1)
        if self.outer_momentum == 1:
            raise ConfigError("expected a momentum < 1 (1 never forgets an outer gradient)", field="outer_momentum")
        number(self.alpha, "alpha", lo=0, hi=1)
        number(self.pull, "pull", lo=0, hi=1)
        if self.step_time is not None:
            number(self.step_time, "step_time", lo=0, lo_open=True, hi=MAX_SECONDS)
        number(self.time_scale, "time_scale", lo=0, lo_open=True, hi=MAX_SPEED)
        if self.speeds:
            factors(self.speeds, len(self.speeds))
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(f"expected a ModelConfig, got {self.model!r}", field="model")

    def check_data(self, workers: int) -> None:
        """The corpus split into `workers` shards must hold more than a context (plus the next byte) each."""
        shard = corpus_size() // workers
        if shard <= self.model.context + 1:
            raise ConfigError(f"context {self.model.context} is longer than a data shard: the corpus gives each of "
                              f"{workers} workers {shard} bytes (at most context {max(shard - 2, 0)})",
                              field="model.context")


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


def fragment_slices(model: TinyLM, fragments: int) -> list[torch.Tensor]:
    """Indices into the flat parameter vector per fragment: block l in fragment l mod F; embeddings and
    the final norm travel with fragment 0."""
    owner = []  # block l in fragment l mod F, as in the simulated schedules (fragments may outnumber blocks here)
    for name, p in model.named_parameters():
        part = int(name.split(".")[1]) % fragments if name.startswith("blocks.") else 0
        owner.append(torch.full((p.numel(),), part))
    owner = torch.cat(owner)
    return [torch.nonzero(owner == f).flatten() for f in range(fragments)]


def train(comm: Communicator, cfg: TrainConfig) -> dict:
    """Start the workers as SimPy processes on `comm`'s simulation; run the simulation, then read
    `result["frame"]()` for the per-step losses and times."""
    sim = comm.sim
    m = comm.size
    cfg.check_data(m)
    torch.manual_seed(cfg.seed)
    base = TinyLM(cfg.model)
    start = parameters_to_vector(base.parameters()).detach().clone()
    data = corpus_bytes()
    rows: list[dict] = []
    torch_seconds = np.zeros(m)  # wall time spent in torch forward/backward/optimizer, per worker
    if cfg.speeds and len(cfg.speeds) != m:
        raise ConfigError(f"{len(cfg.speeds)} speed factors for {m} workers", field="speeds")
    speeds = cfg.speeds or (1.0,) * m
    outer = OuterNesterov(start, cfg.outer_lr, cfg.outer_momentum, nesterov=cfg.outer_momentum > 0)
    exchanges: dict = {}
    applied: dict = {}
    slices = fragment_slices(base, cfg.fragments) if cfg.method == "streaming_diloco" else [torch.arange(start.numel())]
    frag_outer = [OuterNesterov(start[idx], cfg.outer_lr, cfg.outer_momentum, nesterov=cfg.outer_momentum > 0)
                  for idx in slices]
    # The schedules the simulated-only runs use (netsim.workloads): which fragments sync after which
    # step, and who pairs with whom (drawn from the simulation's seeded generator).
    periods = -(-cfg.steps // cfg.inner_steps)
    due = due_fragments(StreamingConfig(cfg.inner_steps, len(slices), cfg.overlap, 16, periods))
    rounds_planned = periods + 1
    pairings = (neighbours("random", m, rounds_planned, sim.rng) if cfg.method == "noloco" else [])
    messages: dict[tuple[int, int], tuple] = {}  # (round, sender) -> (outer gradient, slow weights)
    arrivals: dict[tuple[int, int], object] = {}
    rounds: set[int] = set()  # NoLoCo / gossip rounds reached (each a sync without an all-reduce)

    def exchange(t, numel: int | None = None) -> Exchange:
        if t not in exchanges:
            exchanges[t] = Exchange(comm, start.numel() if numel is None else numel, cfg, label=f"{cfg.method}@{t}")
        return exchanges[t]

    def arrival(r: int, sender: int, receiver: int = -1):
        if (r, sender, receiver) not in arrivals:
            arrivals[(r, sender, receiver)] = sim.env.event()
        return arrivals[(r, sender, receiver)]

    plan = neighbours(cfg.graph, m, rounds_planned, sim.rng) if cfg.method == "gossip" else []

    def peer_of(r: int, w: int) -> int:
        """NoLoCo round r (1-based): w's partner, -1 when it sits the round out."""
        peers = pairings[r - 1][w]
        return peers[0] if peers else -1

    def worker(w: int):
        model = TinyLM(cfg.model)
        vector_to_parameters(start.clone(), model.parameters())
        opt = (torch.optim.AdamW(model.parameters(), lr=cfg.lr) if cfg.inner_optimizer == "adamw"
               else torch.optim.SGD(model.parameters(), lr=cfg.lr))
        shard = Shard(data, w, m, cfg.model.context, cfg.batch, cfg.seed)
        pending: dict[int, list[tuple[int, Exchange, int]]] = {}  # step -> [(fragment, exchange, sync step)]
        slow = start.clone()  # NoLoCo: this worker's slow weights
        momentum = torch.zeros_like(start)
        for t in range(1, cfg.steps + 1):
            for p, ex, t0 in pending.pop(t, []):  # streaming: merge fragments whose result is due now
                if not ex.sync.done.processed:
                    yield ex.sync.done
                if (p, t0) not in applied:
                    applied[(p, t0)] = frag_outer[p].step(ex.mean()).clone()
                local = parameters_to_vector(model.parameters()).detach()
                local[slices[p]] = cfg.alpha * local[slices[p]] + (1 - cfg.alpha) * applied[(p, t0)]
                vector_to_parameters(local, model.parameters())
            tic = time.perf_counter()
            opt.zero_grad()
            loss = model.loss(shard.next())
            loss.backward()
            measured = time.perf_counter() - tic
            compute = (cfg.step_time if cfg.step_time is not None else measured * cfg.time_scale) * speeds[w]
            torch_seconds[w] += measured
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
                torch_seconds[w] += _timed(opt.step)
            elif cfg.method == "streaming_diloco":
                torch_seconds[w] += _timed(opt.step)
                for p in due.get(t, []):
                    ex = exchange((p, t), len(slices[p]))
                    local = parameters_to_vector(model.parameters()).detach()
                    ex.contribute(w, frag_outer[p].params - local[slices[p]])
                    pending.setdefault(t + cfg.overlap + 1, []).append((p, ex, t))
            elif cfg.method == "noloco":
                torch_seconds[w] += _timed(opt.step)
                if t % cfg.inner_steps == 0:
                    r = t // cfg.inner_steps
                    rounds.add(r)
                    peer = peer_of(r, w)
                    local = parameters_to_vector(model.parameters()).detach()
                    mine = (quantize(slow - local, cfg.exchange), quantize(slow, cfg.exchange))
                    messages[(r, w)] = mine
                    if peer >= 0:
                        sent = send(comm, w, peer, 2 * payload_bytes(start.numel(), cfg.exchange), tag=f"noloco@{r}")
                        sent.callbacks.append(lambda _e, a=arrival(r, w): a.succeed())
                        yield arrival(r, peer)  # the peer's outer gradient and slow weights are here
                        their = messages[(r, peer)]
                        delta = (mine[0] + their[0]) / 2
                        pair_slow = (mine[1] + their[1]) / 2
                    else:
                        delta, pair_slow = mine[0], mine[1]
                    momentum = cfg.outer_momentum * momentum + delta
                    update = delta + cfg.outer_momentum * momentum
                    slow = slow - cfg.outer_lr * update - cfg.pull * (slow - pair_slow)
                    vector_to_parameters(slow.clone(), model.parameters())
            elif cfg.method == "gossip":
                torch_seconds[w] += _timed(opt.step)
                if t % cfg.inner_steps == 0:
                    r = t // cfg.inner_steps - 1
                    rounds.add(r)
                    local = parameters_to_vector(model.parameters()).detach()
                    messages[(r, w)] = quantize(local, cfg.exchange)
                    for peer in plan[r][w]:
                        sent = send(comm, w, peer, payload_bytes(start.numel(), cfg.exchange), tag=f"gossip@{r}")
                        sent.callbacks.append(lambda _e, a=arrival(r, w, peer): a.succeed())
                    senders = [s_ for s_ in range(m) if w in plan[r][s_]]
                    if senders:
                        yield sim.env.all_of([arrival(r, s_, w) for s_ in senders])
                        mixed = average([local] + [messages[(r, s_)] for s_ in senders])
                        vector_to_parameters(mixed, model.parameters())
            else:
                torch_seconds[w] += _timed(opt.step)
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
        for step in sorted(pending):  # drain: outstanding fragment syncs still cost network time
            for _p, ex, _t0 in pending[step]:
                if not ex.sync.done.processed:
                    yield ex.sync.done
        if cfg.method == "gossip" and cfg.final_merge:  # "a single merging": one global average at the end
            ex = exchange("merge")
            ex.contribute(w, parameters_to_vector(model.parameters()).detach())
            yield ex.sync.done
            vector_to_parameters(ex.mean().clone(), model.parameters())
            with torch.no_grad():
                merged = model.loss(shard.next())
            rows.append({"method": cfg.method, "worker": w, "step": cfg.steps + 1, "time": sim.now,
                         "loss": float(merged.item()), "compute_s": 0.0})

    for w in range(m):
        sim.process(worker(w))

    def syncs() -> int:
        """Synchronisations completed: all-reduces that ended, and NoLoCo / gossip rounds reached."""
        return len(rounds) + sum(1 for ex in exchanges.values() if ex.sync.done.triggered)

    return {"frame": lambda: pl.DataFrame(rows, schema=STEP_SCHEMA).sort("worker", "step"),
            "exchanges": exchanges, "torch_seconds": torch_seconds, "syncs": syncs}


def _timed(fn) -> float:
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic

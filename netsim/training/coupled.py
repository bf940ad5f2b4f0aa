"""Real training on the simulated clock: M workers, each a real TinyLM with its own AdamW (or SGD) and
data shard, in one process. Every step's compute time is the measured torch time (times `time_scale`)
or a fixed `step_time`; every exchange sends the exact bytes of its tensors (after quantisation)
through the simulated network, and the step that needs an exchange's result waits for it: a late
message really is late.

The maths and the timing are separate. The maths never depends on when a message arrives (every step
that uses an exchange's result waits for it), so `train` runs it first, in lock-step over the workers,
and records the run's timing as a `netsim.program.Program`: per worker, one compute node per step (its
measured or fixed seconds) and the communication it makes, with the dependencies the method imposes::

    ddp / diloco (sync step t)   C(w,t) ──► AR(t) on every worker ──► C(w,t+1)
    streaming_diloco             C(w,t0) ──► AR(p,t0) ──► C(w,t0+tau+1)   (fragment p; the steps between
                                                                          do not wait for it)
    noloco / gossip (round r)    C(w,t) ──► send to each partner; recv from each sender ──► C(w,t+1)

The program executor then runs it on the network like any other workload (collectives on the workers'
communicator, in its stream order; each fragment of Streaming DiLoCo on a stream of its own, so
fragments due at one step reduce at once; sends eager). A step's recorded time is when its worker
could go on: the end of its compute, or of the exchange it waits for at that step.

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
from netsim.program import Node, Program, run_program
from netsim.errors import ConfigError
from netsim.training.data import Shard, corpus_bytes, corpus_size
from netsim.training.model import ModelConfig, TinyLM
from netsim.training.outer import OuterNesterov, average
from netsim.training.quantize import FORMATS, payload_bytes, quantize
from netsim.workloads.diloco import StreamingConfig, due_fragments
from netsim.workloads.gossip import GRAPHS, neighbours
from netsim.workloads.limits import MAX_SECONDS, MAX_SPEED, factors, integer, number
from netsim.workloads.methods import check_method

MAX_LR = 1e3  # a learning rate beyond this only makes NaNs
STEP_SCHEMA = {"method": pl.Utf8, "worker": pl.Int64, "step": pl.Int64, "time_s": pl.Float64, "loss": pl.Float64,
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


class _Timing:
    """The run's timing program, recorded as the maths goes: per worker its nodes in the order they run."""

    def __init__(self, workers: int):
        self.nodes: dict[int, list[Node]] = {w: [] for w in range(workers)}
        self.groups: dict[str, tuple[int, ...]] = {}

    def add(self, w: int, kind: str, deps=(), **kw) -> int:
        """A node on worker `w` after `deps` (node ids of w); returns its id."""
        nodes = self.nodes[w]
        nodes.append(Node(rank=w, id=len(nodes), kind=kind, deps=tuple(deps), **kw))
        return len(nodes) - 1


class Exchange:
    """One all-reduce of the workers' values: contributions gathered, then their mean (fp32). `node[w]` is
    worker w's collective node in the timing program."""

    def __init__(self, timing: _Timing, group: str, numel: int, cfg: TrainConfig, label: str):
        self.timing, self.group, self.label, self.fmt = timing, group, label, cfg.exchange
        self.nbytes = payload_bytes(numel, cfg.exchange)
        self.values: dict[int, torch.Tensor] = {}
        self.node: dict[int, int] = {}
        self._mean: torch.Tensor | None = None

    def contribute(self, worker: int, vector: torch.Tensor, after) -> int:
        """Worker `worker` puts in `vector` once its nodes `after` have ended; returns its collective node."""
        self.values[worker] = quantize(vector, self.fmt)
        self.node[worker] = self.timing.add(worker, "collective", after, name=self.label, op="all_reduce",
                                            nbytes=self.nbytes, group=self.group, algo="ring")
        return self.node[worker]

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
    """Train every worker of `comm` (one GPU each) for `cfg.steps` steps now, and start the run's timing
    program on `comm`'s simulation (see the module docstring). Run the simulation, then read
    `result["frame"]()` for the per-step losses and times and `result["calls"]()` for the all-reduces;
    `result["program"]` is the timing program, `result["run"]` its `ProgramRun`."""
    sim = comm.sim
    m = comm.size
    cfg.check_data(m)
    if cfg.speeds and len(cfg.speeds) != m:
        raise ConfigError(f"{len(cfg.speeds)} speed factors for {m} workers", field="speeds")
    speeds = cfg.speeds or (1.0,) * m
    torch.manual_seed(cfg.seed)
    base = TinyLM(cfg.model)
    start = parameters_to_vector(base.parameters()).detach().clone()
    data = corpus_bytes()
    torch_seconds = np.zeros(m)  # wall time spent in torch forward/backward/optimizer, per worker
    outer = OuterNesterov(start, cfg.outer_lr, cfg.outer_momentum, nesterov=cfg.outer_momentum > 0)
    slices = fragment_slices(base, cfg.fragments) if cfg.method == "streaming_diloco" else [torch.arange(start.numel())]
    frag_outer = [OuterNesterov(start[idx], cfg.outer_lr, cfg.outer_momentum, nesterov=cfg.outer_momentum > 0)
                  for idx in slices]
    # The schedules the simulated-only runs use (netsim.workloads): which fragments sync after which
    # step, and who pairs with whom (drawn from the simulation's seeded generator).
    periods = -(-cfg.steps // cfg.inner_steps)
    due = due_fragments(StreamingConfig(cfg.inner_steps, len(slices), cfg.overlap, 16, periods))
    rounds_planned = periods + 1
    pairings = neighbours("random", m, rounds_planned, sim.rng) if cfg.method == "noloco" else []
    plan = neighbours(cfg.graph, m, rounds_planned, sim.rng) if cfg.method == "gossip" else []
    timing = _Timing(m)
    exchanges: dict = {}
    rows: list[list] = []  # [worker, step, loss, compute seconds, the nodes whose end is the row's time]
    rounds = 0  # NoLoCo / gossip rounds (each a sync without an all-reduce)

    def exchange(t, group: str = "workers", numel: int | None = None) -> Exchange:
        if t not in exchanges:
            timing.groups.setdefault(group, tuple(range(m)))
            exchanges[t] = Exchange(timing, group, start.numel() if numel is None else numel, cfg,
                                    label=f"{cfg.method}@{t}")
        return exchanges[t]

    models, opts, shards = [], [], []
    for w in range(m):
        model = TinyLM(cfg.model)
        vector_to_parameters(start.clone(), model.parameters())
        models.append(model)
        opts.append(torch.optim.AdamW(model.parameters(), lr=cfg.lr) if cfg.inner_optimizer == "adamw"
                    else torch.optim.SGD(model.parameters(), lr=cfg.lr))
        shards.append(Shard(data, w, m, cfg.model.context, cfg.batch, cfg.seed))
    pending: list[dict[int, list[tuple[int, Exchange, int]]]] = [{} for _ in range(m)]  # step -> fragment merges
    waits: list[list[int]] = [[] for _ in range(m)]  # nodes the worker's next compute waits for
    slow = [start.clone() for _ in range(m)]  # NoLoCo: each worker's slow weights
    momentum = [torch.zeros_like(start) for _ in range(m)]
    applied: dict = {}

    for t in range(1, cfg.steps + 1):
        step_rows = []
        for w in range(m):  # every worker's step, up to what it puts into an exchange
            model = models[w]
            deps = waits[w]
            for p, ex, t0 in pending[w].pop(t, []):  # streaming: merge fragments whose result is due now
                deps.append(ex.node[w])
                if (p, t0) not in applied:
                    applied[(p, t0)] = frag_outer[p].step(ex.mean()).clone()
                local = parameters_to_vector(model.parameters()).detach()
                local[slices[p]] = cfg.alpha * local[slices[p]] + (1 - cfg.alpha) * applied[(p, t0)]
                vector_to_parameters(local, model.parameters())
            tic = time.perf_counter()
            opts[w].zero_grad()
            loss = model.loss(shards[w].next())
            loss.backward()
            measured = time.perf_counter() - tic
            compute = (cfg.step_time if cfg.step_time is not None else measured * cfg.time_scale) * speeds[w]
            torch_seconds[w] += measured
            c = timing.add(w, "compute", deps, name=f"step {t}", duration=compute)
            after = [c]  # what the step's recorded time and the worker's next step wait for
            if cfg.method == "ddp":
                after = [exchange(t).contribute(w, parameters_to_vector(p.grad for p in model.parameters()), (c,))]
            else:
                torch_seconds[w] += _timed(opts[w].step)
                local = parameters_to_vector(model.parameters()).detach()
                if cfg.method == "streaming_diloco":
                    for p in due.get(t, []):
                        ex = exchange((p, t), f"fragment {p}", len(slices[p]))
                        ex.contribute(w, frag_outer[p].params - local[slices[p]], (c,))
                        pending[w].setdefault(t + cfg.overlap + 1, []).append((p, ex, t))
                elif cfg.method == "diloco" and t % cfg.inner_steps == 0:
                    after = [exchange(t).contribute(w, outer.params - local, (c,))]
            step_rows.append([w, t, float(loss.item()), compute, after])
        sync = t % cfg.inner_steps == 0
        if cfg.method == "ddp":  # every worker steps on the mean gradient
            grads = exchanges[t].mean()
            for w, model in enumerate(models):
                offset = 0
                for p in model.parameters():
                    p.grad = grads[offset:offset + p.numel()].view_as(p).clone()
                    offset += p.numel()
                torch_seconds[w] += _timed(opts[w].step)
        elif cfg.method == "diloco" and sync:  # one outer step for everyone
            applied[t] = outer.step(exchanges[t].mean()).clone()
            for model in models:
                vector_to_parameters(applied[t].clone(), model.parameters())
        elif cfg.method == "noloco" and sync:  # pairs swap outer gradients and slow weights
            r = t // cfg.inner_steps
            rounds += 1
            nbytes = 2 * payload_bytes(start.numel(), cfg.exchange)
            messages = []
            for w, model in enumerate(models):
                local = parameters_to_vector(model.parameters()).detach()
                messages.append((quantize(slow[w] - local, cfg.exchange), quantize(slow[w], cfg.exchange)))
            for w, model in enumerate(models):
                mine = messages[w]
                if pairings[r - 1][w]:  # (pairs: w's partner sends to w too)
                    peer = pairings[r - 1][w][0]
                    c = step_rows[w][4][0]
                    timing.add(w, "send", (c,), name=f"noloco@{r}", peer=peer, nbytes=nbytes, tag=r)
                    step_rows[w][4] = [timing.add(w, "recv", (c,), name=f"noloco@{r}", peer=peer, nbytes=nbytes,
                                                  tag=r)]
                    their = messages[peer]
                    delta, pair_slow = (mine[0] + their[0]) / 2, (mine[1] + their[1]) / 2
                else:
                    delta, pair_slow = mine[0], mine[1]
                momentum[w] = cfg.outer_momentum * momentum[w] + delta
                update = delta + cfg.outer_momentum * momentum[w]
                slow[w] = slow[w] - cfg.outer_lr * update - cfg.pull * (slow[w] - pair_slow)
                vector_to_parameters(slow[w].clone(), model.parameters())
        elif cfg.method == "gossip" and sync:  # average with the round's neighbours
            r = t // cfg.inner_steps - 1
            rounds += 1
            nbytes = payload_bytes(start.numel(), cfg.exchange)
            local = [parameters_to_vector(model.parameters()).detach() for model in models]
            messages = [quantize(v, cfg.exchange) for v in local]
            for w in range(m):
                for peer in plan[r][w]:
                    timing.add(w, "send", step_rows[w][4], name=f"gossip@{r}", peer=peer, nbytes=nbytes, tag=r)
            for w, model in enumerate(models):
                senders = [s_ for s_ in range(m) if w in plan[r][s_]]
                if senders:
                    c = step_rows[w][4][0]
                    step_rows[w][4] = [c] + [timing.add(w, "recv", (c,), name=f"gossip@{r}", peer=s_, nbytes=nbytes,
                                                        tag=r) for s_ in senders]
                    vector_to_parameters(average([local[w]] + [messages[s_] for s_ in senders]), model.parameters())
        for row in step_rows:
            waits[row[0]] = list(row[4])
        rows += step_rows
    if cfg.method == "gossip" and cfg.final_merge:  # "a single merging": one global average at the end
        ex = exchange("merge")
        for w, model in enumerate(models):
            ex.contribute(w, parameters_to_vector(model.parameters()).detach(), waits[w])
        for w, model in enumerate(models):
            vector_to_parameters(ex.mean().clone(), model.parameters())
            with torch.no_grad():
                merged = model.loss(shards[w].next())
            rows.append([w, cfg.steps + 1, float(merged.item()), 0.0, [ex.node[w]]])

    program = Program({w: tuple(nodes) for w, nodes in timing.nodes.items()}, dict(timing.groups),
                      source=f"training ({cfg.method})", format="netsim")
    key = (comm.job, comm.name, "p2p")  # every message on the workers' point-to-point route key
    run = run_program(sim, program, {w: int(comm.nodes[w]) for w in range(m)}, comms=dict.fromkeys(timing.groups, comm),
                      key=key, tag_keys={r: key for r in range(rounds_planned + 1)}, order="recorded", lazy=True)
    index = {(x.rank, x.id): i for i, x in enumerate(program.all_nodes())}

    def frame() -> pl.DataFrame:
        """One row per worker and step that has ended: its loss, and when the worker could go on."""
        _, ends = run.times()
        out = []
        for w, step, loss, compute, nodes in rows:
            t = max(ends[index[(w, n)]] for n in nodes)
            if t == t:  # (NaN: not reached yet)
                out.append({"method": cfg.method, "worker": w, "step": step, "time_s": run.t0 + float(t), "loss": loss,
                            "compute_s": compute})
        return pl.DataFrame(out, schema=STEP_SCHEMA).sort("worker", "step")

    def calls() -> pl.DataFrame:
        """One row per all-reduce: its label, when its last worker arrived and when it ended (NaN: not yet)."""
        times = {(g, k): (a, b) for g, k, a, b in run.call_times()}
        per_group: dict[str, int] = {}
        out = []
        for ex in exchanges.values():
            k = per_group.get(ex.group, 0)
            per_group[ex.group] = k + 1
            a, b = times[(ex.group, k)]
            out.append({"label": ex.label, "size_B": ex.nbytes, "start_s": run.t0 + a, "end_s": run.t0 + b})
        return pl.DataFrame(out, schema={"label": pl.Utf8, "size_B": pl.Int64, "start_s": pl.Float64,
                                         "end_s": pl.Float64})

    def syncs() -> int:
        """Synchronisations completed: all-reduces that ended, and NoLoCo / gossip rounds."""
        return rounds + int(np.isfinite(calls()["end_s"].to_numpy()).sum())

    return {"frame": frame, "calls": calls, "program": program, "run": run, "torch_seconds": torch_seconds,
            "syncs": syncs}


def _timed(fn) -> float:
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic

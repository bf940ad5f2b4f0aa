"""Real training on the simulated clock: each method is a plain torch.distributed script
(`netsim/training/methods/<method>.py`), run on one local rank per worker under the netsim backend
(`netsim.training.launch`), whose recording becomes the run's timing `Program`; the program runs on the
simulated network like any other workload. Every exchange sends the exact bytes of its tensors in the
wire format, and the step that needs an exchange's result waits for it: a late message really is late.

The maths never depends on when a message arrives in the simulation (every step that uses an exchange's
result waits for it), so the scripts run first, for real; each rank logs per step its loss and the
instants its step's compute began and ended and it could go on (`netsim.training.worker`). Those instants
mark the recording (`netsim.traces.recording.read`): a step's compute is the compute between its first
two marks, timed as measured (x `time_scale`) or as a fixed `step_time`, x the worker's speed factor;
with a fixed step time, the script's other compute (outer steps, quantisation) takes no time, and
in either case what the script does before its first step and after its last does not count. A step's
time is when its worker passed its last mark (its compute and the exchange it waits for at that step).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from netsim.collectives import Communicator
from netsim.errors import ConfigError, NetsimError
from netsim.program import Program, run_program
from netsim.training.data import corpus_size
from netsim.training.model import ModelConfig
from netsim.training.quantize import FORMATS
from netsim.workloads.gossip import GRAPHS
from netsim.workloads.limits import MAX_SECONDS, MAX_SPEED, factors, integer, number
from netsim.workloads.methods import check_method

MAX_LR = 1e3  # a learning rate beyond this only makes NaNs
STEP_SCHEMA = {"method": pl.Utf8, "worker": pl.Int64, "step": pl.Int64, "time_s": pl.Float64, "loss": pl.Float64,
               "compute_s": pl.Float64}
METHODS = Path(__file__).resolve().parent / "methods"  # the scripts, one per method, named after it
TIMEOUT = 3600.0  # seconds a method's ranks may run


class TrainingError(NetsimError):
    """A method script failed on its ranks (their output, once per distinct failure)."""


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


def script(method: str) -> Path:
    """The script of a method real training runs."""
    return METHODS / f"{check_method(method, training=True)}.py"


def arguments(cfg: TrainConfig, log: Path) -> list[str]:
    """The command line of `cfg`'s method script."""
    m = cfg.model
    argv = ["--steps", cfg.steps, "--inner-steps", cfg.inner_steps, "--batch", cfg.batch, "--lr", repr(cfg.lr),
            "--inner-optimizer", cfg.inner_optimizer, "--outer-lr", repr(cfg.outer_lr),
            "--outer-momentum", repr(cfg.outer_momentum), "--exchange", cfg.exchange, "--fragments", cfg.fragments,
            "--overlap", cfg.overlap, "--alpha", repr(cfg.alpha), "--pull", repr(cfg.pull), "--graph", cfg.graph,
            "--layers", m.layers, "--width", m.width, "--heads", m.heads, "--context", m.context, "--seed", cfg.seed,
            "--log", log]
    return [str(a) for a in argv] + (["--final-merge"] if cfg.final_merge else [])


def run_script(cfg: TrainConfig, workers: int) -> tuple[Program, dict[int, list]]:
    """Run `cfg`'s method script on `workers` local ranks: the recorded program, marked with each rank's
    steps (`step T`, `step T end`, `step T done`), and each rank's step log."""
    from netsim.training.launch import failure_report, run_ranks
    from netsim.traces.recording import program_from_recording
    from netsim.training.worker import LOG

    with tempfile.TemporaryDirectory(prefix="netsim-train-") as tmp:
        logs, record = Path(tmp) / "logs", Path(tmp) / "recording"
        logs.mkdir()
        record.mkdir()
        codes = run_ranks(script(cfg.method), arguments(cfg, Path(tmp)), workers, logs=logs, record=record,
                          timeout=TIMEOUT)
        if any(codes.values()):
            raise TrainingError(f"the {cfg.method} script failed:\n{failure_report(codes, logs)}")
        steps = {w: json.loads((Path(tmp) / LOG.format(rank=w)).read_text())["steps"] for w in range(workers)}
        marks = {w: [(at, f"step {t}{suffix}") for t, _, begin, end, done in rows
                     for at, suffix in ((begin, ""), (end, " end"), (done, " done")) if at is not None]
                 for w, rows in steps.items()}
        return program_from_recording(record, marks), steps


def _timed(program: Program, steps: dict[int, list], cfg: TrainConfig, speeds) -> tuple[Program, dict]:
    """The program with its compute timed as the module docstring says (and its collectives ring
    algorithms, as netsim's training schedules have them); per (worker, step): the step's compute seconds,
    its measured seconds and its `done` node's id."""
    nodes, per_step = {}, {}
    for w, rank_nodes in program.nodes.items():
        ids = {x.name: x.id for x in rank_nodes if x.kind == "compute" and x.duration == 0 and x.name != "compute"}
        first, last = ids[f"step {steps[w][0][0]}"], ids[f"step {steps[w][-1][0]} done"]
        span: dict[int, int] = {}  # compute node id -> the step whose compute it is
        for t, _, begin, _, _ in steps[w]:
            if begin is not None:
                span.update({i: t for i in range(ids[f"step {t}"] + 1, ids[f"step {t} end"])
                             if rank_nodes[i].kind == "compute"})
        measured: dict[int, float] = {}
        pieces: dict[int, int] = {}
        for i, t in span.items():
            measured[t] = measured.get(t, 0.0) + rank_nodes[i].duration
            pieces[t] = pieces.get(t, 0) + 1
        timed: dict[int, float] = {}
        out = []
        for x in rank_nodes:
            if x.kind == "collective":
                out.append(replace(x, algo="ring"))
                continue
            if x.kind != "compute":
                out.append(x)
                continue
            t, d = span.get(x.id), 0.0
            if first < x.id < last and x.name == "compute":
                if cfg.step_time is None:
                    d = x.duration * cfg.time_scale * speeds[w]
                elif t is not None:  # the step's fixed time, shared by its pieces as measured
                    share = x.duration / measured[t] if measured[t] > 0 else 1 / pieces[t]
                    d = cfg.step_time * speeds[w] * share
            if t is not None:
                timed[t] = timed.get(t, 0.0) + d
            out.append(replace(x, duration=d))
        nodes[w] = tuple(out)
        for t, *_ in steps[w]:
            per_step[(w, t)] = (timed.get(t, 0.0), measured.get(t, 0.0), ids[f"step {t} done"])
    return replace(program, nodes=nodes, source=f"training ({cfg.method})"), per_step


def train(comm: Communicator, cfg: TrainConfig) -> dict:
    """Train every worker of `comm` (one GPU each) for `cfg.steps` steps now, with the method's script on
    one local rank per worker, and start the run's timing program on `comm`'s simulation (see the module
    docstring). Run the simulation, then read `result["frame"]()` for the per-step losses and times and
    `result["calls"]()` for the collective calls; `result["program"]` is the timing program, `result["run"]`
    its `ProgramRun`."""
    sim = comm.sim
    m = comm.size
    cfg.check_data(m)
    if cfg.speeds and len(cfg.speeds) != m:
        raise ConfigError(f"{len(cfg.speeds)} speed factors for {m} workers", field="speeds")
    speeds = cfg.speeds or (1.0,) * m
    recorded, steps = run_script(cfg, m)
    program, per_step = _timed(recorded, steps, cfg, speeds)
    everyone = tuple(range(m))
    comms = {g: comm if members == everyone else
             Communicator(sim, [comm.nodes[r] for r in members], name=f"{comm.name}/{g}", job=comm.job)
             for g, members in program.groups.items()}
    key = (comm.job, comm.name, "p2p")  # every message on the workers' point-to-point route key
    tags = {x.tag for x in program.all_nodes() if x.kind in ("send", "recv")}
    run = run_program(sim, program, {w: int(comm.nodes[w]) for w in range(m)}, comms=comms, key=key,
                      tag_keys=dict.fromkeys(tags, key), lazy=True)
    index = {(x.rank, x.id): i for i, x in enumerate(program.all_nodes())}
    torch_seconds = np.array([sum(per_step[(w, t)][1] for t, *_ in steps[w]) for w in range(m)])
    labels = _call_labels(program, cfg.method)

    def frame() -> pl.DataFrame:
        """One row per worker and step that has ended: its loss, and when the worker could go on."""
        _, ends = run.times()
        out = []
        for w in range(m):
            for t, loss, *_ in steps[w]:
                compute, _, done = per_step[(w, t)]
                end = ends[index[(w, done)]]
                if end == end:  # (NaN: not reached yet)
                    out.append({"method": cfg.method, "worker": w, "step": t, "time_s": run.t0 + float(end),
                                "loss": loss, "compute_s": compute})
        return pl.DataFrame(out, schema=STEP_SCHEMA).sort("worker", "step")

    def calls() -> pl.DataFrame:
        """One row per collective call: its label (method@step it was issued in), bytes, when its last worker
        arrived and when it ended (NaN: not yet)."""
        out = [{"label": labels[(g, k)][0], "size_B": labels[(g, k)][1], "start_s": run.t0 + a, "end_s": run.t0 + b}
               for g, k, a, b in sorted(run.call_times(), key=lambda c: (c[2], c[0], c[1]))]
        return pl.DataFrame(out, schema={"label": pl.Utf8, "size_B": pl.Int64, "start_s": pl.Float64,
                                         "end_s": pl.Float64})

    def syncs() -> int:
        """Synchronisations completed: collective calls that ended, and rounds of messages (one tag each)."""
        return len(tags) + int(np.isfinite(calls()["end_s"].to_numpy()).sum())

    return {"frame": frame, "calls": calls, "program": program, "run": run, "torch_seconds": torch_seconds,
            "syncs": syncs}


def _call_labels(program: Program, method: str) -> dict[tuple[str, int], tuple[str, int]]:
    """(group, call number) -> (``method@step``, bytes), the step being the one rank 0 was in when it called."""
    out, count, step = {}, {}, "0"
    for x in program.nodes[min(program.nodes)]:
        if x.kind == "compute" and x.name.startswith("step ") and x.duration == 0:
            step = x.name.split()[1]
        elif x.kind == "collective":
            k = count.get(x.group, 0)
            count[x.group] = k + 1
            out[(x.group, k)] = (f"{method}@{step}", x.nbytes)
    return out

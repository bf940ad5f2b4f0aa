"""Attention scenarios (`netsim attention`): context-parallel schemes on a fabric, side by side.

A scenario names the fabric (a topology file or inline mapping, and how many of its GPUs), the layer
(sequence, heads, key/value heads, head dim, dtype, batch, causal), the device speed and the schemes;
`simulate_attention` runs each scheme on its own simulation and returns per scheme the `AttentionRun`
and the per-link bytes, `attention_summary` one row per scheme, and `attention_sweep` the time against
sequence length and against the number of GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import polars as pl
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from netsim.config import read_yaml, validated
from netsim.errors import ConfigError
from netsim.scenario.loader import topology_of
from netsim.sim import Simulation
from netsim.topology import Topology
from netsim.workloads.attention import DTYPES, SCHEMES, AttentionRun, AttentionShape, Device, run_attention, schedule

MAX_TASKS = 2_000_000  # schedule tasks (sends and blocks) one run may create: ~N^2 per scheme and layer


def _scheme(value: object) -> object:
    if isinstance(value, str) and value not in SCHEMES:
        raise ValueError(f"unknown scheme {value!r} (known: {', '.join(SCHEMES)})")
    return value


SchemeName = Annotated[Literal[tuple(SCHEMES)], BeforeValidator(_scheme)]
Count = Annotated[int, Field(ge=1, strict=True)]


class AttentionScenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "attention"
    topology: Union[str, dict]
    gpus: Annotated[int, Field(ge=2, le=1024, strict=True)] | None = None  # default: every GPU of the topology
    schemes: Annotated[list[SchemeName], Field(min_length=1)] = list(SCHEMES)
    seq: Annotated[int, Field(ge=1, le=2**24, strict=True)] = 32768
    heads: Annotated[int, Field(ge=1, le=4096, strict=True)] = 32
    kv_heads: Annotated[int, Field(ge=1, le=4096, strict=True)] | None = None
    head_dim: Annotated[int, Field(ge=1, le=4096, strict=True)] = 128
    batch: Annotated[int, Field(ge=1, le=4096, strict=True)] = 1
    dtype: Literal[tuple(DTYPES)] = "bf16"
    causal: bool = False
    backward: bool = False
    tflops: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 125.0
    efficiency: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.5

    def shape(self) -> AttentionShape:
        return AttentionShape(seq=self.seq, heads=self.heads, head_dim=self.head_dim, kv_heads=self.kv_heads,
                              batch=self.batch, dtype=self.dtype, causal=self.causal)

    def device(self) -> Device:
        return Device(self.tflops, self.efficiency)


def load_attention_scenario(path: str | Path) -> tuple[AttentionScenario, Topology]:
    """Read and check an attention scenario file; the topology is built (relative paths: the file's folder)."""
    source = str(path)
    cfg = validated(AttentionScenario, read_yaml(path), source)
    return cfg, check_attention(cfg, topology_of(cfg.topology, source, Path(path).parent), source)


def check_attention(cfg: AttentionScenario, topo: Topology, source: str | None = None) -> Topology:
    """What the schema cannot see: enough GPUs, a sequence and heads that split, the schedules' size."""
    n = cfg.gpus or len(topo.gpus)
    if n > len(topo.gpus):
        raise ConfigError(f"{n} GPUs asked, the topology {topo.name!r} has {len(topo.gpus)}", source=source,
                          field="gpus")
    if n < 2:
        raise ConfigError("context parallelism needs at least 2 GPUs", source=source, field="gpus")
    try:
        shape = cfg.shape()
        for scheme in cfg.schemes:
            tasks = _task_estimate(scheme, n, cfg.backward)
            if tasks > MAX_TASKS:
                raise ConfigError(f"{scheme} on {n} GPUs makes about {tasks:,} tasks, more than {MAX_TASKS:,}",
                                  field="gpus")
            schedule(scheme, shape, n, backward=False)  # the sequence and heads split (cheap for the check)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=source, field=exc.field) from None
    return topo


def _task_estimate(scheme: str, n: int, backward: bool) -> int:
    per = 2 * n * (n - 1) + n if scheme == "ulysses" else 3 * n * (n + 1)
    return per * (2 if backward else 1)


def simulate_attention(cfg: AttentionScenario, topo: Topology, *, scheme: str | None = None,
                       progress=None) -> dict[str, tuple[AttentionRun, pl.DataFrame]]:
    """Each scheme (or just `scheme`) on its own simulation of `topo`, on its first `cfg.gpus` GPUs:
    scheme -> (the run, its links frame)."""
    n = cfg.gpus or len(topo.gpus)
    nodes = topo.gpus[:n]
    out = {}
    for name in ([scheme] if scheme else cfg.schemes):
        if progress is not None:
            progress(name)
        sim = Simulation(topo, seed=0)
        result = run_attention(sim, nodes, schedule(name, cfg.shape(), n, backward=cfg.backward), cfg.device())
        results = sim.run()
        out[name] = (result(), results.links)
    return out


def attention_summary(runs: dict[str, tuple[AttentionRun, pl.DataFrame]]) -> pl.DataFrame:
    """One row per scheme: time, per step, exposed communication, bytes, busiest link and its direction."""
    rows = []
    for name, (run, links) in runs.items():
        busiest = links.sort("carried_B", descending=True).row(0, named=True)
        rows.append({"scheme": name, "gpus": run.ranks, "time_s": run.time_s, "step_s": run.time_s / run.steps,
                     "compute_s": max(run.compute_s), "exposed_comm_s": run.exposed_comm_s,
                     "sent_B": run.bytes_sent, "busiest_link": busiest["name"],
                     "busiest_link_B": int(busiest["carried_B"]),
                     "busiest_link_utilization": float(busiest["mean_utilization"])})
    return pl.DataFrame(rows)


def attention_tasks(runs: dict[str, tuple[AttentionRun, pl.DataFrame]]) -> pl.DataFrame:
    """Every task of every scheme: rank, lane (compute, send-q, send-kv, send-out, ...), step, interval."""
    rows = [{"scheme": name, "rank": r.rank, "lane": r.lane, "step": r.step, "start_s": r.start, "end_s": r.end,
             "size_B": r.nbytes, "peer": r.peer} for name, (run, _) in runs.items() for r in run.records]
    return pl.DataFrame(rows, schema={"scheme": pl.Utf8, "rank": pl.Int64, "lane": pl.Utf8, "step": pl.Int64,
                                      "start_s": pl.Float64, "end_s": pl.Float64, "size_B": pl.Int64, "peer": pl.Int64})


def attention_timeline(tasks: pl.DataFrame) -> dict:
    """The tasks as Chrome trace events (`netsim.program.timeline`): a process per scheme and rank, a thread
    per lane (compute, send-q, send-kv, ...), a slice per task."""
    from netsim.program.timeline import chrome_trace

    schemes = list(dict.fromkeys(tasks["scheme"].to_list()))
    ranks = int(tasks["rank"].max()) + 1 if len(tasks) else 0
    pid = pl.Series([schemes.index(s) * ranks + r for s, r in zip(tasks["scheme"].to_list(), tasks["rank"].to_list())],
                    dtype=pl.Int64)
    rows = tasks.with_columns(pid.alias("rank"), pl.int_range(pl.len()).alias("node"),
                              pl.when(pl.col("lane") == "compute").then(pl.lit("compute"))
                              .otherwise(pl.lit("send")).alias("kind"),
                              (pl.col("lane") + "@" + pl.col("step").cast(pl.Utf8)).alias("name"),
                              pl.lit(None, dtype=pl.Utf8).alias("op"), pl.col("lane").alias("stream"),
                              pl.lit(None, dtype=pl.Float64).alias("recorded_s"))
    names = {i * ranks + r: f"{s} rank {r}" for i, s in enumerate(schemes) for r in range(ranks)}
    return chrome_trace(rows, names=names)


def attention_links(runs: dict[str, tuple[AttentionRun, pl.DataFrame]]) -> pl.DataFrame:
    """Bytes and mean utilisation per directed link (a cable's two directions are two rows), per scheme."""
    return pl.concat([links.filter(pl.col("carried_B") > 0).select(pl.lit(name).alias("scheme"), "name", "tier", "carried_B",
                                                               "mean_utilization")
                      for name, (_, links) in runs.items()])


def attention_sweep(cfg: AttentionScenario, topo: Topology, *, seqs: list[int], gpus: list[int]) -> pl.DataFrame:
    """Time per scheme against sequence length (at `cfg.gpus`) and against GPUs (at `cfg.seq`); a point a
    scheme cannot take (the sequence does not split, or the heads) is left out."""
    rows = []
    for axis, values in (("seq", seqs), ("gpus", gpus)):
        for value in values:
            point = cfg.model_copy(update={axis: value})
            for name in cfg.schemes:
                try:
                    run, _ = simulate_attention(point, topo, scheme=name)[name]
                except ConfigError:
                    continue
                rows.append({"axis": axis, "value": value, "scheme": name, "time_s": run.time_s,
                             "exposed_comm_s": run.exposed_comm_s})
    return pl.DataFrame(rows, schema={"axis": pl.Utf8, "value": pl.Int64, "scheme": pl.Utf8, "time_s": pl.Float64,
                                      "exposed_comm_s": pl.Float64})

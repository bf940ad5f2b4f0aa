"""Replay a `Trace` on a simulated fabric.

A trace is a `netsim.program.Program`; replay runs it with the program executor
(`netsim.program.executor`, whose docstring has the rules): a node starts once the nodes it depends on
are done; compute nodes take their recorded time (x `scale_compute`) on their rank's compute stream, one
at a time, in dependency order (ties by recorded start); a collective starts when every rank of its
group has reached the same call (the k-th collective of the group on each rank) and runs through the
simulated network with netsim's collective algorithms (`algo`, default auto; collectives that have no
such algorithm use auto) on the group's GPUs; a send leaves as soon as its own dependencies are met
(eager; `sends="rendezvous"`: once its receive is posted too) and its receive ends when the data has
arrived. Ranks map to GPUs by `placement`: ``contiguous`` (rank i on the topology's i-th GPU) or
``random`` (a seeded sample).

`rescale(trace, m)` turns an N-rank data-parallel trace into an M-rank one: rank i does what rank
i mod N did, every collective runs over all M ranks with the same buffer size per rank (all_reduce,
broadcast, reduce, all_to_all, barrier) — except all_gather and reduce_scatter, whose buffer is M blocks
of the recorded per-rank block. Traces with point-to-point messages or collectives over a subgroup are
refused: the rule does not say where their peers go.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from netsim.errors import ConfigError
from netsim.program.budget import MAX_NODES, check_budget
from netsim.program.executor import run_program
from netsim.sim import Simulation
from netsim.topology import Topology
from netsim.traces.model import Trace, TraceError

PLACEMENTS = ("contiguous", "random")


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """Iteration time, per-node intervals (`timeline`), per-collective-call records (`collectives`), per-link
    bytes and utilisation (`links`)."""

    time_s: float
    ranks: int
    compute_s: tuple[float, ...]
    timeline: pl.DataFrame
    collectives: pl.DataFrame
    gpus: tuple[str, ...]
    links: pl.DataFrame | None = None
    compressed: tuple[dict, ...] = ()  # runs of repeated collective steps skipped by their period (compress)

    @property
    def exposed_comm_s(self) -> float:
        """Mean over ranks of the iteration time not spent computing."""
        return float(np.mean(self.time_s - np.asarray(self.compute_s)))

    @property
    def steps(self) -> pl.DataFrame:
        """Per recorded optimizer step (a torch recording marks where each ended: `recording.STEP`): when the
        last rank got there (`end_s`) and the iteration it closes (`iteration_s`, from the previous step's
        end, the first from the start). Empty when the program has no such marks."""
        from netsim.traces.recording import STEP

        marks = self.timeline.filter(pl.col("name").str.starts_with(STEP + " "))
        if not len(marks):
            return pl.DataFrame(schema={"step": pl.Int64, "end_s": pl.Float64, "iteration_s": pl.Float64})
        ends = (marks.with_columns(pl.col("name").str.strip_prefix(STEP + " ").cast(pl.Int64).alias("step"))
                .group_by("step").agg(pl.col("end_s").max()).sort("step"))
        return ends.with_columns(pl.col("end_s").diff().fill_null(pl.col("end_s")).alias("iteration_s"))

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (metric, value) lines, values formatted with their units (tables, reports)."""
        from netsim.units import format_time

        s = self.summary()
        rows = [("iteration time", format_time(s["time_s"])), ("compute (busiest rank)", format_time(s["compute_s"])),
                ("exposed communication (mean over ranks)", format_time(s["exposed_comm_s"])),
                ("collective calls", str(s["collective_calls"])), ("point-to-point transfers", str(s["transfers"]))]
        if s["steps_by_period"]:
            rows.append(("collective steps skipped by their period (--compress)", f"{s['steps_by_period']:,}"))
        if self.links is not None and len(self.links) and self.links["carried_B"].max() > 0:
            from netsim.units import format_size

            top = self.links.sort("carried_B", descending=True).row(0, named=True)
            rows.append(("busiest link (bytes, peak utilisation)",
                         f"{top['name']}: {format_size(top['carried_B'])}, {100 * top['peak_utilization']:.0f}%"))
        steps = self.steps
        if len(steps) > 1:  # the first iteration carries the script's start-up: the others are the steady state
            later = steps["iteration_s"][1:]
            rows.append((f"iteration (optimizer steps 2-{len(steps)}: median, max)",
                         f"{format_time(float(later.median()))}, {format_time(float(later.max()))}"))
        if s["recorded_comm_s"] is not None:
            rows += [("collectives, recorded (sum of calls)", format_time(s["recorded_comm_s"])),
                     ("collectives, simulated (same calls)", format_time(s["simulated_comm_s"]))]
        return rows

    def summary(self) -> dict:
        recorded = self.collectives.filter(pl.col("recorded_s").is_not_null())
        return {"time_s": self.time_s, "ranks": self.ranks, "compute_s": max(self.compute_s),
                "exposed_comm_s": self.exposed_comm_s, "collective_calls": len(self.collectives),
                "transfers": int((self.timeline["kind"] == "send").sum()),
                "recorded_comm_s": float(recorded["recorded_s"].sum()) if len(recorded) else None,
                "simulated_comm_s": float(recorded["time_s"].sum()) if len(recorded) else None,
                "steps_by_period": sum(n["steps"] - n["simulated"] for n in self.compressed)}


def rescale(trace: Trace, m: int, *, gpus: int | None = None, max_nodes: int | None = None) -> Trace:
    """The data-parallel trace on `m` ranks (see the module docstring). Checked before anything is built:
    `m` against the topology's `gpus`, and the nodes the result would hold against `max_nodes` (None:
    `budget.MAX_NODES`)."""
    if m < 1:
        raise ConfigError(f"expected a rank count >= 1, got {m}", field="--rescale")
    if gpus is not None and m > gpus:
        raise ConfigError(f"{m} ranks do not fit the topology's {gpus} GPUs", field="--rescale")
    per_rank = [len(trace.nodes[r]) for r in trace.ranks]  # rank i does what rank i mod n did
    check_budget(m // len(per_rank) * sum(per_rank) + sum(per_rank[: m % len(per_rank)]), f"rescaling to {m} ranks",
                 max_nodes, source=trace.source, unit="program nodes", ceiling=MAX_NODES)
    n = len(trace.nodes)
    world = tuple(trace.ranks)
    for node in trace.all_nodes():
        if node.kind in ("send", "recv"):
            raise TraceError(f"rank {node.rank} node {node.id}: point-to-point messages (pipeline or tensor "
                             "parallel) cannot be rescaled: only data-parallel traces can", source=trace.source)
        if node.kind == "collective" and trace.groups[node.group] != world:
            raise TraceError(f"rank {node.rank} node {node.id}: a collective over the subgroup {node.group!r} cannot "
                             "be rescaled: only data-parallel traces (every collective over all ranks) can",
                             source=trace.source)
    groups = {"world": tuple(range(m))}
    nodes = {}
    for r in range(m):
        template = trace.nodes[world[r % n]]
        out = []
        for node in template:
            if node.kind == "collective":
                nbytes = node.nbytes
                if node.op in ("all_gather", "reduce_scatter"):
                    nbytes = node.nbytes // n * m
                node = replace(node, nbytes=nbytes, group="world")
            out.append(replace(node, rank=r))
        nodes[r] = tuple(out)
    return Trace(nodes, groups, trace.source, trace.format, dict(trace.skipped))


def place(topo: Topology, ranks: int, placement: str, seed: int) -> np.ndarray:
    if placement not in PLACEMENTS:
        raise ConfigError(f"unknown placement {placement!r} (known: {', '.join(PLACEMENTS)})", field="--placement")
    if ranks > len(topo.gpus):
        raise ConfigError(f"the trace has {ranks} ranks, the topology {topo.name!r} {len(topo.gpus)} GPUs",
                          field="--topology")
    if placement == "contiguous":
        return topo.gpus[:ranks].copy()
    rng = np.random.default_rng([seed, 0x7265706C6179])
    return rng.choice(topo.gpus, size=ranks, replace=False)


def replay(trace: Trace, topo: Topology, *, routing: str = "ecmp", placement: str = "contiguous",
           scale_compute: float = 1.0, algo: str = "auto", seed: int = 0, sends: str = "eager",
           max_transfers: int | None = None, compress: int = 0) -> ReplayResult:
    """Replay `trace` (validated) on `topo` with the program executor; see the module docstring. `compress`:
    as `Simulation`'s (long runs of repeated collective steps simulated M steps, the rest by their period)."""
    ranks = trace.ranks
    gpus = place(topo, len(ranks), placement, seed)
    sim = Simulation(topo, routing=routing, seed=seed, transfers="drop", compress=compress)  # timeline: run's
    run = run_program(sim, trace, dict(zip(ranks, gpus.tolist())), algo=algo, scale_compute=scale_compute,
                      sends=sends, max_transfers=max_transfers, lazy=True)
    results = sim.run(run.done)
    result = run.result()
    names = tuple(topo.node_names[g] for g in gpus)
    return ReplayResult(result.time_s, len(ranks), tuple(result.compute_s[r] for r in ranks), result.nodes,
                        result.calls, names, results.links, tuple(sim.meta.get("compressed", ())))


def replayed_trace(trace: Trace, result: ReplayResult) -> Trace:
    """The trace with each node's simulated interval as its recorded start and duration (what netsim
    writes after a replay, so the run can be replayed or compared elsewhere)."""
    times = {(r["rank"], r["node"]): (r["start_s"], r["end_s"]) for r in result.timeline.iter_rows(named=True)}
    nodes = {r: tuple(replace(n, start=times[(r, n.id)][0], duration=times[(r, n.id)][1] - times[(r, n.id)][0])
                      for n in trace.nodes[r]) for r in trace.ranks}
    return Trace(nodes, dict(trace.groups), trace.source, "netsim", dict(trace.skipped))


__all__ = ["PLACEMENTS", "ReplayResult", "place", "replay", "replayed_trace", "rescale"]

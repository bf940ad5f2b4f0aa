"""nccl-tests-style collective benchmarks: one simulated call per (algorithm, size).

Columns and bus-bandwidth factors are those of nccl-tests (`all_reduce_perf` and friends): size,
count in float elements, time, algbw = size / time and busbw = algbw x factor. The rows hold them in
netsim's units (`size_B`, `time_s`, `algbw_Bps`, `busbw_Bps`); `format_table` prints them as nccl-tests
does (microseconds, GB/s = 1e9 bytes/s), so a row can be set beside a real run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from netsim.collectives import Communicator, bus_bandwidth
from netsim.errors import ConfigError
from netsim.network import NetworkOptions
from netsim.sim import Simulation
from netsim.topology import Topology
from netsim.units import parse_size
from netsim.workloads.nccl_tests import Measurement

FLOAT_BYTES = 4
_NCCL_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])\s*$", re.IGNORECASE)


def parse_bench_size(text: str, flag: str) -> int:
    """Sizes as nccl-tests reads them: '8', '64K', '8G' (K, M, G binary), or any netsim size ('1MB')."""
    match = _NCCL_SIZE.match(str(text))
    if match:
        return int(float(match.group(1)) * 1024 ** ("KMGT".index(match.group(2).upper()) + 1))
    return parse_size(text, field=flag)


MAX_SIZES = 1000  # sizes in one sweep; nccl-tests' doubling from 8 B to 8 GiB is 31


def size_range(begin: int, end: int, factor: float = 2.0, increment: int = 0, limit: int = MAX_SIZES) -> list[int]:
    """begin, then times `factor` (or plus `increment`) up to `end`, as nccl-tests steps -b to -e;
    more than `limit` sizes is refused (before they are generated)."""
    if begin < 0 or end < begin:
        raise ConfigError(f"need 0 <= begin <= end, got {begin} and {end}", field="-b/-e")
    if increment < 0:
        raise ConfigError(f"step bytes must be >= 0, got {increment}", field="-i")
    if increment <= 0 and not factor > 1:
        raise ConfigError(f"step factor must be > 1, got {factor}", field="-f")
    if increment > 0 and (end - begin) // increment + 1 > limit:
        raise ConfigError(f"{(end - begin) // increment + 1:,} sizes, more than {limit:,}; use a larger step",
                          field="-i")
    sizes, size = [], begin
    while size <= end:
        if len(sizes) == limit:
            raise ConfigError(f"more than {limit:,} sizes from {begin} to {end}; use a larger step factor",
                              field="-f")
        sizes.append(size)
        nxt = size + increment if increment > 0 else int(size * factor)
        size = nxt if nxt > size else size + 1
    return sizes


@dataclass(frozen=True)
class BenchRow:
    algo: str
    chosen: str  # the algorithm that ran (differs from `algo` for auto)
    size_B: int
    count: int  # float elements
    type: str
    redop: str
    root: int
    time_s: float
    algbw_Bps: float
    busbw_Bps: float
    skipped_steps: int = 0  # repeated steps skipped by their period (`compress`); 0: every step simulated

    def as_dict(self) -> dict:
        return asdict(self)


COLLECTIVES = ("ideal", "nccl")  # how a call runs: netsim's algorithms at line rate, or NCCL's model of them


def run_bench(topology: Topology, op: str, sizes: list[int], algos: list[str], *, ranks: int | None = None,
              network: str = "fluid", routing: str = "ecmp", seed: int = 0, chunks: int = 1,
              options: NetworkOptions | None = None, collectives: str = "ideal", arch: int = 90,
              compress: int = 0) -> list[BenchRow]:
    """One fresh simulation per (algorithm, size); the call's simulated duration is the time. `compress` M
    simulates M steps of each long run of repeated steps and skips the rest by their period
    (`netsim.collectives.repeats`; the row's `skipped_steps` says how many).

    ``collectives="nccl"`` runs each size as NCCL would (`Communicator.plan`, `netsim.collectives.nccl`): its
    tuner picks the algorithm and protocol (``auto``: ring or tree; ``ring`` or ``tree`` forces one), the
    protocol's lines travel on the wire, every step pays the hop's hardware latency, each connection is held to
    its channels' speed, and the call pays the base latency once. `arch` is the GPUs' compute capability x 10
    (90: Hopper)."""
    nodes = topology.gpus if ranks is None else topology.gpus[:ranks]
    if ranks is not None and not 1 <= ranks <= len(topology.gpus):
        raise ConfigError(f"must be between 1 and {len(topology.gpus)} (the topology's GPUs), got {ranks}",
                          field="--ranks")
    rows = []
    for algo in algos:
        for size in sizes:
            sim = Simulation(topology, network=network, routing=routing, seed=seed, options=options,
                             record_links=False, collectives=collectives, sm=arch, transfers="drop",
                             compress=compress)
            done = Communicator(sim, nodes, name="bench").run(op, size, algo=algo, chunks=chunks)
            call = sim.run(done).collectives.row(0, named=True)  # what ran: the choice `auto` (or NCCL) made
            seconds = float(done.value)
            n = len(nodes)
            algbw = size / seconds if seconds > 0 else 0.0
            busbw = bus_bandwidth(op, n, size, seconds) if seconds > 0 else 0.0
            root = 0 if op in ("broadcast", "reduce") else -1
            redop = "sum" if op in ("all_reduce", "reduce_scatter", "reduce") else "none"
            chosen = call["algo"] if call["chunks"] == 1 else f"{call['algo']}x{call['chunks']}"
            skipped = sum(n["steps"] - n["simulated"] for n in sim.meta.get("compressed", []))
            rows.append(BenchRow(algo, chosen, size, size // FLOAT_BYTES, "float", redop, root, seconds, algbw,
                                 busbw, skipped))
    return rows


def beside_measured(rows: list[BenchRow], measured: Measurement | None) -> list[dict]:
    """The rows as dicts; with a measurement, each with the measured out-of-place time and busbw of its size
    and `time_error` = simulated / measured time - 1 (positive: the simulation is slower)."""
    records = [r.as_dict() for r in rows]
    if measured is None:
        return records
    by_size = {m.size_B: m for m in measured.rows}
    for r in records:
        m = by_size.get(r["size_B"])
        r["measured_time_s"] = None if m is None else m.time_s
        r["measured_busbw_Bps"] = None if m is None else m.busbw_Bps
        r["time_error"] = r["time_s"] / m.time_s - 1 if m is not None and m.time_s > 0 else None
    return records


def geometric_mean_error(errors: list[float]) -> float:
    """The geometric mean of relative errors |simulated / measured - 1| (each floored at 1e-6, so one exact size
    does not make the mean zero): the figure peers quote against nccl-tests."""
    return float(np.exp(np.mean(np.log(np.maximum(errors, 1e-6)))))


def format_table(op: str, n: int, rows: list[BenchRow], measured: Measurement | None = None) -> str:
    """The rows as nccl-tests prints them, one block per algorithm; with a measurement, its busbw and the
    time error beside each row, and the geometric mean of |time error| per algorithm."""
    lines = []
    records = beside_measured(rows, measured)  # the measured time, busbw and error of each row's size
    for algo in dict.fromkeys(r.algo for r in rows):
        lines.append(f"# netsim {op}: {n} ranks, algorithm {algo}")
        extra = f"{'busbw':>8}{'error':>8}" if measured is not None else ""
        lines.append(f"#{'size':>13}{'count':>14}{'type':>7}{'redop':>7}{'root':>6}{'time':>11}{'algbw':>8}"
                     f"{'busbw':>8}{extra}  algo")
        extra = f"{'(real)':>8}{'(time)':>8}" if measured is not None else ""
        lines.append(f"#{'(B)':>13}{'(elements)':>14}{'':>7}{'':>7}{'':>6}{'(us)':>11}{'(GB/s)':>8}{'(GB/s)':>8}"
                     f"{extra}")
        errors = []
        for r, rec in zip(rows, records):
            if r.algo == algo:
                extra = f"{'-':>8}{'-':>8}" if measured is not None else ""
                if rec.get("time_error") is not None:
                    errors.append(abs(rec["time_error"]))
                    extra = f"{rec['measured_busbw_Bps'] / 1e9:>8.2f}{100 * rec['time_error']:>7.1f}%"
                lines.append(f"{r.size_B:>14}{r.count:>14}{r.type:>7}{r.redop:>7}{r.root:>6}{r.time_s * 1e6:>11.2f}"
                             f"{r.algbw_Bps / 1e9:>8.2f}{r.busbw_Bps / 1e9:>8.2f}{extra}  {r.chosen}"
                             + (f" ~{r.skipped_steps} steps by period" if r.skipped_steps else ""))
        if errors:
            lines.append(f"# Time error against {measured.source}: geometric mean "
                         f"{100 * geometric_mean_error(errors):.1f}%, largest {100 * max(errors):.1f}%")
        average = float(np.mean([r.busbw_Bps for r in rows if r.algo == algo])) / 1e9
        lines.append(f"# Avg bus bandwidth    : {average:.4g}")
        lines.append("")
    return "\n".join(lines)

"""Work estimates: refuse, before it starts, work that would create more transfers or nodes than a laptop
run should (a million-size sweep, 1e8 pipelined chunks, a 10,000-rank trace), with the estimate in the
message.

The estimate is exact for collectives and costs next to nothing: each algorithm's transfer count with
one chunk in closed form (`Algorithm.count`, checked against the schedules in the tests; an algorithm
without one has its schedule built and counted, which is cheap for those: log-depth trees, halving-
doubling, barriers); pipelined chunks copy every transfer once per chunk. Work that starts millions of transfers at one
instant (a direct all-to-all on thousands of ranks) is refused too, past `MAX_FLOWS_AT_ONCE`: its memory
and its max-min recomputations grow faster than its transfer count. Refusals say how long the work would take here
(`estimated_seconds`, from the measured throughput). Under compression (`Simulation(compress=M)`) a call of an algorithm whose
steps repeat (rings, hierarchical) is counted as it will run, its long runs of one step cut to M
(`netsim.collectives.repeats`), from its schedule with one chunk. The ceilings — `MAX_TRANSFERS` (5 million
transfers: at most a couple of minutes of fluid simulation) and `MAX_NODES` (5 million program nodes) — are lifted
with `--max-transfers N`.
"""

from __future__ import annotations

from netsim.collectives import Communicator
from netsim.collectives.algorithms import ALGORITHMS
from netsim.collectives.repeats import simulated_transfers
from netsim.errors import ConfigError

MAX_TRANSFERS = 5_000_000
MAX_NODES = 5_000_000


def call_work(comm: Communicator, op: str, nbytes: int, algo: str = "auto", chunks: int = 1,
              root: int = 0) -> tuple[int, int]:
    """(transfers one call of `op` on `comm` creates, the most of them it starts at the same instant), with
    `auto` resolved once, as the run would. At once: a direct exchange's whole step (n(n - 1) for all-to-all,
    reduce-scatter, all-gather and all-reduce), pipelined chunks included; every other algorithm moves at
    most a transfer or two per rank and step."""
    if op == "send_recv":
        return chunks, chunks
    d = comm.decide(op, nbytes, algo, chunks, root)  # as the run decides: `auto`, or NCCL's pick and pipeline
    n = comm.size
    per_step = n * (n - 1) if d.algo == "direct" and op not in ("broadcast", "reduce") else 2 * n
    algorithm, one = ALGORITHMS[op][d.algo], comm.request(d.request.nbytes, 1, root)
    if comm.sim.compress and algorithm.repeats:  # what runs: long runs of one step cut short (chunks copy them)
        base = algorithm.build(one)
        return simulated_transfers(base.steps, base.num_ranks, comm.sim.compress) * d.chunks, per_step * d.chunks
    return algorithm.transfers(one) * d.chunks, per_step * d.chunks


def collective_transfers(comm: Communicator, op: str, nbytes: int, algo: str = "auto", chunks: int = 1,
                         root: int = 0) -> int:
    """Transfers one call of `op` on `comm` creates (`auto` resolved as the run would)."""
    return call_work(comm, op, nbytes, algo, chunks, root)[0]


MAX_FLOWS_AT_ONCE = 2_000_000  # transfers started at one instant: past this, memory and max-min cost explode
BYTES_PER_FLOW = 1536  # what one live flow costs the fluid model (measured: 1.5 GiB for 1M flows at once)


TRANSFERS_PER_SECOND = 50_000  # the slow end of the measured range (50k-880k/s on 2 cores: benchmarks/)
AT_ONCE_SECONDS = 4.1e-8  # x (transfers started at once)^1.5: a direct all-to-all of 1M transfers took 41 s


def estimated_seconds(transfers: int, at_once: int = 0) -> float:
    """A rough wall-clock estimate of a run on this kind of machine (2 cores): its transfers at the slow end
    of the measured throughput, plus what a huge simultaneous step costs (memory and max-min grow faster
    than its size). For the messages that refuse work; an order of magnitude, not a promise."""
    return transfers / TRANSFERS_PER_SECOND + AT_ONCE_SECONDS * float(at_once) ** 1.5


def _about(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    return "about " + (f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h")


def check_flows_at_once(estimate: int, what: str, *, source: str | None = None) -> None:
    """Refuse work that starts more than `MAX_FLOWS_AT_ONCE` transfers at one instant, with the memory that
    would take; `--max-transfers N` (any N) lifts this check."""
    if estimate > MAX_FLOWS_AT_ONCE:
        gib = estimate * BYTES_PER_FLOW / 2**30
        raise ConfigError(f"{what} would start about {estimate:,} transfers at one instant (about {gib:.0f} GiB "
                          f"and {_about(estimated_seconds(estimate, estimate))} here), more than the limit of "
                          f"{MAX_FLOWS_AT_ONCE:,}; use fewer "
                          f"ranks or another algorithm, or lift the limit with --max-transfers", source=source,
                          field="--max-transfers")


def check_budget(estimate: int, what: str, limit: int | None, *, source: str | None = None,
                 field: str = "--max-transfers", unit: str = "transfers", ceiling: int = MAX_TRANSFERS) -> None:
    """Refuse work estimated at more than `limit` transfers (or other `unit`s; None: the default ceiling)."""
    limit = ceiling if limit is None else limit
    if estimate > limit:
        took = f" ({_about(estimated_seconds(estimate))} of simulation here)" if unit == "transfers" else ""
        rings = " (rings: or skip their repeated steps with --compress 16, network.compress in a scenario)" \
            if unit == "transfers" else ""
        raise ConfigError(f"{what} would create about {estimate:,} {unit}{took}, more than the limit of {limit:,}; "
                          f"lower it, or raise the limit with {field} {estimate}{rings}", source=source, field=field)


__all__ = ["MAX_FLOWS_AT_ONCE", "MAX_NODES", "MAX_TRANSFERS", "check_budget", "check_flows_at_once",
           "call_work", "collective_transfers", "estimated_seconds"]

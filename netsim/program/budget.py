"""Work estimates: refuse, before it starts, work that would create more transfers or nodes than a laptop
run should (a million-size sweep, 1e8 pipelined chunks, a 10,000-rank trace), with the estimate in the
message.

The estimate is exact for collectives and costs next to nothing: each algorithm's transfer count with
one chunk in closed form (`Algorithm.count`, checked against the schedules in the tests; an algorithm
without one has its schedule built and counted, which is cheap for those: log-depth trees, halving-
doubling, barriers); pipelined chunks copy every transfer once per chunk. The ceilings — `MAX_TRANSFERS` (5 million
transfers: a few minutes of fluid simulation) and `MAX_NODES` (5 million program nodes) — are lifted
with `--max-transfers N`.
"""

from __future__ import annotations

from netsim.collectives import Communicator
from netsim.collectives.algorithms import ALGORITHMS
from netsim.errors import ConfigError

MAX_TRANSFERS = 5_000_000
MAX_NODES = 5_000_000


def collective_transfers(comm: Communicator, op: str, nbytes: int, algo: str = "auto", chunks: int = 1,
                         root: int = 0) -> int:
    """Transfers one call of `op` on `comm` creates (`auto` resolved as the run would)."""
    if op == "send_recv":
        return chunks
    chosen, used_chunks, _ = comm.resolve(op, nbytes, algo, chunks, root)
    return ALGORITHMS[op][chosen].transfers(comm.request(nbytes, 1, root)) * used_chunks


def check_budget(estimate: int, what: str, limit: int | None, *, source: str | None = None,
                 field: str = "--max-transfers", unit: str = "transfers", ceiling: int = MAX_TRANSFERS) -> None:
    """Refuse work estimated at more than `limit` transfers (or other `unit`s; None: the default ceiling)."""
    limit = ceiling if limit is None else limit
    if estimate > limit:
        raise ConfigError(f"{what} would create about {estimate:,} {unit}, more than the limit of {limit:,}; "
                          f"lower it, or raise the limit with {field} {estimate}", source=source, field=field)


__all__ = ["MAX_NODES", "MAX_TRANSFERS", "check_budget", "collective_transfers"]

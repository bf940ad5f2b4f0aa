"""Collectives one after another, from plain Python: no SimPy code to write."""

from __future__ import annotations

from typing import Iterable

from netsim.collectives.communicator import Communicator
from netsim.sim import Simulation


def run_sequence(sim: Simulation, calls: Iterable[tuple], *, algo: str = "auto") -> list[float]:
    """Run `calls` — ``(communicator, op, size)`` tuples, or ``(communicator, op, size, options)`` with a dict
    of `Communicator.run` options such as ``{"algo": "ring"}`` — each starting when the one before it has
    ended, on `sim` (which may hold other work too); returns each call's end time in seconds.

    >>> from netsim import Communicator, Simulation, load_topology
    >>> sim = Simulation(load_topology("nvlink8"), record_links=False)
    >>> comm = Communicator(sim, sim.topology.gpus)
    >>> [round(t * 1e3, 3) for t in run_sequence(sim, [(comm, "all_reduce", "1GiB"), (comm, "broadcast", "1GiB")])]
    [4.19, 6.869]
    """
    calls = [tuple(c) for c in calls]
    ends: list[float] = []

    def chain():
        for call in calls:
            comm, op, size = call[:3]
            options = {"algo": algo, **(call[3] if len(call) > 3 else {})}
            if not isinstance(comm, Communicator):
                raise TypeError(f"expected (Communicator, op, size), got {call!r}")
            yield comm.run(op, size, **options)
            ends.append(sim.now)

    sim.run(sim.process(chain()))
    return ends


__all__ = ["run_sequence"]

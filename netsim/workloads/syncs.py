"""Sync points: a collective that starts when the last worker reaches it, while workers that are not
waiting for its result keep computing (the overlap of low-communication training)."""

from __future__ import annotations

import simpy

from netsim.collectives import Communicator


class SyncPoint:
    """All `workers` arrive (at their own times); then `comm` all-reduces `nbytes`; `done` fires at its end."""

    def __init__(self, comm: Communicator, nbytes: int, workers: int, label: str, algo: str = "ring"):
        self.comm, self.nbytes, self.workers, self.label, self.algo = comm, nbytes, workers, label, algo
        self.arrived = 0
        self.start: float | None = None
        self.done: simpy.Event = comm.sim.env.event()

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived == self.workers:
            self.start = self.comm.sim.now
            run = self.comm.run("all_reduce", self.nbytes, algo=self.algo, label=self.label)
            run.callbacks.append(lambda e: self.done.succeed(e.value))

"""Sync points: a collective that starts when the last worker reaches it, while workers that are not
waiting for its result keep computing (the overlap of low-communication training)."""

from __future__ import annotations

import numpy as np
import simpy

from netsim.collectives import Communicator


class SyncPoint:
    """All `workers` arrive (at their own times); then `comm` all-reduces `nbytes`; `done` fires at its end."""

    def __init__(self, comm: Communicator, nbytes: int, workers: int, label: str, algo: str = "ring"):
        self.comm, self.nbytes, self.workers, self.label, self.algo = comm, nbytes, workers, label, algo
        self.arrived = 0
        self.arrivals: list[tuple[int, float]] = []  # (worker, time it arrived)
        self.start: float | None = None
        self.done: simpy.Event = comm.sim.env.event()

    def arrive(self, worker: int = -1) -> None:
        self.arrived += 1
        self.arrivals.append((worker, self.comm.sim.now))
        if self.arrived == self.workers:
            self.start = self.comm.sim.now
            run = self.comm.run("all_reduce", self.nbytes, algo=self.algo, label=self.label)
            run.callbacks.append(lambda e: self.done.succeed(e.value))


def barrier_wait(points, workers: int) -> np.ndarray:
    """Per worker: seconds between arriving at each sync and the last worker arriving there."""
    wait = np.zeros(workers)
    for p in points:
        if p.start is not None:
            for w, t in p.arrivals:
                if w >= 0:
                    wait[w] += p.start - t
    return wait

"""Gossip-style exchanges without a global barrier: D-SGD over a graph and NoLoCo's random pairs.

Every `every` inner steps a worker sends its payload to its neighbours of that round and waits
only for what its own neighbours send it — never for the whole group. Graphs: `ring` (both
neighbours), `exponential` (one peer per round, 2^(r mod log2 n) ahead, as in one-peer exponential
graphs), `random` (a fresh random perfect matching each round, drawn from the seeded generator;
with an odd count one worker sits the round out). NoLoCo is `random` with the outer gradient and
the slow weights as payload. Optionally one global all-reduce at the end ("a single merging").
"""

from __future__ import annotations

import math

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel, check_jitter, jitter_factors
from netsim.workloads.limits import factors, integer
from netsim.workloads.syncs import send

GRAPHS = ("ring", "exponential", "random")


def neighbours(graph: str, n: int, rounds: int, rng: np.random.Generator) -> list[list[list[int]]]:
    """For each round, for each worker, the workers it sends to (and receives from: all graphs here are
    symmetric per round except `exponential`, where w sends ahead and receives from behind)."""
    if graph not in GRAPHS:
        raise ConfigError(f"unknown graph {graph!r} (known: {', '.join(GRAPHS)})", field="graph")
    out = []
    for r in range(rounds):
        if graph == "ring":
            out.append([sorted({(w - 1) % n, (w + 1) % n} - {w}) for w in range(n)])
        elif graph == "exponential":
            hop = 2 ** (r % max(1, math.ceil(math.log2(n))))
            out.append([[(w + hop) % n] if (w + hop) % n != w else [] for w in range(n)])
        else:
            order = rng.permutation(n)
            peer = [[] for _ in range(n)]
            for a, b in zip(order[0::2], order[1::2]):
                peer[int(a)], peer[int(b)] = [int(b)], [int(a)]
            out.append(peer)
    return out


def run_gossip(comm: Communicator, model: ComputeModel, *, every: int, steps: int, payload: int, graph: str,
               final_merge: bool = False, speeds: np.ndarray | None = None, jitter: float = 0.0) -> dict:
    sim = comm.sim
    n = comm.size
    integer(every, "inner_steps", lo=1)
    integer(steps, "steps", lo=1)
    integer(payload, "payload", lo=0)
    check_jitter(jitter)
    speeds = np.ones(n) if speeds is None else factors(speeds, n)
    rounds = steps // every
    plan = neighbours(graph, n, rounds, sim.rng)
    inbox: dict[tuple[int, int, int], object] = {}  # (round, receiver, sender) -> arrival event
    compute = np.zeros(n)
    arrived: dict[tuple[int, int], float] = {}  # (round, worker) -> when it reached the round
    waits = np.zeros(n)
    done = {"merged": None}

    def message(r: int, receiver: int, sender: int):
        key = (r, receiver, sender)
        if key not in inbox:
            inbox[key] = sim.env.event()
        return inbox[key]

    def worker(w: int):
        factors = jitter_factors(sim.rng, steps, jitter)
        step_time = model.step_time * speeds[w]
        debt = 0.0
        for t in range(1, steps + 1):
            debt += step_time * factors[t - 1]
            if t % every:
                continue
            r = t // every - 1
            yield sim.env.timeout(debt)
            compute[w] += debt
            debt = 0.0
            arrived[(r, w)] = sim.now
            for peer in plan[r][w]:
                arrival = message(r, peer, w)
                sent = send(comm, w, peer, payload, tag=f"round{r}")
                sent.callbacks.append(lambda _e, a=arrival: a.succeed())
            senders = [s for s in range(n) if w in plan[r][s]]
            if senders:
                yield sim.env.all_of([message(r, w, s) for s in senders])
                latest = max(arrived.get((r, s), sim.now) for s in senders)  # slower peers it waited for
                waits[w] += max(0.0, latest - arrived[(r, w)])
        if debt:
            yield sim.env.timeout(debt)
            compute[w] += debt

    procs = [sim.process(worker(w)) for w in range(n)]
    if final_merge:
        def merge():
            yield sim.env.all_of(procs)
            done["merged"] = yield comm.run("all_reduce", payload, algo="ring", label="final merge")
        sim.process(merge())
    return {"compute": compute, "processes": procs, "plan": plan, "merge": done, "waits": waits}


def gossip_round(values: np.ndarray, peers: list[list[int]]) -> np.ndarray:
    """One round of averaging with real vectors: each worker averages its vector with those it receives
    (rows of `values` are workers); the maths a D-SGD round applies to parameters."""
    n = len(values)
    out = np.empty_like(values)
    for w in range(n):
        received = [s for s in range(n) if w in peers[s]]
        out[w] = values[[w, *received]].mean(axis=0)
    return out


def consensus_spread(values: np.ndarray) -> float:
    """Mean squared distance of the workers' vectors from their average."""
    return float(((values - values.mean(axis=0)) ** 2).sum(axis=1).mean())

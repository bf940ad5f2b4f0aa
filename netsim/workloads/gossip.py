"""Gossip-style exchanges without a global barrier, as training DAGs: D-SGD over a graph and NoLoCo's
random pairs.

Every `every` inner steps a worker sends its payload to its neighbours of that round and its next
forward waits only for what its own neighbours send it — never for the whole group::

    round r (ring, 4 workers):   0 <-> 1 <-> 2 <-> 3 <-> 0     each arrow one send, per connection FIFO
    step t+1 of worker 1:        F0 waits for the sends of 0 and 2 only

Graphs: `ring` (both neighbours), `exponential` (one peer per round, 2^(r mod log2 n) ahead, as in one-peer exponential
graphs), `random` (a fresh random perfect matching each round, drawn from the seeded generator;
with an odd count one worker sits the round out). NoLoCo is `random` with the outer gradient and
the slow weights as payload. Optionally one global all-reduce at the end ("a single merging").
"""

from __future__ import annotations

import math

import numpy as np

from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel
from netsim.workloads.dag import TrainingDag, deal
from netsim.workloads.limits import integer

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


def gossip(model: ComputeModel, *, every: int, steps: int, payload: int, plan: list[list[list[int]]],
           final_merge: bool = False, per_layer: bool = False, method: str = "gossip") -> TrainingDag:
    """After every `every`-th step t, each worker sends `payload` bytes to its partners of round
    r = t / every - 1 in `plan` (from `neighbours`) — the whole model as one unit at the end of the
    backward, or with `per_layer` one unit per layer (bytes by parameters) as each layer's B_w ends —
    and the next forward waits only for what its own partners send it. NoLoCo is `random` pairs with the
    outer gradient and the slow weights as payload. `final_merge`: one all-reduce of `payload` at the end.

    >>> plan = neighbours("ring", 4, 2, np.random.default_rng(0))
    >>> dag = gossip(ComputeModel(2, 0.1, 1e6), every=5, steps=10, payload=100, plan=plan)
    >>> sorted(dag.releases), dag.partners[5][0]
    ([5, 10], [1, 3])
    """
    integer(every, "inner_steps", lo=1)
    integer(steps, "steps", lo=1)
    integer(payload, "payload", lo=0)
    if per_layer:  # the payload dealt to the layers as their parameters are
        units = tuple((l,) for l in range(model.layers - 1, -1, -1))
        sizes = deal(payload, model.weights)
        unit_bytes = tuple(int(sizes[l]) for (l,) in units)
    else:
        units, unit_bytes = (tuple(range(model.layers)),), (payload,)
    every_unit = tuple(range(len(units)))
    releases = {t: every_unit for t in range(every, steps + 1, every)}
    if len(plan) < len(releases):
        raise ConfigError(f"{len(plan)} rounds planned for {len(releases)} exchanges", field="plan")
    partners = {t: plan[t // every - 1] for t in releases}
    return TrainingDag(method, steps, units, unit_bytes, releases, exchange="send", partners=partners,
                       final_merge=payload if final_merge else 0)


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

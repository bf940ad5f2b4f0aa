"""DiLoCo and Streaming DiLoCo on the simulated network.

Streaming DiLoCo: F fragments strided by layer (layer l in fragment l mod F); fragment p is
synchronised after the steps t with (t - round(p*H/F)) mod H == 0; the all-reduce starts when the
last worker has finished step t, and workers keep training meanwhile; the forward of the
fragment's layers in step t + tau + 1 waits for the result (tau = 0: the very next step). Values
are exchanged with `bits` bits each. DiLoCo is the case F = 1, tau = 0, bits = 16... with all
parameters synchronised every H steps, blocking.

Compute between syncs advances in closed form (one SimPy timeout per stretch), so a run costs a
few events per sync, not per layer and step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel, check_jitter, jitter_factors
from netsim.workloads.limits import factors, integer
from netsim.workloads.syncs import SyncPoint


@dataclass(frozen=True)
class StreamingConfig:
    inner_steps: int = 100  # H
    fragments: int = 1  # F
    overlap: int = 0  # tau
    bits: int = 16
    outer_steps: int = 3  # outer periods simulated (metrics are measured over all of them)

    def __post_init__(self) -> None:
        for name in ("inner_steps", "fragments", "outer_steps"):
            integer(getattr(self, name), name, lo=1)
        integer(self.overlap, "overlap", lo=0)
        if self.bits not in (4, 8, 16, 32):
            raise ConfigError(f"must be 4, 8, 16 or 32, got {self.bits}", field="bits")


def fragment_of_layers(layers: int, fragments: int) -> np.ndarray:
    if fragments > layers:
        raise ConfigError(f"{fragments} fragments but only {layers} layers", field="fragments")
    return np.arange(layers) % fragments


def sync_steps(config: StreamingConfig, fragment: int) -> list[int]:
    """Steps (1-based) after which `fragment` is synchronised."""
    offset = round(fragment * config.inner_steps / config.fragments)
    total = config.inner_steps * config.outer_steps
    return [t for t in range(1, total + 1) if (t - offset) % config.inner_steps == 0]


def run_streaming(comm: Communicator, model: ComputeModel, config: StreamingConfig,
                  speeds: np.ndarray | None = None, jitter: float = 0.0) -> dict:
    """Train on every rank of `comm` (one worker per rank); returns per-worker compute seconds and the end."""
    sim = comm.sim
    m = comm.size
    check_jitter(jitter)
    speeds = np.ones(m) if speeds is None else factors(speeds, m)
    frag = fragment_of_layers(model.layers, config.fragments)
    frag_bytes = [int(round(model.layer_params()[frag == p].sum() * config.bits / 8)) for p in range(config.fragments)]
    first_layer = [int(np.flatnonzero(frag == p)[0]) for p in range(config.fragments)]
    due: dict[int, list[int]] = {}
    for p in range(config.fragments):
        for t in sync_steps(config, p):
            due.setdefault(t, []).append(p)
    total = config.inner_steps * config.outer_steps
    points: dict[tuple[int, int], SyncPoint] = {}
    compute = np.zeros(m)
    finished = np.zeros(m)

    def point(p: int, t: int) -> SyncPoint:
        key = (p, t)
        if key not in points:
            points[key] = SyncPoint(comm, frag_bytes[p], m, label=f"fragment{p}")
        return points[key]

    def worker(w: int):
        fwd_base = model.forward(speeds[w])
        bwd_total = 2 * model.backward_half(speeds[w]).sum()
        factors = jitter_factors(sim.rng, total, jitter)
        waiting: dict[int, list[tuple[int, SyncPoint]]] = {}  # step -> [(fragment, sync)] needed then
        debt = 0.0  # compute not yet yielded
        for t in range(1, total + 1):
            fwd = fwd_base * factors[t - 1]
            pos = 0
            for p, sync in sorted(waiting.pop(t, []), key=lambda x: first_layer[x[0]]):
                debt += float(fwd[pos:first_layer[p]].sum())
                pos = first_layer[p]
                if not sync.done.processed:
                    if debt:
                        yield sim.env.timeout(debt)
                        compute[w] += debt
                        debt = 0.0
                    yield sync.done
            debt += float(fwd[pos:].sum()) + bwd_total * factors[t - 1]
            if t in due:
                yield sim.env.timeout(debt)
                compute[w] += debt
                debt = 0.0
                for p in due[t]:
                    sync = point(p, t)
                    sync.arrive(w)
                    waiting.setdefault(t + config.overlap + 1, []).append((p, sync))
        if debt:
            yield sim.env.timeout(debt)
            compute[w] += debt
        finished[w] = sim.now

    procs = [sim.process(worker(w)) for w in range(m)]
    return {"compute": compute, "finished": finished, "points": points, "processes": procs,
            "fragment_bytes": frag_bytes}

"""DDP (data parallelism) on the simulated network: gradients all-reduced every step, per layer (or per
bucket of consecutive layers) as soon as the backward w.r.t. weights of its last layer ends,
overlapped with the rest of the backward; the next forward of a layer waits for its reduction.
"""

from __future__ import annotations

import numpy as np

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel, check_jitter, jitter_factors
from netsim.workloads.limits import factors, integer, number
from netsim.workloads.syncs import SyncPoint


def buckets(model: ComputeModel, bucket_bytes: float | None, bits: int) -> list[np.ndarray]:
    """Layers grouped from the top (the order gradients become ready) into buckets of about
    `bucket_bytes` (None: one bucket per layer)."""
    order = np.arange(model.layers)[::-1]
    if bucket_bytes is None:
        return [np.array([l]) for l in order]
    number(bucket_bytes, "bucket_bytes", lo=0, lo_open=True)
    sizes = model.layer_params() * bits / 8
    out, current, filled = [], [], 0.0
    for l in order:
        current.append(l)
        filled += sizes[l]
        if filled >= bucket_bytes:
            out.append(np.array(current)), current.clear()
            filled = 0.0
    if current:
        out.append(np.array(current))
    return out


def run_ddp(comm: Communicator, model: ComputeModel, steps: int, *, bits: int = 16, bucket_bytes: float | None = None,
            speeds: np.ndarray | None = None, jitter: float = 0.0) -> dict:
    """`steps` data-parallel steps on every rank of `comm` (a Communicator, or anything with its `sim`,
    `size` and `run`); per-worker compute seconds."""
    sim = comm.sim
    m = comm.size
    integer(steps, "steps", lo=1)
    if bits not in (4, 8, 16, 32):
        raise ConfigError(f"must be 4, 8, 16 or 32, got {bits!r}", field="bits")
    check_jitter(jitter)
    speeds = np.ones(m) if speeds is None else factors(speeds, m)
    groups = buckets(model, bucket_bytes, bits)
    group_bytes = [int(round(model.layer_params()[g].sum() * bits / 8)) for g in groups]
    lowest = [int(g.min()) for g in groups]  # a bucket is ready when its lowest layer's gradient is
    bucket_of = np.zeros(model.layers, dtype=np.int64)
    for b, g in enumerate(groups):
        bucket_of[g] = b
    points: dict[tuple[int, int], SyncPoint] = {}
    compute = np.zeros(m)

    def point(b: int, t: int) -> SyncPoint:
        if (b, t) not in points:
            points[(b, t)] = SyncPoint(comm, group_bytes[b], m, label=f"bucket{b}")
        return points[(b, t)]

    def worker(w: int):
        factors = jitter_factors(sim.rng, steps, jitter)
        previous: list[SyncPoint] = []
        for t in range(steps):
            fwd = model.forward(speeds[w]) * factors[t]
            ready = model.gradient_ready(speeds[w]) * factors[t]
            # forward: layer l waits for the reduction of its bucket from the last step
            elapsed = 0.0
            for l in range(model.layers):
                b = int(bucket_of[l])
                if previous and l == lowest[b] and not previous[b].done.processed:
                    if elapsed:
                        yield sim.env.timeout(elapsed)
                        compute[w] += elapsed
                        elapsed = 0.0
                    yield previous[b].done
                elapsed += float(fwd[l])
            # backward: each bucket's reduction starts when its last gradient is ready
            start_bwd = float(fwd.sum())
            done_so_far = start_bwd
            current = []
            for b, g in enumerate(groups):
                at = float(ready[lowest[b]])
                elapsed += at - done_so_far
                done_so_far = at
                yield sim.env.timeout(elapsed)
                compute[w] += elapsed
                elapsed = 0.0
                sync = point(b, t)
                sync.arrive(w)
                current.append(sync)
            previous = current
        for sync in previous:  # drain the last step's reductions
            yield sync.done

    procs = [sim.process(worker(w)) for w in range(m)]
    return {"compute": compute, "points": points, "processes": procs, "bucket_bytes": group_bytes}

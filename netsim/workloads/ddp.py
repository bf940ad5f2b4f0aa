"""DDP (data parallelism) as a training DAG: gradients all-reduced every step, per layer (or per bucket
of consecutive layers) as soon as the backward w.r.t. weights of the bucket's lowest layer ends,
overlapped with the rest of the backward; the next forward of a bucket's layers waits for it::

    step s      F0 F1 F2 F3 | Ba3 Bw3 Ba2 Bw2 Ba1 Bw1 Bw0
    stream                          [AR 3 ]  [AR 2 ] [AR 1 ][AR 0 ]      (FIFO, one at a time)
    step s+1    F0 (waits AR 0) F1 (AR 1) F2 (AR 2) F3 (AR 3) ...
"""

from __future__ import annotations

import numpy as np

from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel
from netsim.workloads.dag import TrainingDag, check_bits, layer_bytes
from netsim.workloads.limits import integer


def buckets(model: ComputeModel, bucket_bytes: float | None, bits: int, layers: list[int] | None = None
            ) -> list[np.ndarray]:
    """`layers` (default all), taken from the top (the order gradients become ready), grouped into
    buckets of consecutive ones of about `bucket_bytes` each (None: one bucket per layer).

    >>> [b.tolist() for b in buckets(ComputeModel(4, 0.1, 4e6), 4e6, 16)]
    [[3, 2], [1, 0]]
    """
    order = sorted(range(model.layers) if layers is None else layers, reverse=True)
    if bucket_bytes is None:
        return [np.array([l]) for l in order]
    check_bucket_bytes(bucket_bytes)
    sizes = layer_bytes(model, bits)
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


def check_bucket_bytes(value: float) -> float:
    """A bucket size: > 0 bytes; infinity means one bucket of all the layers given."""
    if not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"expected a size > 0 (inf: a single bucket), got {value!r}", field="bucket_bytes")
    return value


def ddp(model: ComputeModel, steps: int, *, bits: int = 16, bucket_bytes: float | None = None) -> TrainingDag:
    """`steps` data-parallel steps: every step, every bucket (default: every layer) is all-reduced.

    >>> dag = ddp(ComputeModel(layers=4, step_time=0.1, params=4e6), steps=2)
    >>> dag.units, dag.releases[1], dag.unit_bytes[0]
    (((3,), (2,), (1,), (0,)), (0, 1, 2, 3), 2000000)
    """
    integer(steps, "steps", lo=1)
    check_bits(bits)
    sizes = layer_bytes(model, bits)
    units = tuple(tuple(int(l) for l in g) for g in buckets(model, bucket_bytes, bits))
    unit_bytes = tuple(int(sizes[list(g)].sum()) for g in units)
    every = tuple(range(len(units)))
    return TrainingDag("ddp", steps, units, unit_bytes, {t: every for t in range(1, steps + 1)})

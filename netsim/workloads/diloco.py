"""DiLoCo, Streaming DiLoCo and CO2 as training DAGs.

Streaming DiLoCo: F fragments strided by layer (layer l in fragment l mod F); fragment p is
synchronised after the steps t with (t - round(p*H/F)) mod H == 0: each of its layers' outer gradient
is all-reduced (in `bits` bits per value) as soon as that layer's backward w.r.t. weights of step t
ends, while the worker trains on, and the forward of that layer in step t + tau + 1 waits for it::

    H = 4, F = 2:   step 2: backward releases fragment 1 (layers 1, 3) ... step 4: fragment 0 (layers 0, 2)
    tau = 0:        step 3's F1 and F3 wait for them;  tau = 1: step 4's

DiLoCo is the case F = 1, tau = 0 (every layer every H steps, the next forward waits); CO2 is F = 1,
tau = H - 1 (the outer sync hides behind the next H local steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.errors import ConfigError
from netsim.workloads.compute import ComputeModel
from netsim.workloads.dag import TrainingDag, check_bits, layer_bytes
from netsim.workloads.ddp import buckets
from netsim.workloads.limits import integer


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
        check_bits(self.bits)

    @property
    def total_steps(self) -> int:
        return self.inner_steps * self.outer_steps


def fragment_of_layers(layers: int, fragments: int) -> np.ndarray:
    """The fragment of each layer: l mod F."""
    if fragments > layers:
        raise ConfigError(f"{fragments} fragments but only {layers} layers", field="fragments")
    return np.arange(layers) % fragments


def sync_steps(config: StreamingConfig, fragment: int) -> list[int]:
    """Steps (1-based) after which `fragment` is synchronised."""
    offset = round(fragment * config.inner_steps / config.fragments)
    return [t for t in range(1, config.total_steps + 1) if (t - offset) % config.inner_steps == 0]


def due_fragments(config: StreamingConfig) -> dict[int, list[int]]:
    """Step (1-based) -> the fragments synchronised after it (the schedule real training follows too)."""
    due: dict[int, list[int]] = {}
    for p in range(config.fragments):
        for t in sync_steps(config, p):
            due.setdefault(t, []).append(p)
    return dict(sorted(due.items()))


def streaming_diloco(model: ComputeModel, config: StreamingConfig, *, bucket_bytes: float | None = None,
                     method: str = "streaming_diloco") -> TrainingDag:
    """The DAG of `config` on `model`: one all-reduce unit per layer, released as described above (with
    `bucket_bytes`, a fragment's layers fused from the top into buckets of about that size; a bucket is
    released by its lowest layer's B_w and gates that layer's forward; float("inf"): one per fragment).

    >>> config = StreamingConfig(inner_steps=4, fragments=2, outer_steps=1)
    >>> dag = streaming_diloco(ComputeModel(4, 0.1, 4e6), config)
    >>> dag.units, sorted(dag.releases.items())
    (((3,), (2,), (1,), (0,)), [(2, (0, 2)), (4, (1, 3))])
    """
    frag = fragment_of_layers(model.layers, config.fragments)
    sizes = layer_bytes(model, config.bits)
    groups = [g for p in range(config.fragments)
              for g in buckets(model, bucket_bytes, config.bits, [l for l in range(model.layers) if frag[l] == p])]
    groups.sort(key=lambda g: -int(g.min()))  # the order the backward releases them
    units = tuple(tuple(int(l) for l in g) for g in groups)
    unit_bytes = tuple(int(sizes[list(g)].sum()) for g in units)
    releases = {t: tuple(u for u, g in enumerate(units) if frag[g[0]] in due)
                for t, due in due_fragments(config).items()}
    return TrainingDag(method, config.total_steps, units, unit_bytes, releases, delay=config.overlap)

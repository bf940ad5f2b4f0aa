"""The compute model of a training step: per-layer forward, backward w.r.t. activations
and backward w.r.t. weights, and what each layer holds in parameters.

A step of `step_time` seconds is 1/3 forward and 2/3 backward, the backward split evenly between
activations and weights, spread over the layers by `layer_weights` (uniform unless a profile is
given; layer 0 has no backward w.r.t. activations, see `backward_nodes`). Layer l's gradient is ready
when its backward w.r.t. weights ends. A worker's speed factor
stretches its times (2.0: half as fast); jitter multiplies each step by a lognormal factor drawn
from the simulation's seeded generator. Every number is checked: finite, and within `netsim.workloads.limits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.errors import ConfigError
from netsim.workloads.limits import MAX_JITTER, MAX_PARAMS, MAX_SECONDS, integer, number


@dataclass(frozen=True)
class ComputeModel:
    layers: int
    step_time: float  # seconds per inner step at speed factor 1
    params: float  # parameters in the model
    layer_weights: tuple[float, ...] = field(default=())  # share of compute and parameters per layer
    forward_share: float = 1 / 3

    def __post_init__(self) -> None:
        integer(self.layers, "layers", lo=1)
        number(self.step_time, "step_time", lo=0, lo_open=True, hi=MAX_SECONDS)
        number(self.params, "params", lo=0, lo_open=True, hi=MAX_PARAMS)
        number(self.forward_share, "forward_share", lo=0, lo_open=True, hi=1)
        if self.layer_weights:
            weights = np.asarray(self.layer_weights, dtype=float)
            if (len(weights) != self.layers or not np.isfinite(weights).all() or weights.min() < 0
                    or abs(weights.sum() - 1) > 1e-9):
                raise ConfigError("needs one finite non-negative share per layer, summing to 1", field="layer_weights")

    @classmethod
    def from_flops(cls, layers: int, params: float, tokens_per_step: float, peak_flops: float, mfu: float
                   ) -> "ComputeModel":
        """Step time from 6 x parameters x tokens FLOPs at `mfu` of the device's peak FLOP/s."""
        number(params, "params", lo=0, lo_open=True, hi=MAX_PARAMS)
        number(tokens_per_step, "tokens_per_step", lo=0, lo_open=True)
        number(peak_flops, "peak_flops", lo=0, lo_open=True)
        number(mfu, "mfu", lo=0, lo_open=True, hi=1)
        return cls(layers, 6 * params * tokens_per_step / (peak_flops * mfu), params)

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.layer_weights) if self.layer_weights else np.full(self.layers, 1 / self.layers)

    def layer_params(self) -> np.ndarray:
        return self.params * self.weights

    def forward(self, speed: float = 1.0) -> np.ndarray:
        """Seconds of forward per layer."""
        return self.step_time * speed * self.forward_share * self.weights

    def backward_half(self, speed: float = 1.0) -> np.ndarray:
        """Seconds of backward w.r.t. weights per layer: half of each layer's backward."""
        return self.step_time * speed * (1 - self.forward_share) / 2 * self.weights

    def backward_nodes(self, speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Seconds of B_act (backward w.r.t. activations) and B_w (w.r.t. weights) per layer. B_w(l) is
        half of layer l's backward. Layer 0 has no B_act (no layer below needs its input gradient): the
        other half of the backward is spread over B_act(1..L-1) in proportion to their weights, so a step
        still takes `step_time` (with one layer, or all weight on layer 0, B_w(0) takes the whole backward)."""
        half = self.step_time * speed * (1 - self.forward_share) / 2
        w = self.weights
        b_w = half * w
        b_act = np.zeros(self.layers)
        above = float(w[1:].sum())
        if above > 0:
            b_act[1:] = half * w[1:] / above
        else:
            b_w = b_w.copy()
            b_w[0] += half
        return b_act, b_w

    def gradient_ready(self, speed: float = 1.0) -> np.ndarray:
        """Seconds from the start of a step until each layer's gradient is ready: the forward, then the
        backward from layer L-1 down, B_act(l) then B_w(l) for each layer."""
        b_act, b_w = self.backward_nodes(speed)
        return self.forward(speed).sum() + np.cumsum((b_act + b_w)[::-1])[::-1]


def check_jitter(sigma: float) -> float:
    """A lognormal sigma of per-step slowdowns: finite, >= 0 and <= MAX_JITTER."""
    return number(sigma, "jitter", lo=0, hi=MAX_JITTER)


def jitter_factors(rng: np.random.Generator, steps: int, sigma: float) -> np.ndarray:
    """Per-step multiplicative slowdowns (lognormal with median 1); ones when sigma is 0."""
    sigma = check_jitter(sigma)
    return np.ones(steps) if sigma == 0 else rng.lognormal(0.0, sigma, steps)

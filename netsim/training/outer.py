"""The outer-step maths of the low-communication methods, on flat fp32 parameter vectors.

DiLoCo: the outer gradient is the average over workers of (global - local); an SGD step with Nesterov
momentum moves the global parameters. NoLoCo pairs average their outer gradients and slow weights.
"""

from __future__ import annotations

import torch


class OuterNesterov:
    """SGD with (Nesterov) momentum on a flat parameter vector, fed outer gradients."""

    def __init__(self, params: torch.Tensor, lr: float = 0.7, momentum: float = 0.9, nesterov: bool = True):
        self.params = params.detach().clone()
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.buffer = torch.zeros_like(self.params)

    def step(self, outer_grad: torch.Tensor) -> torch.Tensor:
        if self.momentum:
            self.buffer = self.momentum * self.buffer + outer_grad
            update = outer_grad + self.momentum * self.buffer if self.nesterov else self.buffer
        else:
            update = outer_grad
        self.params = self.params - self.lr * update
        return self.params


def average(vectors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(vectors).mean(dim=0)


def pair_average(vectors: list[torch.Tensor], pairs: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Each listed pair replaces both vectors by their mean; everyone else keeps theirs."""
    out = list(vectors)
    for a, b in pairs:
        mean = (vectors[a] + vectors[b]) / 2
        out[a], out[b] = mean, mean.clone()
    return out

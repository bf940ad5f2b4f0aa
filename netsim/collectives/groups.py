"""Parallel groups: tensor (tp), context (cp), expert (ep), data (dp) and pipeline (pp) parallel
communicators from a parallelism spec, Megatron-style.

Global rank g = t + tp*(c + cp*(d + dp*p)) (tp varies fastest), and rank g runs on the g-th GPU
given (the job's GPUs: servers in order, GPUs within a server in order), so tensor-parallel
groups sit inside a server whenever tp <= GPUs per server. Expert-parallel groups are consecutive
blocks of ep data-parallel ranks (ep divides dp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.errors import ConfigError

KINDS = ("tp", "cp", "ep", "dp", "pp")


@dataclass(frozen=True)
class ParallelSpec:
    tp: int = 1
    cp: int = 1
    ep: int = 1
    dp: int = 1
    pp: int = 1

    def __post_init__(self) -> None:
        for kind in KINDS:
            value = getattr(self, kind)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be an integer >= 1, got {value!r}", field=f"parallel.{kind}")
        if self.dp % self.ep:
            raise ConfigError(f"ep ({self.ep}) must divide dp ({self.dp})", field="parallel.ep")

    @property
    def world(self) -> int:
        return self.tp * self.cp * self.dp * self.pp


def parallel_groups(gpus: np.ndarray, spec: ParallelSpec) -> dict[str, list[np.ndarray]]:
    """GPU node ids of every group of each kind, ranks in group order; rank g runs on gpus[g]."""
    if spec.world > len(gpus):
        raise ConfigError(f"tp*cp*dp*pp = {spec.world} ranks but only {len(gpus)} GPUs", field="parallel")
    grid = gpus[: spec.world].reshape(spec.pp, spec.dp, spec.cp, spec.tp)  # [p, d, c, t]
    groups = {
        "tp": list(grid.reshape(-1, spec.tp)),
        "cp": list(grid.transpose(0, 1, 3, 2).reshape(-1, spec.cp)),
        "dp": list(grid.transpose(0, 2, 3, 1).reshape(-1, spec.dp)),
        "pp": list(grid.transpose(1, 2, 3, 0).reshape(-1, spec.pp)),
    }
    groups["ep"] = [block for dp_group in groups["dp"] for block in dp_group.reshape(-1, spec.ep)]
    return {k: [np.ascontiguousarray(g) for g in v] for k, v in groups.items()}

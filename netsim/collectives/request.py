"""What an algorithm builder is asked for: ranks, buffer size, chunks, root, and the fabric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.errors import ConfigError
from netsim.topology import Topology


@dataclass(frozen=True, eq=False)
class Request:
    """One collective call: `nodes[r]` is rank r's GPU; `nbytes` the buffer (per rank) in bytes."""

    nodes: np.ndarray
    nbytes: int
    chunks: int
    topology: Topology
    root: int = 0

    @property
    def n(self) -> int:
        return len(self.nodes)

    def hosts(self) -> list[np.ndarray]:
        """Ranks grouped by server (in rank order), servers in order of first appearance."""
        topo = self.topology
        keys = list(zip(topo.attrs["dc"][self.nodes].tolist(), topo.attrs["host"][self.nodes].tolist()))
        groups: dict[tuple[int, int], list[int]] = {}
        for rank, key in enumerate(keys):
            groups.setdefault(key, []).append(rank)
        return [np.asarray(g, dtype=np.int64) for g in groups.values()]

    def rail(self) -> np.ndarray:
        """Each rank's NIC rail (0 where the topology has none)."""
        rails = self.topology.attrs["rail"][self.nodes]
        return np.where(rails < 0, 0, rails)

    def require(self, condition: bool, algo: str, message: str) -> None:
        if not condition:
            raise ConfigError(f"algorithm {algo!r}: {message}", field="algo")

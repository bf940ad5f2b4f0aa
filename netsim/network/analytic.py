"""The analytic model: alpha-beta per transfer, no contention — the reference tier."""

from __future__ import annotations

import numpy as np

from netsim.network.base import Batch, NetworkModel


class AnalyticNetwork(NetworkModel):
    """Each transfer takes overhead + path latency + bytes / (its bottleneck rate alone)."""

    name = "analytic"

    def _start(self, batch: Batch) -> None:
        now = self.env.now
        rate = self._solo_rates(batch)
        drained = now + batch.nbytes / rate
        if self.meter is not None:
            offsets = np.concatenate([[0], np.cumsum(batch.counts)])
            for i in np.flatnonzero(batch.nbytes).tolist():
                sel = slice(offsets[i], offsets[i + 1])
                self.meter.add(now, float(drained[i]), batch.links[sel], batch.coef[sel] * rate[i])
        self._drained(batch, np.arange(len(batch.src)), drained)

"""The analytic model: alpha-beta per transfer, no contention — the reference tier."""

from __future__ import annotations

import numpy as np

from netsim.network.base import Batch, NetworkModel


class AnalyticNetwork(NetworkModel):
    """Each flow takes its bytes / (its bottleneck rate alone); a transfer arrives overhead + path
    latency after its last flow drained."""

    name = "analytic"

    def _start(self, batch: Batch) -> None:
        now = self.env.now
        block = batch.block
        rate = self._solo_rates(batch)
        drained = now + batch.flow_bytes / rate
        if self.meter is not None:
            offsets = np.concatenate([[0], np.cumsum(block.counts)])
            for f in np.flatnonzero(batch.flow_bytes).tolist():
                sel = slice(offsets[f], offsets[f + 1])
                self.meter.add(now, float(drained[f]), block.links[sel], block.coef[sel] * rate[f])
        parts = np.bincount(block.owner, minlength=len(batch.src))
        self._flows_drained(batch, np.arange(len(block.owner)), drained, parts)

"""The fluid model: flow-level max-min fair sharing, rates recomputed only when flows start or end.

Active flows live in parallel numpy arrays (remaining bytes, rate, owning batch) and
their route entries in one sparse flow x link list. Transfers that start at one
instant are batched: the first schedules a settle event at a priority below every
ordinary event of that instant, so all of them join one rate computation. Flows that
drain at the same instant finish in the same settle.
"""

from __future__ import annotations

import numpy as np
import simpy

from netsim.network.base import Batch, NetworkModel
from netsim.network.max_min import max_min_rates

LATE = 2  # SimPy priority after NORMAL (1): runs once everything else at this instant has run
FINISH_REL = 1e-12  # a flow with less than this fraction of its bytes left is done
FINISH_CLOCK = 1e-13  # ... or with less than this fraction of the clock left to run


class FluidNetwork(NetworkModel):
    """Flow-level model: full-duplex links shared max-min fairly, latency added on arrival."""

    name = "fluid"
    help = "flow level: links shared max-min fairly by the flows crossing them, rates recomputed as flows start and end"
    check_rates = False  # tests switch this on to compare every partial recomputation with a full one

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        topo = self.topo
        self._batches: list[Batch] = []  # batch of each slot in _batch_of
        self._batch_of = np.zeros(0, dtype=np.int64)  # per active flow: index into _batches
        self._index = np.zeros(0, dtype=np.int64)  # per active flow: index within its batch
        self._size = np.zeros(0)
        self._cap = np.zeros(0)  # per active flow: its own rate cap (inf: none)
        self._remaining = np.zeros(0)
        self._rates = np.zeros(0)
        self._entry_link = np.zeros(0, dtype=np.int64)
        self._entry_coef = np.zeros(0)
        self._entry_owner = np.zeros(0, dtype=np.int64)
        self._pending: list[Batch] = []
        self._parts: dict[int, np.ndarray] = {}  # per batch: flows still going per transfer
        self._settle_scheduled = False
        self._last = 0.0
        self._generation = 0
        self._load = np.zeros(0)
        self._new_from = 0  # flows at positions >= this joined since the last rate computation
        self._freed: list[np.ndarray] = []  # links of flows that left since the last rate computation
        # Endpoint caps are virtual links, one per sending node, after the real ones.
        if self.options.endpoint_rate_cap is not None:
            self._capacity = np.concatenate([topo.capacity, np.full(topo.num_nodes, self.options.endpoint_rate_cap)])
        self.rate_computations = 0

    def _start(self, batch: Batch) -> None:
        block = batch.block
        live = batch.flow_bytes > 0
        parts = np.bincount(block.owner[live], minlength=len(batch.src))
        self._parts[id(batch)] = parts
        idle = np.flatnonzero(parts == 0)  # transfers with no bytes to move
        if len(idle):
            self._drained(batch, idle, self.env.now)
            if len(idle) == len(batch.src):
                del self._parts[id(batch)]
                return
        self._pending.append(batch)
        if not self._settle_scheduled:
            self._settle_scheduled = True
            # Event.succeed() would schedule at NORMAL priority; mark it triggered by hand instead.
            ev = simpy.Event(self.env)
            ev._ok, ev._value = True, None
            ev.callbacks.append(self._on_settle)
            self.env.schedule(ev, priority=LATE)

    def fail_links(self, links: list[int]) -> None:
        """Fail links now; active flows through them move to working paths of their policy."""
        self._settle_now()
        super().fail_links(links)
        dead = np.zeros(len(self._capacity), dtype=bool)
        dead[list(links)] = True
        hit = np.unique(self._entry_owner[dead[self._entry_link]])
        if len(hit):
            self._reroute(hit)
        self._freed.append(np.asarray(links, dtype=np.int64))
        self._recompute_and_wake()

    def degrade_links(self, links: list[int], factor: float) -> None:
        self._settle_now()
        super().degrade_links(links, factor)
        self._freed.append(np.asarray(links, dtype=np.int64))
        self._recompute_and_wake()

    def _settle_now(self) -> None:
        """Bring remaining bytes up to the present before the fabric changes."""
        self._settle()

    def _recompute_and_wake(self) -> None:
        self._recompute()
        self._schedule_wake()

    def _schedule_wake(self) -> None:
        """Wake at the next drain; wake-ups scheduled before this one are ignored (older generation)."""
        self._generation += 1
        if len(self._remaining):
            ttf = float(np.min(self._remaining / self._rates))
            wake = self.env.timeout(max(ttf, 0.0), value=self._generation)
            wake.callbacks.append(self._on_wake)

    def _reroute(self, flows: np.ndarray) -> None:
        """New entries for active flows `flows` (positions), from their policy's current answer."""
        keep = ~np.isin(self._entry_owner, flows)
        links, coef, owner = [self._entry_link[keep]], [self._entry_coef[keep]], [self._entry_owner[keep]]
        for f in flows.tolist():
            batch = self._batches[int(self._batch_of[f])]
            flow = int(self._index[f])
            i = int(batch.block.owner[flow])
            route = self.router.route(int(batch.src[i]), int(batch.dst[i]), batch.key)
            j = int(batch.block.path[flow])
            if route.independent and 0 <= j < len(route.paths):
                path = np.asarray(route.paths[j], dtype=np.int64)
                links.append(path), coef.append(np.ones(len(path)))
            else:
                links.append(route.links), coef.append(route.coef)
            owner.append(np.full(len(links[-1]), f))
        self._entry_link = np.concatenate(links)
        self._entry_coef = np.concatenate(coef)
        self._entry_owner = np.concatenate(owner)
        self._new_from = min(self._new_from, int(flows.min()))

    def _on_settle(self, _event: simpy.Event) -> None:
        self._settle_scheduled = False
        self._settle()

    def _on_wake(self, event: simpy.Event) -> None:
        if event.value == self._generation:
            self._settle()

    def _settle(self) -> None:
        now = self.env.now
        dt = now - self._last
        if dt > 0 and len(self._remaining):
            self._remaining -= self._rates * dt
            if self.meter is not None:
                self.meter.add(self._last, now, None, self._load)
        self._last = now
        changed = self._finish_drained(now)
        if self._pending:
            self._admit(self._pending)
            self._pending = []
            changed = True
        if changed:
            self._recompute()
        self._schedule_wake()

    def _finish_drained(self, now: float) -> bool:
        if not len(self._remaining):
            return False
        done = self._remaining <= np.maximum(FINISH_REL * self._size, self._rates * (FINISH_CLOCK * now))
        if not done.any():
            return False
        finished_batches = self._batch_of[done]
        finished_index = self._index[done]
        keep = ~done
        new_pos = np.cumsum(keep) - 1
        entry_keep = keep[self._entry_owner]
        self._freed.append(self._entry_link[~entry_keep])
        self._new_from -= int(np.count_nonzero(done[: self._new_from]))
        self._entry_link = self._entry_link[entry_keep]
        self._entry_coef = self._entry_coef[entry_keep]
        self._entry_owner = new_pos[self._entry_owner[entry_keep]]
        for name in ("_batch_of", "_index", "_size", "_remaining", "_rates", "_cap"):
            setattr(self, name, getattr(self, name)[keep])
        if len(finished_batches) == 1 or (finished_batches == finished_batches[0]).all():
            groups = [(int(finished_batches[0]), np.sort(finished_index))]
        else:
            order = np.argsort(finished_batches, kind="stable")
            slots, starts = np.unique(finished_batches[order], return_index=True)
            bounds = np.append(starts, len(order))
            groups = [(slot, np.sort(finished_index[order[bounds[k]:bounds[k + 1]]]))
                      for k, slot in enumerate(slots.tolist())]
        for slot, flows in groups:
            batch = self._batches[slot]
            parts = self._parts[id(batch)]
            self._flows_drained(batch, flows, now, parts)
            if not parts.any():
                del self._parts[id(batch)]
        self._compact_batches()
        return True

    def _compact_batches(self) -> None:
        """Forget batches with no active flow, renumbering the slots of the rest (only once the
        finished ones are a good share of the list: renumbering is a pass over every flow)."""
        if len(self._batches) < 64 or len(self._batches) < 2 * len(self._parts):
            return
        live, inverse = np.unique(self._batch_of, return_inverse=True)
        if len(live) == len(self._batches):
            return
        self._batches = [self._batches[s] for s in live.tolist()]
        self._batch_of = inverse.astype(np.int64)

    def _admit(self, batches: list[Batch]) -> None:
        topo = self.topo
        base = len(self._remaining)
        batch_of, index, sizes, links, coef, owner, caps = [], [], [], [], [], [], []
        offset = base
        for batch in batches:
            block = batch.block
            live = np.flatnonzero(batch.flow_bytes)
            slot = len(self._batches)
            self._batches.append(batch)
            batch_of.append(np.full(len(live), slot, dtype=np.int64))
            index.append(live)
            sizes.append(batch.flow_bytes[live].astype(np.float64))
            caps.append(block.cap[live])
            if len(live) == len(block.counts):
                links.append(block.links)
                coef.append(block.coef)
                owner.append(offset + np.repeat(np.arange(len(live)), block.counts))
            else:
                keep = np.repeat(batch.flow_bytes > 0, block.counts)
                links.append(block.links[keep])
                coef.append(block.coef[keep])
                owner.append(offset + np.repeat(np.arange(len(live)), block.counts[live]))
            if self.options.endpoint_rate_cap is not None:
                links.append(topo.num_links + batch.src[block.owner[live]])
                coef.append(np.ones(len(live)))
                owner.append(offset + np.arange(len(live)))
            offset += len(live)
        self._batch_of = np.concatenate([self._batch_of, *batch_of])
        self._index = np.concatenate([self._index, *index])
        new_sizes = np.concatenate(sizes)
        self._size = np.concatenate([self._size, new_sizes])
        self._remaining = np.concatenate([self._remaining, new_sizes])
        self._rates = np.concatenate([self._rates, np.zeros(len(new_sizes))])
        self._cap = np.concatenate([self._cap, *caps])
        self._entry_link = np.concatenate([self._entry_link, *links])
        self._entry_coef = np.concatenate([self._entry_coef, *coef])
        self._entry_owner = np.concatenate([self._entry_owner, *owner])

    def _affected(self) -> np.ndarray:
        """Flows whose rate may change: the new ones, those on freed links, and everything
        connected to them through shared links (flows outside keep their max-min rates)."""
        n = len(self._remaining)
        flows = np.zeros(n, dtype=bool)
        flows[self._new_from :] = True
        links = np.zeros(len(self._capacity), dtype=bool)
        for freed in self._freed:
            links[freed] = True
        owner, entry_link = self._entry_owner, self._entry_link
        count = -1
        while True:
            flows[owner[links[entry_link]]] = True
            links[entry_link[flows[owner]]] = True
            now = int(np.count_nonzero(flows))
            if now == count or now == n:
                return flows
            count = now

    def _recompute(self) -> None:
        n = len(self._remaining)
        affected = self._affected() if n else None
        self._new_from, self._freed = n, []
        if not n:
            self._rates = np.zeros(0)
            self._load = np.zeros(0)
            return
        self.rate_computations += 1
        owner, links, coef = self._entry_owner, self._entry_link, self._entry_coef
        rates = self._rates
        if affected.all():
            sub_owner, sub_links, sub_coef, members = owner, links, coef, None
        else:
            members = np.flatnonzero(affected)
            position = np.cumsum(affected) - 1
            keep = affected[owner]
            sub_owner, sub_links, sub_coef = position[owner[keep]], links[keep], coef[keep]
        m = n if members is None else len(members)
        cap = None if not np.isfinite(self._cap).any() else (self._cap if members is None else self._cap[members])
        sub_rates, _ = max_min_rates(sub_owner, sub_links, sub_coef, self._capacity, m, cap)
        if members is None:
            rates = sub_rates
        else:
            rates = rates.copy()
            rates[members] = sub_rates
        self._rates = rates
        load = np.bincount(links, weights=coef * rates[owner], minlength=len(self._capacity))
        self._load = load[: self.topo.num_links]
        if self.check_rates:  # tests: the partial recomputation must equal a full one
            full, _ = max_min_rates(owner, links, coef, self._capacity, n,
                                    None if cap is None else self._cap)
            assert np.allclose(full, rates, rtol=1e-9, atol=0), "partial max-min differs from the full one"

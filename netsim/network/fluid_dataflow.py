"""Dataflows run inside the fluid engine: gates, transfers, drains and rates in one compiled loop.

A dataflow (`netsim.network.dataflow`: gates that fire when their count reaches zero, sending
transfers and counting down successors, and transfers that count down gates when they arrive) is
what every workload lowers to: collective step schedules, compute and send/recv streams, whole
programs. Run by the reference executor, every arrival and every drain is a SimPy event and a dozen
Python calls (~45 us per transfer). Here the fluid model runs them itself, any number at once:

    instant t:  drain flows due at t ─► transfers whose last flow drained arrive at t + latency
                arrivals and timers due at t ─► the gates they feed count down
                gates whose count hit 0 fire: their sends become flows, their successors count down
                (at once, or after the gate's delay: a timer)
                (identical flows sent at one instant are one flow of their class: `fluid_kernel._same_flow`)
                max-min rates on the component of what changed (`fluid_kernel.recompute`)
                next instant: the earliest drain, arrival or timer

and returns to Python only when Python must act: a dataflow finished (its event fires), a flow of
another sender drained (its callback runs), SimPy has an event before the next instant (a fault, a
process starting more work — SimPy's events at an instant go before the loop's), storage must grow,
the link meter's bins must be widened, or a transfer whose route could not be found (links failed)
is sent (its error is raised then, as the reference executor raises it). The rules are those of the
reference executor and the fluid model (drain tolerance, arrivals closer than
`base.ARRIVAL_TOLERANCE` delivered together, rates recomputed on the changed component).

All running dataflows share one set of arrays (`Loop`), appended to as dataflows start and reused
from the start once none is running. Routes are looked up when a dataflow starts (per route key and
batch label; again for the transfers not yet sent when links fail), which is why only policies that
route each transfer on its own (neither planning a batch, nor learning, nor placing routes in order of
arrival) run here; the others, and runs that cap endpoints, use the reference executor. With per-step
load recording, a row per batch label and route key (split at a failure into the part sent before it
and the part after). Each dataflow takes a block of transfer ids when it starts (its transfers in
their dataflow's order). The compiled loop itself is `fluid_kernel.advance`, in the kernel's file so
that numba's on-disk cache of it is refreshed whenever the kernel changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from netsim.errors import TopologyError
from netsim.network.base import _flow_bytes
from netsim.network.dataflow import Dataflow, DataflowRun
from netsim.network.fluid_kernel import P_HEAP, P_MOVING, P_N, P_NOTE, P_READY, PATH_BITS

_I, _F, _B = np.int64, np.float64, np.bool_
CLASS_SLOTS = 1 << 16  # the flow-class table's slots (a power of two; a collision only costs a merge)
GROUPS = {  # array group -> its arrays and their dtypes; each group grows by doubling
    "gates": {"g_count": _I, "g_delay": _F, "g_succ_lo": _I, "g_succ_hi": _I, "g_send_lo": _I, "g_send_hi": _I,
              "g_fire": _F, "g_run": _I, "g_hook": _B, "ready": _I, "note": _I},
    "edges": {"succ": _I},
    "sends": {"send": _I},
    "targets": {"tgt": _I},
    "transfers": {"t_src": _I, "t_dst": _I, "t_bytes": _I, "t_key": _I, "t_tag": _I, "t_batch": _I, "t_run": _I,
                  "t_tgt_lo": _I, "t_tgt_hi": _I, "t_fl_lo": _I, "t_fl_hi": _I, "t_lat": _F, "t_unrouted": _B,
                  "t_parts": _I, "t_start": _F, "t_end": _F, "t_order": _I, "t_rec": _B, "dr_p": _I, "dr_end": _F},
    "flows": {"fl_bytes": _F, "fl_cap": _F, "fl_path": _I, "fl_ent_lo": _I, "fl_ent_hi": _I, "fl_owner": _I,
              "fl_next": _I, "fl_hash": _I},
    "entries": {"en_link": _I, "en_coef": _F},
}


@dataclass(eq=False)
class _Active:
    """A dataflow running in the loop: where its gates and transfers sit, its ids, its pending step rows."""

    run: DataflowRun
    g0: int
    t0: int
    first_id: int
    rid: int = -1
    step_rows: list = field(default_factory=list)  # (transfers, loads) not yet written

    @property
    def g1(self) -> int:
        return self.g0 + self.run.flow.gates

    @property
    def t1(self) -> int:
        return self.t0 + self.run.flow.transfers


def no_longer_running(*_args) -> NoReturn:
    """Counting down a gate of a dataflow that no longer runs (a finished run's hooks are this)."""
    raise RuntimeError("a count-down for a dataflow that is no longer running")


class Loop:
    """The arrays of every dataflow running in the compiled loop (see the module docstring)."""

    def __init__(self) -> None:
        self.used = dict.fromkeys(GROUPS, 0)
        self.size = dict.fromkeys(GROUPS, 0)
        for fields in GROUPS.values():
            for name, dtype in fields.items():
                setattr(self, name, np.zeros(0, dtype=dtype))
        self.h_t, self.h_p = np.zeros(0), np.zeros(0, dtype=np.int64)  # arrivals and timers (fill: ps[P_HEAP])
        self.unrouted: dict = {}  # transfer -> the routing error to raise when it is sent
        self.ps = np.zeros(P_N, dtype=np.int64)
        self.fs = np.zeros(3)  # the last instant handled, the next one, the least rate drained now
        self.keys: list[tuple] = []
        self.tags: list[str] = []
        self._key_id: dict[tuple, int] = {}
        self._tag_id: dict[str, int] = {}
        self.active: dict[int, _Active] = {}
        self._next_run = 0
        self._compact_at = 0  # no compaction before the arrays hold this many gates and transfers
        # flow classes (`fluid_kernel._same_flow`): a hash table of the flows made at the present instant,
        # slot -> (flow, its record, the store's stamp then); a slot of another stamp is empty
        self.cls_f = np.full(CLASS_SLOTS, -1, dtype=np.int64)
        self.cls_fl = np.full(CLASS_SLOTS, -1, dtype=np.int64)
        self.cls_stamp = np.full(CLASS_SLOTS, -1, dtype=np.int64)

    def kernel_args(self) -> tuple:
        """The arrays `fluid_kernel.advance` takes after `ps, fs`, in its order."""
        return (self.g_count, self.g_delay, self.g_succ_lo, self.g_succ_hi, self.g_send_lo, self.g_send_hi,
                self.g_fire, self.g_run, self.g_hook, self.succ, self.send, self.t_tgt_lo, self.t_tgt_hi, self.tgt, self.t_fl_lo,
                self.t_fl_hi, self.fl_bytes, self.fl_cap, self.fl_path, self.fl_ent_lo, self.fl_ent_hi, self.en_link,
                self.en_coef, self.t_lat, self.t_unrouted, self.t_parts, self.t_start, self.t_end, self.t_order,
                self.h_t, self.h_p, self.ready, self.dr_p, self.dr_end, self.note, self.t_run, self.fl_owner,
                self.fl_next, self.fl_hash, self.cls_f, self.cls_fl, self.cls_stamp)

    @property
    def busy(self) -> bool:
        """Something runs, moves or is due in the loop (a dataflow, a transfer, an arrival, a timer)."""
        return bool(self.active) or self.ps[P_HEAP] > 0 or self.ps[P_MOVING] > 0

    def _take(self, group: str, n: int) -> int:
        """Room for `n` more items of `group`; returns the first new index."""
        first = self.used[group]
        need = first + n
        if need > self.size[group]:
            new = max(2 * self.size[group], need, 64)
            for name, dtype in GROUPS[group].items():
                grown = np.zeros(new, dtype=dtype)
                grown[:first] = getattr(self, name)[:first]
                setattr(self, name, grown)
            self.size[group] = new
        self.used[group] = need
        return first

    def _reset_if_idle(self) -> None:
        """Start the arrays afresh when nothing of an earlier dataflow is left in them."""
        if not self.busy and self.used["gates"]:
            self.used = dict.fromkeys(GROUPS, 0)
            self.keys, self.tags, self._key_id, self._tag_id = [], [], {}, {}
            self.ps[P_READY] = 0
            self.cls_stamp[:] = -1

    def snapshot(self, store) -> tuple:
        """Make room as `append` wants it (start afresh when idle, compact when the arrays hold more than 4x
        what runs), then what `undo` needs to take back the next `append`."""
        self._reset_if_idle()
        live_g = sum(a.run.flow.gates for a in self.active.values())
        live_t = sum(a.run.flow.transfers for a in self.active.values())
        if (self.used["gates"] > 4 * live_g + self.COMPACT_SLACK or
                self.used["transfers"] > 4 * live_t + self.COMPACT_SLACK) and \
                self.used["gates"] + self.used["transfers"] >= self._compact_at:
            if not self.compact(store):  # something in flight belongs to no running dataflow: later
                self._compact_at = 2 * (self.used["gates"] + self.used["transfers"])
        return dict(self.used), int(self.ps[P_READY]), len(self.keys), len(self.tags), self._next_run

    def undo(self, snapshot: tuple) -> None:
        """Forget the dataflow appended since `snapshot` (it never ran)."""
        used, ready, keys, tags, rid = snapshot
        self.used, self.ps[P_READY], self._next_run = dict(used), ready, rid
        del self.keys[keys:], self.tags[tags:]
        self._key_id = {k: i for i, k in enumerate(self.keys)}
        self._tag_id = {t: i for i, t in enumerate(self.tags)}
        self.active.pop(rid, None)

    COMPACT_SLACK = 1 << 17  # items of a kind the arrays may hold beyond 4x what runs before they are compacted

    def append(self, network, flow: Dataflow, run: DataflowRun) -> _Active:
        """Add `flow` (started now as `run`) to the loop: its gates, transfers and routes; the gates whose
        count is zero are ready at once. (The run's record is complete when its done gate fires if every gate
        and transfer leads to the done gate, as every lowering in netsim does; transfers still moving then are
        simulated to their end but not recorded.)"""
        g0, n = self._take("gates", flow.gates), flow.gates
        e0 = self._take("edges", len(flow.succ))
        s0 = self._take("sends", len(flow.send))
        t0, m = self._take("transfers", flow.transfers), flow.transfers
        q0 = self._take("targets", len(flow.tgt))
        room = self.used["gates"] + self.used["transfers"]  # every gate's timer and transfer's arrival at most
        if len(self.h_t) < room:
            fill = int(self.ps[P_HEAP])
            self.h_t = np.concatenate([self.h_t[:fill], np.zeros(max(room, 2 * len(self.h_t)) - fill)])
            self.h_p = np.concatenate([self.h_p[:fill], np.zeros(len(self.h_t) - fill, dtype=np.int64)])
        gs, ts = slice(g0, g0 + n), slice(t0, t0 + m)
        self.g_count[gs] = flow.count
        self.g_delay[gs] = flow.delay
        self.g_succ_lo[gs], self.g_succ_hi[gs] = flow.succ_off[:-1] + e0, flow.succ_off[1:] + e0
        self.g_send_lo[gs], self.g_send_hi[gs] = flow.send_off[:-1] + s0, flow.send_off[1:] + s0
        self.g_fire[gs] = np.nan
        self.g_run[gs] = -1
        rid = self._next_run
        self._next_run += 1
        self.g_run[g0 + flow.done] = rid
        self.g_hook[gs] = False
        self.g_hook[flow.hooks + g0] = True
        self.succ[e0:e0 + len(flow.succ)] = flow.succ + g0
        self.send[s0:s0 + len(flow.send)] = flow.send + t0
        self.tgt[q0:q0 + len(flow.tgt)] = flow.tgt + g0
        key_ids = np.array([self._key_id.setdefault(k, len(self._key_id)) for k in flow.keys], dtype=np.int64)
        tag_ids = np.array([self._tag_id.setdefault(t, len(self._tag_id)) for t in flow.tags], dtype=np.int64)
        self.keys[len(self.keys):] = list(self._key_id)[len(self.keys):]
        self.tags[len(self.tags):] = list(self._tag_id)[len(self.tags):]
        self.t_src[ts], self.t_dst[ts], self.t_bytes[ts] = flow.src, flow.dst, flow.nbytes
        self.t_key[ts] = key_ids[flow.t_key] if m else 0
        self.t_tag[ts] = tag_ids[flow.t_tag] if m else 0
        self.t_batch[ts] = flow.batch
        self.t_run[ts] = rid
        self.t_tgt_lo[ts], self.t_tgt_hi[ts] = flow.tgt_off[:-1] + q0, flow.tgt_off[1:] + q0
        self.t_parts[ts] = 0
        self.t_start[ts] = self.t_end[ts] = np.nan
        self.t_order[ts] = -1
        self.t_rec[ts] = False
        self.t_unrouted[ts] = False
        active = _Active(run, g0, t0, network._next_id, rid)
        self.active[rid] = active
        self.route(network, np.arange(t0, t0 + m, dtype=np.int64))
        ready = np.flatnonzero(flow.count == 0) + g0
        r0 = int(self.ps[P_READY])
        self.ready[r0:r0 + len(ready)] = ready
        self.ps[P_READY] = r0 + len(ready)
        return active

    def compact(self, store) -> bool:
        """Move the running dataflows to the front of the arrays, dropping what finished ones left (dataflows
        that overlap without end never let the arrays start afresh): gates, transfers, their edges, sends,
        targets, flows and entries, renumbered, and every reference to them — the heap, the ready list, the
        flows in the store, the routing errors, the pending step rows. Returns False (and changes nothing)
        when something still in flight belongs to no running dataflow."""
        from netsim.network.fluid_kernel import PROGRAM

        runs = sorted(self.active.values(), key=lambda a: a.g0)
        keep_g = np.concatenate([np.arange(a.g0, a.g1) for a in runs] or [np.zeros(0, np.int64)]).astype(np.int64)
        keep_t = np.concatenate([np.arange(a.t0, a.t1) for a in runs] or [np.zeros(0, np.int64)]).astype(np.int64)
        gmap = np.full(self.used["gates"] + 1, -1, dtype=np.int64)
        gmap[keep_g] = np.arange(len(keep_g))
        tmap = np.full(self.used["transfers"] + 1, -1, dtype=np.int64)
        tmap[keep_t] = np.arange(len(keep_t))
        fill, ready = int(self.ps[P_HEAP]), int(self.ps[P_READY])
        hp = self.h_p[:fill]
        moving = np.flatnonzero(store.f_alive & (store.f_batch == PROGRAM))
        mp = store.f_index[moving] >> PATH_BITS
        if ((tmap[hp[hp >= 0]] < 0).any() or (gmap[-hp[hp < 0] - 1] < 0).any() or
                (gmap[self.ready[:ready]] < 0).any() or (tmap[mp] < 0).any()):
            return False

        def ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """(items of ranges [lo, hi) in order, new lo, new hi)"""
            n = hi - lo
            ends = np.cumsum(n)
            items = np.repeat(lo - (ends - n), n) + np.arange(int(ends[-1]) if len(ends) else 0)
            return items, ends - n, ends

        edges, e_lo, e_hi = ranges(self.g_succ_lo[keep_g], self.g_succ_hi[keep_g])
        sends, s_lo, s_hi = ranges(self.g_send_lo[keep_g], self.g_send_hi[keep_g])
        tgts, q_lo, q_hi = ranges(self.t_tgt_lo[keep_t], self.t_tgt_hi[keep_t])
        flows, f_lo, f_hi = ranges(self.t_fl_lo[keep_t], self.t_fl_hi[keep_t])
        ents, n_lo, n_hi = ranges(self.fl_ent_lo[flows], self.fl_ent_hi[flows])
        succ, send, tgt = gmap[self.succ[edges]], tmap[self.send[sends]], gmap[self.tgt[tgts]]
        for name in GROUPS["gates"]:
            if name not in ("ready", "note"):
                getattr(self, name)[:len(keep_g)] = getattr(self, name)[keep_g]
        self.ready[:ready] = gmap[self.ready[:ready]]
        for name in GROUPS["transfers"]:
            if name not in ("dr_p", "dr_end"):
                getattr(self, name)[:len(keep_t)] = getattr(self, name)[keep_t]
        for name in GROUPS["flows"]:
            getattr(self, name)[:len(flows)] = getattr(self, name)[flows]
        fmap = np.full(self.used["flows"] + 1, -1, dtype=np.int64)  # (index -1: a chain's end stays -1)
        fmap[flows] = np.arange(len(flows))
        self.fl_owner[:len(flows)] = tmap[self.fl_owner[:len(flows)]]
        self.fl_next[:len(flows)] = fmap[self.fl_next[:len(flows)]]
        self.cls_stamp[:] = -1
        for name in GROUPS["entries"]:
            getattr(self, name)[:len(ents)] = getattr(self, name)[ents]
        g, t, f = len(keep_g), len(keep_t), len(flows)
        self.succ[:len(succ)], self.send[:len(send)], self.tgt[:len(tgt)] = succ, send, tgt
        self.g_succ_lo[:g], self.g_succ_hi[:g], self.g_send_lo[:g], self.g_send_hi[:g] = e_lo, e_hi, s_lo, s_hi
        self.t_tgt_lo[:t], self.t_tgt_hi[:t], self.t_fl_lo[:t], self.t_fl_hi[:t] = q_lo, q_hi, f_lo, f_hi
        self.fl_ent_lo[:f], self.fl_ent_hi[:f] = n_lo, n_hi
        self.h_p[:fill] = np.where(hp >= 0, tmap[np.maximum(hp, 0)], -gmap[np.maximum(-hp - 1, 0)] - 1)
        low = store.f_index[moving] & ((1 << PATH_BITS) - 1)
        store.f_index[moving] = (tmap[mp] << PATH_BITS) | low
        self.unrouted = {int(tmap[p]): e for p, e in self.unrouted.items() if tmap[p] >= 0}
        g_at = t_at = 0
        for a in runs:  # each run's block, in the same order, from the front
            a.g0, a.t0 = g_at, t_at
            g_at, t_at = g_at + a.run.flow.gates, t_at + a.run.flow.transfers
            a.step_rows = [(tmap[sub], loads) for sub, loads in a.step_rows]
        self.used.update(gates=g, transfers=t, edges=len(succ), sends=len(send), targets=len(tgt), flows=f,
                         entries=len(ents))
        return True

    def route(self, network, which: np.ndarray) -> None:
        """Flows and link entries of transfers `which` (not yet sent), from the network's current routes:
        one lookup per dataflow, route key and batch label (a transfer that already had routes gets new
        ones; the old ones stay unused in the arrays)."""
        if not len(which):
            return
        first = self.used["flows"]
        order = np.lexsort((self.t_batch[which], self.t_key[which], self.t_run[which]))
        which = which[order]
        cell = np.stack([self.t_run[which], self.t_key[which], self.t_batch[which]])
        cuts = np.flatnonzero((np.diff(cell, axis=1) != 0).any(axis=0)) + 1
        recording = network._reference is not None
        routed = []  # (transfers, their routes, each flow's bytes) per cell
        for sub in np.split(which, cuts):
            if self.unrouted:
                for p in sub.tolist():
                    self.unrouted.pop(p, None)
            self.t_unrouted[sub] = False
            src, dst = self.t_src[sub], self.t_dst[sub]
            key = self.keys[int(self.t_key[sub[0]])]
            try:
                block = network._routes(src, dst, key)
            except TopologyError as exc:  # raised when the transfer is sent, as the reference executor would
                self.unrouted.update(dict.fromkeys(sub.tolist(), exc))
                self.t_unrouted[sub] = True
                self.t_fl_lo[sub] = self.t_fl_hi[sub] = 0
                continue
            sizes = self.t_bytes[sub]
            flow_bytes = _flow_bytes(block, sizes)
            if recording:
                self.active[int(self.t_run[sub[0]])].step_rows.append(
                    (sub, network.step_loads(src, dst, sizes, key, block, flow_bytes)))
            routed.append((sub, block, flow_bytes))
        f0 = self._take("flows", sum(len(block.counts) for _, block, _ in routed))  # (grown once, not per block)
        e0 = self._take("entries", sum(len(block.links) for _, block, _ in routed))
        for sub, block, flow_bytes in routed:
            nf, ne = len(block.counts), len(block.links)
            fs = slice(f0, f0 + nf)
            self.fl_bytes[fs] = flow_bytes
            self.fl_cap[fs] = block.cap
            self.fl_path[fs] = block.path
            ends = np.cumsum(block.counts) + e0
            self.fl_ent_lo[fs], self.fl_ent_hi[fs] = ends - block.counts, ends
            self.fl_owner[fs] = sub[block.owner]
            self.fl_next[fs] = -1
            self.en_link[e0:e0 + ne] = block.links
            self.en_coef[e0:e0 + ne] = block.coef
            local = np.arange(len(sub))
            self.t_fl_lo[sub] = np.searchsorted(block.owner, local) + f0
            self.t_fl_hi[sub] = np.searchsorted(block.owner, local, side="right") + f0
            self.t_lat[sub] = block.latency
            f0, e0 = f0 + nf, e0 + ne
        self._hash_records(first, self.used["flows"])

    def _hash_records(self, lo: int, hi: int) -> None:
        """`fl_hash` of flow records lo..hi (their entries one block, in order): equal for records with the same
        bytes, cap, links and coefficients, rarely equal otherwise (the class table's slot: the kernel checks
        equality before a record joins a class, `fluid_kernel._same_flow`)."""
        if hi <= lo:
            return
        e_lo, e_hi = self.fl_ent_lo[lo:hi], self.fl_ent_hi[lo:hi]
        entries = slice(int(e_lo[0]), int(e_hi[-1]))
        count = (e_hi - e_lo).astype(np.uint64)
        with np.errstate(over="ignore"):
            pos = np.arange(entries.stop - entries.start, dtype=np.uint64) - np.repeat(
                (e_lo - e_lo[0]).astype(np.uint64), e_hi - e_lo)
            each = ((self.en_link[entries].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                     + (self.en_coef[entries] * 4096.0).astype(np.int64).astype(np.uint64))
                    * (pos * np.uint64(2) + np.uint64(0x100000001B3)))
            h = np.zeros(hi - lo, dtype=np.uint64)
            has = count > 0
            if entries.stop > entries.start:
                h[has] = np.add.reduceat(each, (e_lo - e_lo[0])[has])
            cap = np.where(np.isfinite(self.fl_cap[lo:hi]), self.fl_cap[lo:hi], -1.0).astype(np.int64)
            h = ((h ^ (count * np.uint64(1000003))) * np.uint64(0xBF58476D1CE4E5B9)
                 + self.fl_bytes[lo:hi].astype(np.int64).astype(np.uint64)) * np.uint64(0x94D049BB133111EB) \
                + cap.astype(np.uint64)
            h ^= h >> np.uint64(31)
        self.fl_hash[lo:hi] = h.view(np.int64)

    def unsent(self) -> np.ndarray:
        """Transfers of running dataflows not yet sent."""
        spans = [np.arange(a.t0, a.t1) for a in self.active.values()]
        which = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
        return which[self.t_order[which] < 0]

    def split_step_rows(self, network) -> None:
        """Before links fail: the step rows not yet written keep only their transfers already sent, with the
        loads of the routes those used (`route` adds rows for the rest with the new routes)."""
        for active in self.active.values():
            kept = []
            for sub, loads in active.step_rows:
                sent = self.t_order[sub] >= 0
                if sent.all():
                    kept.append((sub, loads))
                elif sent.any():
                    part = sub[sent]
                    src, dst = self.t_src[part], self.t_dst[part]
                    key = self.keys[int(self.t_key[part[0]])]
                    block = network._routes(src, dst, key)
                    kept.append((part, network.step_loads(src, dst, self.t_bytes[part], key, block,
                                                          _flow_bytes(block, self.t_bytes[part]))))
            active.step_rows = kept

    def record(self, network, active: _Active) -> None:
        """Transfer rows (and step rows) for what of `active` has ended and was not yet written: in id order
        within each tag (a frame of one run with one tag then has nothing to sort)."""
        ts = slice(active.t0, active.t1)
        ended = ~np.isnan(self.t_end[ts]) & ~self.t_rec[ts]
        which = np.flatnonzero(ended) + active.t0
        if len(which) and network.table.keep:
            self.t_rec[which] = True
            tags = self.t_tag[which]
            step = network.table.rows  # chunks no longer than a streamed table's parts: one gathered at a time
            for tag in np.unique(tags).tolist():  # one chunk per tag (a chunk's scalar column)
                rows = which if (tags == tag).all() else which[tags == tag]
                for lo in range(0, len(rows), step):
                    part = rows[lo:lo + step]
                    network.table.extend(id=active.first_id + part - active.t0, src=self.t_src[part],
                                         dst=self.t_dst[part], size_B=self.t_bytes[part], start_s=self.t_start[part],
                                         end_s=self.t_end[part], tag=self.tags[tag])
        left = []
        for sub, loads in active.step_rows:  # batches whose transfers have all been sent
            order = self.t_order[sub]
            if order.min() < 0:
                left.append((sub, loads))
                continue
            network._steps.append(batch=active.first_id + int(sub.min()) - active.t0,
                                  tag=self.tags[int(self.t_tag[sub[0]])], time_s=float(self.t_start[sub].min()),
                                  transfers=len(sub), size_B=int(self.t_bytes[sub].sum()), **loads)
        active.step_rows = left

    def finish(self, network, rid: int) -> DataflowRun:
        """Dataflow `rid` is done: record it, copy its gates' and transfers' times onto its run."""
        active = self.active.pop(rid)
        self.record(network, active)
        run = active.run
        run.fire[:] = self.g_fire[active.g0:active.g1]
        run.t_start[:] = self.t_start[active.t0:active.t1]
        run.t_end[:] = self.t_end[active.t0:active.t1]
        run._count_down = run._set_delay = no_longer_running  # (the loop's arrays are no longer its)
        run._fired = None  # (`fired` reads `run.fire`)
        return run

    def notes(self) -> list[tuple[int, int]]:
        """What Python must act on from the last instant (and forget it), resolved now (acting on one may move
        the arrays): (dataflow id, -1) for a done gate, (its run, its local gate) for a hook gate."""
        n = int(self.ps[P_NOTE])
        self.ps[P_NOTE] = 0
        out = []
        for note in self.note[:n].tolist():
            if note >= 0:
                out.append((note, -1))
            else:
                gate = -note - 1
                owner = next(a for a in self.active.values() if a.g0 <= gate < a.g1)
                out.append((owner.run, gate - owner.g0))
        return out

    def count_down(self, gate: int) -> None:
        """Count gate `gate` down once, from Python; at zero it fires at the loop's next instant."""
        self.g_count[gate] -= 1
        if self.g_count[gate] == 0:
            r = int(self.ps[P_READY])
            self.ready[r] = gate
            self.ps[P_READY] = r + 1

    def members(self, index: int) -> list[int]:
        """The flow records of a loop flow (its `f_index`): the one it was made from, then the records that
        joined it (`fluid_kernel._same_flow`)."""
        p, path = index >> PATH_BITS, (index & ((1 << PATH_BITS) - 1)) - 1
        lo, hi = int(self.t_fl_lo[p]), int(self.t_fl_hi[p])
        fl = lo + int(np.argmax(self.fl_path[lo:hi] == path)) if hi > lo else lo
        out = [fl]
        while self.fl_next[out[-1]] >= 0:
            out.append(int(self.fl_next[out[-1]]))
        return out

    def transfer_of(self, p: int) -> tuple[int, int, tuple]:
        """(src, dst, route key) of transfer p."""
        return int(self.t_src[p]), int(self.t_dst[p]), self.keys[int(self.t_key[p])]

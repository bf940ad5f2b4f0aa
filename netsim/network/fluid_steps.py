"""Step schedules run inside the fluid engine: a collective's whole event loop in compiled code.

A step schedule (ring, tree, halving-doubling, direct, pipelined lanes; see
`netsim.collectives.schedule`) is data flow over virtual ranks: a rank enters step k once every
transfer addressed to it in steps < k has arrived (and, with ``wait_sends``, its own step-k-1 sends;
with a ``follower``, the sends of the rank it follows), and on entering it sends its step-k
transfers. Run by the Python executor, every arrival and every drain is a SimPy event and a
dozen Python calls (~45 us per transfer). Here the fluid model runs that loop itself:

    instant t:  drain flows due at t ─► transfers whose last flow drained arrive at t + latency
                arrivals due at t    ─► gates of the ranks they feed count down
                ranks whose gate hit 0 enter their step ─► its sends become flows
                max-min rates on the component of what changed (`fluid_kernel.recompute`)
                next instant: the earliest drain or arrival

and returns to Python only when Python must act: the schedule finished (its event fires), a flow
of another sender drained (its callback runs), SimPy has an event before the next instant (a
compute step, a fault, another collective's arrival), storage must grow, or the link meter's
bins must be widened. The rules are those of the Python executor and the fluid model (drain
tolerance, arrivals closer than `base.ARRIVAL_TOLERANCE` delivered together, rates recomputed on
the changed component), so both give the same end times; the test suite runs both side by side.

Routes are looked up once per step and channel when the schedule starts (`build`), which is why
only policies that route each transfer on its own (neither planning a batch nor learning) run
here; the others, and runs that record per-step loads or cap endpoints, use the Python executor.

Transfer ids are taken in a block when the schedule starts and given out in send order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from netsim.network.base import ARRIVAL_TOLERANCE, _flow_bytes
from netsim.network.fluid_kernel import NONE, drained, link_entries, next_finish, recompute, remove_flows

PROGRAM = -2  # `f_batch` of a flow that belongs to the running schedule (Python batches are >= 0)
PATH_BITS = 16  # `f_index` of such a flow: transfer << PATH_BITS | (path index + 1)

# why `advance` returned
IDLE, DONE, FOREIGN, ROOM, METER, ONE = range(6)

# slots of the program's int64 state vector `ps`
P_V, P_K, P_HEAP, P_FINISHED, P_SENT, P_WAIT_SENDS, P_FOLLOW, P_PHASE, P_CURSOR, P_READY, P_FOREIGN, \
    P_RATES, P_NEED_F, P_NEED_E, P_N = range(15)
# slots of the store's int64 counters `sc`
S_FLOW_FREE, S_ENTRY_FREE, S_SEEDS, S_SEED_LINKS, S_STAMP = range(5)


@dataclass(eq=False)
class Program:
    """A step schedule flattened into arrays for `advance`, with its run state.

    Transfers are numbered step by step (`step_off[k]` is step k's first); `sends` lists, per
    (step, rank), the transfers that rank sends on entering that step; a transfer's flows and a
    flow's link entries come from its route (looked up per step and channel).
    """

    schedule: object
    key: tuple
    tag: str
    node_of: np.ndarray
    t_src_v: np.ndarray
    t_dst_v: np.ndarray
    t_step: np.ndarray
    t_bytes: np.ndarray
    t_chan: np.ndarray  # channel of the sender (-1: none)
    s_off: np.ndarray
    s_idx: np.ndarray
    gate: np.ndarray
    entered: np.ndarray
    follower: np.ndarray
    ps: np.ndarray
    fs: np.ndarray = field(default_factory=lambda: np.zeros(2))
    first_id: int = 0
    done: object = None
    recorded: np.ndarray | None = None  # transfers already in the transfers table
    routes: tuple = ()  # t_fl_off, fl_bytes, fl_cap, fl_path, fl_ent_off, en_link, en_coef, t_lat

    def __post_init__(self) -> None:
        n = len(self.t_src_v)
        self.t_parts = np.zeros(n, dtype=np.int64)
        self.t_start = np.full(n, np.nan)
        self.t_end = np.full(n, np.nan)
        self.t_order = np.full(n, -1, dtype=np.int64)
        self.h_t = np.zeros(n)
        self.h_p = np.zeros(n, dtype=np.int64)
        self.ready_j = np.zeros(len(self.gate), dtype=np.int64)
        self.ready_r = np.zeros(len(self.gate), dtype=np.int64)
        self.dr_p = np.zeros(n, dtype=np.int64)
        self.dr_end = np.zeros(n)

    @property
    def transfers(self) -> int:
        return len(self.t_src_v)

    def transfer_key(self, p: int) -> tuple:
        c = int(self.t_chan[p])
        return self.key if c < 0 else self.key + (c,)

    def rows(self, which: np.ndarray) -> dict:
        """Transfer-table columns for transfers `which` (in order of their ends)."""
        which = which[np.lexsort((self.t_order[which], self.t_end[which]))]
        return dict(id=self.first_id + self.t_order[which], src=self.node_of[self.t_src_v[which]],
                    dst=self.node_of[self.t_dst_v[which]], bytes=self.t_bytes[which], start=self.t_start[which],
                    end=self.t_end[which], tag=self.tag)


def build(network, schedule, key: tuple, tag: str) -> Program:
    """Flatten `schedule` (node_of, steps, channel_of, follower, wait_sends) and route it on `network`."""
    node_of = np.asarray(schedule.node_of, dtype=np.int64)
    steps = schedule.steps
    v, k = len(node_of), len(steps)
    lens = np.fromiter((len(s.src) for s in steps), dtype=np.int64, count=k)
    t_src_v = np.concatenate([np.asarray(s.src, dtype=np.int64) for s in steps])
    t_dst_v = np.concatenate([np.asarray(s.dst, dtype=np.int64) for s in steps])
    t_bytes = np.concatenate([np.asarray(s.nbytes, dtype=np.int64) for s in steps])
    t_step = np.repeat(np.arange(k, dtype=np.int64), lens)
    cell = t_step * v + t_src_v
    s_idx = np.argsort(cell, kind="stable")
    s_off = np.zeros(k * v + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell, minlength=k * v), out=s_off[1:])
    gate = np.zeros((k + 1) * v, dtype=np.int64)
    np.add.at(gate, (t_step + 1) * v + t_dst_v, 1)
    if schedule.wait_sends:
        np.add.at(gate, (t_step + 1) * v + t_src_v, 1)
    follower = np.full(v, -1, dtype=np.int64) if schedule.follower is None else \
        np.asarray(schedule.follower, dtype=np.int64)
    later = follower[t_src_v]
    np.add.at(gate, (t_step * v + later)[later >= 0], 1)
    chan = np.full(len(t_src_v), -1, dtype=np.int64) if schedule.channel_of is None else \
        np.asarray(schedule.channel_of, dtype=np.int64)[t_src_v]
    ps = np.zeros(P_N, dtype=np.int64)
    ps[P_V], ps[P_K] = v, k
    ps[P_WAIT_SENDS] = int(bool(schedule.wait_sends))
    ps[P_FOLLOW] = int(schedule.follower is not None)
    program = Program(schedule, key, tag, node_of, t_src_v, t_dst_v, t_step, t_bytes, chan, s_off, s_idx, gate,
                      np.zeros((k + 1) * v, dtype=np.bool_), follower, ps)
    route(network, program)
    ready = np.flatnonzero(gate[:v] == 0)  # ranks that enter step 0 at once
    program.ready_r[:len(ready)] = ready
    ps[P_READY] = len(ready)
    return program


def route(network, program: Program) -> None:
    """(Re)compute every transfer's flows and link entries from the network's current routes."""
    step_off = np.concatenate([[0], np.cumsum(np.bincount(program.t_step, minlength=int(program.ps[P_K])))])
    owner, fbytes, cap, path, count, links, coef = [], [], [], [], [], [], []
    lat = np.zeros(program.transfers)
    for k in range(int(program.ps[P_K])):
        lo, hi = int(step_off[k]), int(step_off[k + 1])
        if lo == hi:
            continue
        chan = program.t_chan[lo:hi]
        channels = np.unique(chan).tolist()
        for c in channels:
            sub = np.arange(lo, hi) if len(channels) == 1 else np.flatnonzero(chan == c) + lo
            block = network._routes(program.node_of[program.t_src_v[sub]], program.node_of[program.t_dst_v[sub]],
                                    program.key if c < 0 else program.key + (c,))
            owner.append(sub[block.owner])
            fbytes.append(_flow_bytes(block, program.t_bytes[sub]).astype(np.float64))
            cap.append(block.cap)
            path.append(block.path)
            count.append(block.counts)
            links.append(block.links)
            coef.append(block.coef)
            lat[sub] = block.latency
    owner_a = np.concatenate(owner)
    count_a = np.concatenate(count)
    order = np.argsort(owner_a, kind="stable")
    ent_start = np.concatenate([[0], np.cumsum(count_a)])[:-1][order]
    count_o = count_a[order]
    ent_off = np.concatenate([[0], np.cumsum(count_o)]).astype(np.int64)
    gather = np.repeat(ent_start - ent_off[:-1], count_o) + np.arange(int(ent_off[-1]))
    t_fl_off = np.concatenate([[0], np.cumsum(np.bincount(owner_a, minlength=program.transfers))]).astype(np.int64)
    program.routes = (t_fl_off, np.concatenate(fbytes)[order], np.concatenate(cap).astype(np.float64)[order],
                      np.concatenate(path).astype(np.int64)[order], ent_off,
                      np.concatenate(links).astype(np.int64)[gather], np.concatenate(coef).astype(np.float64)[gather],
                      lat)


# ---- compiled loop --------------------------------------------------------------------------------

@njit(cache=True)
def _heap_push(h_t, h_p, n, t, p):
    i = n
    h_t[i] = t
    h_p[i] = p
    while i > 0:
        up = (i - 1) // 2
        if h_t[up] <= h_t[i]:
            break
        h_t[up], h_t[i] = h_t[i], h_t[up]
        h_p[up], h_p[i] = h_p[i], h_p[up]
        i = up
    return n + 1


@njit(cache=True)
def _heap_pop(h_t, h_p, n):
    n -= 1
    h_t[0] = h_t[n]
    h_p[0] = h_p[n]
    i = 0
    while True:
        a = 2 * i + 1
        if a >= n:
            break
        b = a + 1
        c = b if b < n and h_t[b] < h_t[a] else a
        if h_t[i] <= h_t[c]:
            break
        h_t[c], h_t[i] = h_t[i], h_t[c]
        h_p[c], h_p[i] = h_p[i], h_p[c]
        i = c
    return n


@njit(cache=True)
def _arrivals(now, n, dr_p, dr_end, t_lat, t_end, h_t, h_p, ps):
    """Transfers dr_p[:n] sent their last byte at `now`: each ends a latency later; ends closer than
    ARRIVAL_TOLERANCE (relative) are delivered together, at the latest of them."""
    same = True
    for i in range(n):
        p = dr_p[i]
        dr_end[i] = now + t_lat[p]
        t_end[p] = dr_end[i]
        if dr_end[i] != dr_end[0]:
            same = False
    if same:
        for i in range(n):
            ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], dr_end[0], dr_p[i])
        return
    order = np.argsort(dr_end[:n], kind="mergesort")
    gap = ARRIVAL_TOLERANCE * max(abs(dr_end[order[n - 1]]), 1e-9)
    lo = 0
    for i in range(1, n + 1):
        if i == n or dr_end[order[i]] - dr_end[order[i - 1]] > gap:
            t = dr_end[order[i - 1]]
            for j in range(lo, i):
                ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], t, dr_p[order[j]])
            lo = i


@njit(cache=True)
def _count_down(j, r, gate, ready_j, ready_r, ps):
    idx = j * ps[P_V] + r
    gate[idx] -= 1
    if gate[idx] == 0:
        n = ps[P_READY]
        ready_j[n] = j
        ready_r[n] = r
        ps[P_READY] = n + 1


@njit(cache=True)
def advance(now, horizon, bin_limit, one_instant, sc, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_cap, f_batch,
            f_index, f_finish, f_head, flow_mark, seed_mark, seeds, comp_f, scratch, scratch_batch, scratch_index,
            e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext, l_head, link_mark, seed_link_mark, seed_links, comp_l,
            demand, count, residual, frozen, changed, load, flow_free, entry_free, capacity, metered, since, total, peak, bins, runs, width,
            finish_rel, finish_clock, ps, fs, gate, entered, s_off, s_idx, t_src_v, t_dst_v, t_step, follower,
            t_fl_off, fl_bytes, fl_cap, fl_path, fl_ent_off, en_link, en_coef, t_lat, t_parts, t_start, t_end,
            t_order, h_t, h_p, ready_j, ready_r, dr_p, dr_end):
    """Run instants from `now` while the next one is at most `horizon`; returns why it stopped (`fs[0]`:
    the last instant handled, `fs[1]`: the next one). See the module docstring."""
    v = ps[P_V]
    k_steps = ps[P_K]
    while True:
        if ps[P_PHASE] == 0:  # a fresh instant
            if metered and now > bin_limit:
                fs[0] = now
                return METER
            fs[0] = now
            k = drained(now, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, finish_rel,
                        finish_clock, scratch, scratch_batch, scratch_index)
            n_foreign = 0
            n_done = 0
            if k:
                sc[S_FLOW_FREE], sc[S_ENTRY_FREE], sc[S_SEED_LINKS] = remove_flows(
                    scratch[:k], f_alive, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free,
                    sc[S_FLOW_FREE], entry_free, sc[S_ENTRY_FREE], seed_links, sc[S_SEED_LINKS], seed_link_mark,
                    sc[S_STAMP])
                for i in range(k):
                    if scratch_batch[i] == PROGRAM:
                        p = scratch_index[i] >> PATH_BITS
                        t_parts[p] -= 1
                        if t_parts[p] == 0:
                            dr_p[n_done] = p
                            n_done += 1
                    else:  # another sender's flow: Python's to handle
                        scratch_batch[n_foreign] = scratch_batch[i]
                        scratch_index[n_foreign] = scratch_index[i]
                        n_foreign += 1
            ps[P_FOREIGN] = n_foreign
            if n_done:
                _arrivals(now, n_done, dr_p, dr_end, t_lat, t_end, h_t, h_p, ps)
            while ps[P_HEAP] > 0 and h_t[0] == now:
                p = h_p[0]
                ps[P_HEAP] = _heap_pop(h_t, h_p, ps[P_HEAP])
                s = t_step[p]
                _count_down(s + 1, t_dst_v[p], gate, ready_j, ready_r, ps)
                if ps[P_WAIT_SENDS]:
                    _count_down(s + 1, t_src_v[p], gate, ready_j, ready_r, ps)
                if ps[P_FOLLOW]:
                    later = follower[t_src_v[p]]
                    if later >= 0:
                        _count_down(s, later, gate, ready_j, ready_r, ps)
            ps[P_PHASE] = 1
            ps[P_CURSOR] = 0
        # ranks whose gates opened enter their steps and send (resumable: storage may run out)
        i = ps[P_CURSOR]
        while i < ps[P_READY]:
            j = ready_j[i]
            r = ready_r[i]
            if gate[j * v + r] == 0 and not entered[j * v + r] and (j == 0 or entered[(j - 1) * v + r]):
                while j < k_steps:
                    a = s_off[j * v + r]
                    b = s_off[j * v + r + 1]
                    need_f = 0
                    need_e = 0
                    for q in range(a, b):
                        p = s_idx[q]
                        need_f += t_fl_off[p + 1] - t_fl_off[p]
                        need_e += fl_ent_off[t_fl_off[p + 1]] - fl_ent_off[t_fl_off[p]]
                    if need_f > sc[S_FLOW_FREE] or need_e > sc[S_ENTRY_FREE]:
                        ready_j[i] = j
                        ps[P_CURSOR] = i
                        ps[P_NEED_F] = need_f
                        ps[P_NEED_E] = need_e
                        return ROOM
                    entered[j * v + r] = True
                    for q in range(a, b):
                        p = s_idx[q]
                        t_start[p] = now
                        t_order[p] = ps[P_SENT]
                        ps[P_SENT] += 1
                        parts = 0
                        for fl in range(t_fl_off[p], t_fl_off[p + 1]):
                            if fl_bytes[fl] > 0:
                                parts += 1
                                sc[S_FLOW_FREE] -= 1
                                f = flow_free[sc[S_FLOW_FREE]]
                                f_alive[f] = True
                                f_rem[f] = fl_bytes[fl]
                                f_size[f] = fl_bytes[fl]
                                f_t[f] = now
                                f_rate[f] = 0.0
                                f_cap[f] = fl_cap[fl]
                                f_batch[f] = PROGRAM
                                f_index[f] = (p << PATH_BITS) | (fl_path[fl] + 1)
                                f_finish[f] = np.inf
                                f_head[f] = NONE
                                sc[S_ENTRY_FREE] = link_entries(
                                    f, en_link, en_coef, fl_ent_off[fl], fl_ent_off[fl + 1], entry_free,
                                    sc[S_ENTRY_FREE], e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext, f_head, l_head)
                                if seed_mark[f] != sc[S_STAMP]:
                                    seed_mark[f] = sc[S_STAMP]
                                    seeds[sc[S_SEEDS]] = f
                                    sc[S_SEEDS] += 1
                        t_parts[p] = parts
                        if parts == 0:  # nothing to move: it arrives a latency from now
                            t_end[p] = now + t_lat[p]
                            ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], t_end[p], p)
                    if gate[(j + 1) * v + r] != 0:
                        break
                    j += 1
                if j == k_steps and not entered[k_steps * v + r]:
                    entered[k_steps * v + r] = True
                    ps[P_FINISHED] += 1
            i += 1
        ps[P_READY] = 0
        ps[P_CURSOR] = 0
        ps[P_PHASE] = 0
        if sc[S_SEEDS] or sc[S_SEED_LINKS]:
            nf, nxt = recompute(now, seeds, sc[S_SEEDS], seed_links, sc[S_SEED_LINKS], l_head, e_lnext, e_fnext,
                                e_flow, e_link, e_coef, f_head, f_alive, f_rem, f_t, f_rate, f_cap, f_finish, capacity,
                                load, flow_mark, link_mark, sc[S_STAMP], comp_f, comp_l, demand, count, residual,
                                frozen, changed, metered, since, total, peak, bins, runs, width, n_slots)
            if nf > 0:
                ps[P_RATES] += 1
        else:
            nxt = next_finish(n_slots, f_finish)
        sc[S_SEEDS] = 0
        sc[S_SEED_LINKS] = 0
        sc[S_STAMP] += 1
        if ps[P_HEAP] > 0 and h_t[0] < nxt:
            nxt = h_t[0]
        fs[1] = nxt
        if ps[P_FINISHED] == v:
            return DONE
        if ps[P_FOREIGN] > 0:
            return FOREIGN
        if one_instant:
            return ONE
        if nxt > horizon:
            return IDLE
        now = nxt

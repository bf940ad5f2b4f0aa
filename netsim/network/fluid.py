"""The fluid model: flow-level max-min fair sharing, rates recomputed only when flows start or end.

Transfers that start at one instant are batched: the first schedules a settle event at a priority
below every ordinary event of that instant, so all of them join one rate computation. Flows that
drain at the same instant finish in the same settle, whatever their batch or component.

Storage and rate computation live in `fluid_kernel` (compiled): flows and their link entries sit in
preallocated arrays reused through free lists, each link keeps the list of its entries, and an event
recomputes max-min rates only for the component connected to what changed — the flows that started
or drained and the links they used. Flows elsewhere keep their rates, and their bytes are not touched
(a flow's bytes are brought up to date only when its rate changes). `reference = True` (tests) instead
recomputes every flow at every event with the plain numpy solver `max_min.max_min_rates`;
`check_rates = True` (tests) checks each partial recomputation against that full one.

Dataflows (collective step schedules, programs: `run_dataflow`, see `fluid_dataflow`) run inside the
model, any number at once: their whole event loop — drains, arrivals, gates, timers, new sends,
rates — in compiled code, returning to Python only when SimPy has something due first, a dataflow
finished or another sender's flow drained. Transfers of other senders (`send_batch`) share the same
storage and rate computations, so both kinds mix freely.
"""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
import simpy

from netsim.network import fluid_kernel as kernel
from netsim.network.base import Batch, NetworkModel, split_profile
from netsim.network.dataflow import Dataflow, DataflowRun
from netsim.network.fluid_dataflow import Loop, no_longer_running
from netsim.network.max_min import max_min_rates

LATE = 2  # SimPy priority after NORMAL (1): runs once everything else at this instant has run
FINISH_REL = kernel.FINISH_REL  # a flow with less than this fraction of its bytes left is done
FINISH_CLOCK = kernel.FINISH_CLOCK  # ... or with less than this fraction of the clock left to run


class _Store:
    """Flow, entry and link arrays for the kernel, grown by doubling; slots come from free lists."""

    FLOW_FIELDS = {"f_alive": bool, "f_rem": float, "f_t": float, "f_rate": float, "f_size": float, "f_cap": float,
                   "f_finish": float, "f_batch": np.int64, "f_index": np.int64, "f_head": np.int64,
                   "flow_mark": np.int64, "seed_mark": np.int64, "seeds": np.int64, "comp_f": np.int64,
                   "scratch": np.int64, "scratch_batch": np.int64, "scratch_index": np.int64, "frozen": np.int64,
                   "f_pos": np.int64, "f_ver": np.int64, "f_due": float}
    # live flows from which the kernel may keep its drain queues and below which it stops, and what a rate
    # change costs them in flows scanned (kernel.Q_PER_RATED)
    QUEUES = (128, 64, 32)
    ENTRY_FIELDS = {"e_flow": np.int64, "e_link": np.int64, "e_coef": float, "e_lnext": np.int64,
                    "e_lprev": np.int64, "e_fnext": np.int64}

    def __init__(self, num_links: int, flows: int = 256, entries: int = 1024):
        self.l_head = np.full(num_links, kernel.NONE, dtype=np.int64)
        self.link_mark = np.full(num_links, -1, dtype=np.int64)
        self.seed_link_mark = np.full(num_links, -1, dtype=np.int64)
        self.seed_links = np.zeros(num_links, dtype=np.int64)
        self.comp_l = np.zeros(num_links, dtype=np.int64)
        self.changed = np.zeros(num_links, dtype=np.int64)
        self.demand = np.zeros(num_links)
        self.residual = np.zeros(num_links)
        self.count = np.zeros(num_links, dtype=np.int64)
        self.load = np.zeros(num_links)
        self.l_stat = np.zeros((kernel.L_ROWS, num_links))  # per-link sums (kernel.L_SUM, L_COEF) and scratch
        self.q_key = np.zeros((2, 0))  # the kernel's two queues of live flows (Q_FINISH, Q_DRAIN): keys,
        self.q_id = np.zeros((2, 2, 0), dtype=np.int64)  # (flow, version) per entry,
        assert len(self.QUEUES) == 3, "QUEUES: (from, until, per rated)"
        self.q_n = np.array([0, 0, 0, *self.QUEUES, 0, 0, 0], dtype=np.int64)  # (kernel.Q_*)
        # the kernel's sort and give-up scratch (`drained`, `_sort_link`, `_local`): as long as the flow and
        # the entry slots, whichever are more (a link's list can hold more entries than there are flows)
        self.w_key, self.w_idx = np.zeros(0), np.zeros(0, dtype=np.int64)
        self.flows = self.entries = 0
        for name, dtype in {**self.FLOW_FIELDS, **self.ENTRY_FIELDS}.items():
            setattr(self, name, np.zeros(0, dtype=dtype))
        self.flow_free = np.zeros(0, dtype=np.int64)
        self.entry_free = np.zeros(0, dtype=np.int64)
        self.n_flow_free = self.n_entry_free = 0
        self.n_seeds = self.n_seed_links = 0
        self.stamp = 0
        self.grow(flows, entries)

    def grow(self, flows: int, entries: int) -> None:
        """Room for at least `flows` more flows and `entries` more entries."""
        if flows > self.n_flow_free:
            old, new = self.flows, max(2 * self.flows, self.flows + flows - self.n_flow_free)
            live = self.flow_free[self.n_flow_free:old].copy()
            self.flow_free, self.n_flow_free = self._enlarge(self.FLOW_FIELDS, old, new, self.flow_free,
                                                             self.n_flow_free)
            self.flow_free[self.n_flow_free:] = live  # the permutation: free slots, then live ones
            self.f_pos[self.flow_free] = np.arange(new)
            self.f_finish[old:] = np.inf
            self.flow_mark[old:] = -1
            self.seed_mark[old:] = -1
            self.flows = new
            q_key, q_id = np.zeros((2, 4 * new)), np.zeros((2, 2, 4 * new), dtype=np.int64)
            q_key[:, :self.q_key.shape[1]] = self.q_key  # (a heap's prefix stays a heap)
            q_id[:, :, :self.q_id.shape[2]] = self.q_id
            self.q_key, self.q_id = q_key, q_id
        if entries > self.n_entry_free:
            old, new = self.entries, max(2 * self.entries, self.entries + entries - self.n_entry_free)
            self.entry_free, self.n_entry_free = self._enlarge(self.ENTRY_FIELDS, old, new, self.entry_free,
                                                               self.n_entry_free)
            self.entries = new
        if len(self.w_key) < max(self.flows, self.entries):
            self.w_key = np.empty(max(self.flows, self.entries))
            self.w_idx = np.empty(len(self.w_key), dtype=np.int64)

    def _enlarge(self, fields: dict, old: int, new: int, free: np.ndarray, n_free: int) -> tuple[np.ndarray, int]:
        """Arrays of `fields` from `old` to `new` slots; the new slots go on the free stack (lowest on top)."""
        for name, dtype in fields.items():
            grown = np.zeros(new, dtype=dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)
        stack = np.zeros(new, dtype=np.int64)
        stack[:n_free] = free[:n_free]
        stack[n_free:n_free + new - old] = np.arange(new - 1, old - 1, -1)
        return stack, n_free + new - old

    def alive(self) -> np.ndarray:
        return np.flatnonzero(self.f_alive)

    def seed_link_list(self, links: np.ndarray) -> None:
        """Mark `links` as changed: their flows are recomputed at the next recomputation."""
        for link in np.asarray(links, dtype=np.int64).tolist():
            if self.seed_link_mark[link] != self.stamp:
                self.seed_link_mark[link] = self.stamp
                self.seed_links[self.n_seed_links] = link
                self.n_seed_links += 1

    def seed_flow(self, f: int) -> None:
        if self.seed_mark[f] != self.stamp:
            self.seed_mark[f] = self.stamp
            self.seeds[self.n_seeds] = f
            self.n_seeds += 1


class _NoMeter:
    """Stand-in arrays for runs without a link meter (the kernel's signature stays one)."""

    total = peak = np.zeros(1)
    log_f = np.zeros((3, 1))
    log_link = np.zeros(1, dtype=np.int64)
    log_n = np.zeros(1, dtype=np.int64)
    log_room = 0


class FluidNetwork(NetworkModel):
    """Flow-level model: full-duplex links shared max-min fairly, latency added on arrival."""

    name = "fluid"
    help = "flow level: links shared max-min fairly by the flows crossing them, rates recomputed as flows start and end"
    check_rates = False  # tests switch this on to compare every partial recomputation with a full one
    # a recomputation whose component has more than `local_after` flows first settles from what changed
    # (`fluid_kernel._local`; the same rates to rounding): benchmarks and tests switch it off to compare, tests
    # lower the threshold to try it everywhere (both read when a network is made)
    local_rates = True
    local_after = kernel.LOCAL_AFTER
    reference = False  # tests switch this on to recompute every flow with the plain numpy solver

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        topo = self.topo
        # Endpoint caps are virtual links, one per sending node, after the real ones.
        if self.options.endpoint_rate_cap is not None:
            self._capacity = np.concatenate([topo.capacity, np.full(topo.num_nodes, self.options.endpoint_rate_cap)])
        else:  # a writable copy, as after a failure: the kernels are compiled for one array type
            self._capacity = np.array(topo.capacity)
        self._store = _Store(len(self._capacity))
        self._since = np.zeros(topo.num_links)  # per real link: since when its current load is unmetered
        self._no_meter = _NoMeter()
        self._batches: dict[int, Batch] = {}
        self._parts: dict[int, np.ndarray] = {}  # per batch: flows still going per transfer
        self._next_batch = 0
        self._pending: list[Batch] = []
        self._settle_scheduled = False
        self._generation = 0
        self._wake_at: float | None = None  # the instant of the pending wake-up, if any
        self._loop = Loop()  # the dataflows running in compiled code
        self._loop.ps[kernel.P_CLASSES] = self.flow_classes
        self._local_after = int(self.local_after) if self.local_rates else -1  # (-1: never)
        self._loop.ps[kernel.P_LOCAL] = self._local_after
        self._broken: Exception | None = None  # the routing error that stopped the compiled loop, if any
        self._kick = False  # a dataflow was started: settle at this instant
        self.rate_computations = 0
        self.flows_rated = 0  # flows whose rates were recomputed, summed over the recomputations
        self.entries_walked = 0  # entries of link lists the recomputations walked (following components)
        self.settled_locally = 0  # recomputations `fluid_kernel._local` settled (the rest followed components)
        self.flows_joined = 0  # loop flow records that joined a flow of their class (`fluid_kernel._same_flow`)
        self.classes_split = 0  # ... and that left it again, rerouted on their own when links failed
        self.dataflows_compiled = 0  # dataflows run in the compiled loop (the rest: the reference executor)

    # ---- events ---------------------------------------------------------------------------------

    def _start(self, batch: Batch) -> None:
        if not batch.all_live:
            block = batch.block
            parts = np.bincount(block.owner[batch.flow_bytes > 0], minlength=len(batch.src))
            idle = np.flatnonzero(parts == 0)  # transfers with no bytes to move
            if len(idle):
                self._drained(batch, idle, self.env.now)
                if len(idle) == len(batch.src):
                    return
        self._pending.append(batch)
        self._request_settle()

    def _request_settle(self) -> None:
        """Settle once everything else at this instant has run (or at the end of the delivery round)."""
        if not self._settle_scheduled and not self._delivering:
            self._settle_scheduled = True
            # Event.succeed() would schedule at NORMAL priority; mark it triggered by hand instead.
            ev = simpy.Event(self.env)
            ev._ok, ev._value = True, None
            ev.callbacks.append(self._on_settle)
            self.env.schedule(ev, priority=LATE)

    def _delivered(self) -> None:
        # Transfers started by a delivery round are admitted at once (a settle later at this same
        # instant, if any, finds the rates already right: settling twice at one instant is exact).
        if (self._pending or self._kick) and not self._settle_scheduled:
            self._settle()

    def _on_settle(self, _event: simpy.Event) -> None:
        self._settle_scheduled = False
        self._settle()

    def _on_wake(self, event: simpy.Event) -> None:
        if event.value == self._generation:
            self._wake_at = None
            self._settle()

    def _settle(self, horizon: float | None = None) -> None:
        """Handle the present instant (drains, new transfers, rates), and with dataflows running in
        compiled code the instants after it up to `horizon` (default: SimPy's next event)."""
        if self._loop.busy:
            if self._broken is not None:
                raise RuntimeError("the compiled loop stopped at an earlier routing error") from self._broken
            if self._pending:
                self._admit(self._pending)
                self._pending = []
            self._kick = False
            self._advance(float(self.env.peek() if horizon is None else horizon))
            return
        now = float(self.env.now)  # one compiled signature (SimPy starts at int 0)
        changed = self._finish_drained(now)
        if self._pending:
            self._admit(self._pending)
            self._pending = []
            changed = True
        nxt = self._recompute(now) if changed else None
        self._schedule_wake(nxt)

    def _schedule_wake(self, nxt: float | None = None) -> None:
        """Wake at the next drain (`nxt` when the caller knows it); wake-ups scheduled before this one are
        ignored (older generation). A wake-up already pending for that very instant is kept."""
        if nxt is None:
            s = self._store
            nxt = kernel.next_finish(s.f_alive, s.f_ver, s.q_key, s.q_id, s.q_n, s.flow_free, s.n_flow_free, s.flows,
                                     s.f_finish)
        loop = self._loop
        if loop.ps[kernel.P_HEAP] > 0:  # the loop's next arrival or timer
            nxt = min(nxt, float(loop.h_t[0]))
        if self._wake_at is not None and nxt == self._wake_at:
            return
        self._generation += 1
        self._wake_at = None
        if nxt < np.inf:
            self._wake_at = nxt
            wake = self.env.timeout(max(nxt - self.env.now, 0.0), value=self._generation)
            wake.callbacks.append(self._on_wake)

    # ---- dataflows in compiled code ------------------------------------------------------------

    compile_dataflows = True  # run dataflows in the compiled loop where possible (tests switch it off)
    flow_classes = True  # identical flows sent at one instant are one flow (`fluid_kernel._same_flow`; the
    # result is the same to rounding: benchmarks switch it off to measure what it saves; read when a network
    # is made)

    def run_dataflow(self, flow: Dataflow, on_fire: Callable[[int], None] | None = None) -> DataflowRun:
        """Run a dataflow in compiled code (`fluid_dataflow`), beside any others running: declined (the
        reference executor runs it) under the reference solver, with endpoint caps, and for routing policies
        that plan batches, learn or place routes in order of arrival (`Router.routes_each_transfer`). With
        per-step recording (`record_steps`) a row covers a batch label on a route key whole (the reference
        executor writes one per `send_batch`, which is the same while ranks keep in step)."""
        if (not self.compile_dataflows or self.reference or self.options.endpoint_rate_cap is not None
                or not self.router.routes_each_transfer):
            return super().run_dataflow(flow, on_fire)
        if self._broken is not None:
            raise RuntimeError("the compiled loop stopped at an earlier routing error") from self._broken
        loop = self._loop
        run = DataflowRun(flow, self.env.event(), compiled=True, on_fire=on_fire)
        before = loop.snapshot(self._store)
        active = loop.append(self, flow, run)
        f0, f1 = before[0]["flows"], loop.used["flows"]
        if f1 > f0 and loop.fl_path[f0:f1].max() + 2 >= 1 << kernel.PATH_BITS:  # too many paths to index
            loop.undo(before)
            return super().run_dataflow(flow, on_fire)
        # the run's hooks reach the network weakly (and are dropped when it finishes): a network nobody holds
        # any more is freed at once, with its arrays, not at the next full garbage collection
        network = weakref.ref(self)
        run._count_down = lambda gates: network()._count_down(active, gates)
        run._fired = lambda gates: network()._loop.g_fire[active.g0 + gates]
        run._set_delay = lambda gates, delay: network()._loop.g_delay.__setitem__(active.g0 + gates, delay)
        self.dataflows_compiled += 1
        self._next_id += flow.transfers
        self.transfers_started += flow.transfers
        self._kick = True
        self._request_settle()
        return run

    def _advance(self, horizon: float) -> None:
        """Run the compiled loop from now; act on why it stopped; schedule the next wake-up."""
        loop, s, meter = self._loop, self._store, self.meter
        m = meter or self._no_meter
        now = float(self.env.now)
        ps, fs = loop.ps, loop.fs
        while True:
            sc = np.array([s.n_flow_free, s.n_entry_free, s.n_seeds, s.n_seed_links, s.stamp], dtype=np.int64)
            rates_before, rated_before, walked_before, joined_before, settled_before = (
                int(ps[kernel.P_RATES]), int(ps[kernel.P_RATED]), int(ps[kernel.P_WALKED]), int(ps[kernel.P_JOINED]),
                int(ps[kernel.P_SETTLED]))
            status = kernel.advance(
                now, horizon, m.log_room, self.check_rates, sc, s.flows,
                s.f_alive, s.f_rem, s.f_t, s.f_rate, s.f_size, s.f_cap, s.f_batch, s.f_index, s.f_finish, s.f_head,
                s.flow_mark, s.seed_mark, s.seeds, s.comp_f, s.scratch, s.scratch_batch, s.scratch_index, s.e_flow,
                s.e_link, s.e_coef, s.e_lnext, s.e_lprev, s.e_fnext, s.l_head, s.link_mark, s.seed_link_mark,
                s.seed_links, s.comp_l, s.demand, s.count, s.residual, s.frozen, s.changed, s.load, s.flow_free, s.f_pos,
                s.entry_free,
                self._capacity, meter is not None, self._since, m.total, m.peak, m.log_f, m.log_link, m.log_n, ps,
                fs, *loop.kernel_args(), s.l_stat, s.f_ver, s.q_key, s.q_id, s.q_n, s.f_due, s.w_key,
                s.w_idx)
            s.n_flow_free, s.n_entry_free, s.n_seeds, s.n_seed_links, s.stamp = (int(x) for x in sc)
            self.rate_computations += int(ps[kernel.P_RATES]) - rates_before
            self.flows_rated += int(ps[kernel.P_RATED]) - rated_before
            self.entries_walked += int(ps[kernel.P_WALKED]) - walked_before
            self.flows_joined += int(ps[kernel.P_JOINED]) - joined_before
            self.settled_locally += int(ps[kernel.P_SETTLED]) - settled_before
            t = float(fs[0])
            if ps[kernel.P_FOREIGN]:  # flows of other senders drained at t
                n = int(ps[kernel.P_FOREIGN])
                ps[kernel.P_FOREIGN] = 0
                self._python_drained(s.scratch_batch[:n].copy(), s.scratch_index[:n].copy(), t)
            if status == kernel.UNROUTED:  # a transfer whose routes failed is being sent: the error now
                self._broken = loop.unrouted[int(ps[kernel.P_UNROUTED])]  # the loop cannot go on past it
                raise self._broken
            if status == kernel.ROOM:
                s.grow(int(ps[kernel.P_NEED_F]), int(ps[kernel.P_NEED_E]))
                now = t
                continue
            if status == kernel.METER:  # the meter's log is full
                meter.fold()
                now = t
                continue
            if self.check_rates:
                self._check_against_full()
            nxt = float(fs[1])
            if status == kernel.DONE:
                self._finish_runs(t)
                self._schedule_wake(nxt)
                return
            if status != kernel.IDLE:  # Python acted (or checked): SimPy may have something sooner now
                horizon = min(horizon, self.env.peek())
                if nxt < horizon:
                    now = nxt
                    continue
            self._schedule_wake(nxt)
            return

    def _finish_runs(self, t: float) -> None:
        """What fired at `t` for Python: dataflows done (recorded, their events fired then) and hook gates
        (their run's `on_fire` called then)."""
        loop = self._loop
        for who, gate in loop.notes():
            if gate < 0:
                act, arg = loop.finish(self, who).done.succeed, t
            else:
                act, arg = who.hooked, gate
            if t <= self.env.now:
                act(arg)
            else:
                timer = self.env.timeout(t - self.env.now)
                timer.callbacks.append(lambda _e, act=act, arg=arg: act(arg))

    def _count_down(self, active, gates: np.ndarray) -> None:
        """Gates `gates` of a running dataflow counted down from outside (`DataflowRun.count_down`), now: the loop
        runs this instant at once (what else happens at it joins the loop when it does: settling twice at one
        instant is exact)."""
        if self._loop.active.get(active.rid) is not active:
            no_longer_running()
        for gate in (active.g0 + gates).tolist():
            self._loop.count_down(gate)
        if self._delivering or self._settle_scheduled:
            self._kick = True
            self._request_settle()
        else:
            self._settle()

    # ---- flows in and out ---------------------------------------------------------------------

    def _admit(self, batches: list[Batch]) -> None:
        if self.options.endpoint_rate_cap is None:  # batches whose flows all carry bytes go straight in
            for batch in batches:
                if batch.all_live:
                    self._admit_one(batch)
            batches = [b for b in batches if not b.all_live]
            if not batches:
                return
        s = self._store
        topo = self.topo
        sizes, caps, keys, index, counts, links, coefs = [], [], [], [], [], [], []
        endpoint = self.options.endpoint_rate_cap is not None
        for batch in batches:
            block = batch.block
            key = self._next_batch
            self._next_batch += 1
            self._batches[key] = batch
            self._parts[key] = np.bincount(block.owner[batch.flow_bytes > 0], minlength=len(batch.src))
            live = np.flatnonzero(batch.flow_bytes)
            sizes.append(batch.flow_bytes[live].astype(np.float64))
            caps.append(block.cap[live])
            keys.append(np.full(len(live), key, dtype=np.int64))
            index.append(live)
            if len(live) == len(block.counts):
                links.append(block.links), coefs.append(block.coef)
                counts.append(block.counts)
            else:
                keep = np.repeat(batch.flow_bytes > 0, block.counts)
                links.append(block.links[keep]), coefs.append(block.coef[keep])
                counts.append(block.counts[live])
            if endpoint:  # one more entry per flow, on its sender's virtual link, placed last
                ends = np.cumsum(counts[-1])
                links[-1] = np.insert(links[-1], ends, topo.num_links + batch.src[block.owner[live]])
                coefs[-1] = np.insert(coefs[-1], ends, np.ones(len(live)))
                counts[-1] = counts[-1] + 1
        sizes_a, counts_a = np.concatenate(sizes), np.concatenate(counts)
        links_a, coefs_a = np.concatenate(links).astype(np.int64), np.concatenate(coefs).astype(np.float64)
        s.grow(len(sizes_a), len(links_a))
        slots = np.empty(len(sizes_a), dtype=np.int64)
        s.n_flow_free, s.n_entry_free, s.n_seeds = kernel.insert_flows(
            float(self.env.now), sizes_a, np.concatenate(caps).astype(np.float64), np.concatenate(keys),
            np.concatenate(index).astype(np.int64), counts_a.astype(np.int64), links_a, coefs_a,
            s.flow_free, s.n_flow_free, s.entry_free, s.n_entry_free, s.f_alive, s.f_rem, s.f_t, s.f_rate, s.f_size,
            s.f_cap, s.f_batch, s.f_index, s.f_finish, s.f_head, s.e_flow, s.e_link, s.e_coef, s.e_lnext, s.e_lprev,
            s.e_fnext, s.l_head, s.seeds, s.n_seeds, s.seed_mark, s.stamp, slots, s.l_stat, s.f_due)

    def _admit_one(self, batch: Batch) -> None:
        """`_admit` for the common case: a batch whose flows all carry bytes (so its flows and its block's
        entries line up one to one), no endpoint caps."""
        s = self._store
        block = batch.block
        key = self._next_batch
        self._next_batch += 1
        self._batches[key] = batch
        self._parts[key] = np.bincount(block.owner, minlength=len(batch.src))
        n = len(block.counts)
        s.grow(n, len(block.links))
        slots = np.empty(n, dtype=np.int64)
        s.n_flow_free, s.n_entry_free, s.n_seeds = kernel.insert_flows(
            float(self.env.now), batch.flow_bytes.astype(np.float64), block.cap, np.full(n, key, dtype=np.int64),
            np.arange(n, dtype=np.int64), block.counts, block.links, block.coef,
            s.flow_free, s.n_flow_free, s.entry_free, s.n_entry_free, s.f_alive, s.f_rem, s.f_t, s.f_rate, s.f_size,
            s.f_cap, s.f_batch, s.f_index, s.f_finish, s.f_head, s.e_flow, s.e_link, s.e_coef, s.e_lnext, s.e_lprev,
            s.e_fnext, s.l_head, s.seeds, s.n_seeds, s.seed_mark, s.stamp, slots, s.l_stat, s.f_due)

    def _finish_drained(self, now: float) -> bool:
        s = self._store
        k, s.n_flow_free, s.n_entry_free, s.n_seed_links = kernel.drain(
            now, s.flows, s.f_alive, s.f_rem, s.f_t, s.f_rate, s.f_size, s.f_batch, s.f_index, s.scratch,
            s.scratch_batch, s.scratch_index, s.f_head, s.f_finish, s.e_link, s.e_lnext, s.e_lprev, s.e_fnext,
            s.l_head, s.flow_free, s.f_pos, s.n_flow_free, s.entry_free, s.n_entry_free, s.seed_links,
            s.n_seed_links, s.seed_link_mark, s.stamp, s.e_coef, s.l_stat, s.f_ver, s.q_key, s.q_id, s.q_n, s.f_due,
            s.w_key, s.w_idx)
        if not k:
            return False
        self._python_drained(s.scratch_batch[:k].copy(), s.scratch_index[:k].copy(), now)
        return True

    def _python_drained(self, batch_keys: np.ndarray, flow_index: np.ndarray, now: float) -> None:
        """Flows of `send_batch` batches (keys, flow indices) drained at `now`: tell their batches."""
        k = len(batch_keys)
        if k == 1 or (batch_keys == batch_keys[0]).all():
            groups = [(int(batch_keys[0]), np.sort(flow_index) if k > 1 else flow_index)]
        else:
            order = np.argsort(batch_keys, kind="stable")
            keys, starts = np.unique(batch_keys[order], return_index=True)
            bounds = np.append(starts, len(order))
            groups = [(key, np.sort(flow_index[order[bounds[j]:bounds[j + 1]]])) for j, key in enumerate(keys.tolist())]
        for key, flows in groups:
            batch, parts = self._batches[key], self._parts[key]
            self._flows_drained(batch, flows, now, parts)
            if not parts.any():
                del self._parts[key], self._batches[key]

    # ---- rates ------------------------------------------------------------------------------------

    def _recompute(self, now: float) -> float | None:
        """New rates where something changed; returns the next drain instant when it was found on the way."""
        s = self._store
        now = float(now)
        nxt = None
        if self.reference:
            self._full_recompute(now)
        elif s.n_seeds or s.n_seed_links:
            meter = self.meter
            if meter is not None and meter.log_n[0] > meter.log_room:
                meter.fold()
            m = meter or self._no_meter
            flows, nxt, walked, settled = kernel.recompute(
                now, s.seeds, s.n_seeds, s.seed_links, s.n_seed_links, s.l_head, s.e_lnext, s.e_lprev, s.e_fnext,
                s.e_flow, s.e_link, s.e_coef, s.f_head, s.f_alive, s.f_rem, s.f_t, s.f_rate, s.f_cap, s.f_finish,
                s.f_due, self._capacity,
                s.load, s.flow_mark, s.link_mark, s.stamp, s.comp_f, s.comp_l, s.demand, s.count, s.residual, s.frozen,
                s.changed, meter is not None, self._since, m.total, m.peak, m.log_f, m.log_link, m.log_n, s.flows,
                s.flow_free, s.n_flow_free, s.l_stat, s.f_size, s.f_ver, s.q_key, s.q_id, s.q_n, s.w_key, s.w_idx,
                self._local_after)
            self.rate_computations += flows > 0
            self.flows_rated += flows
            self.entries_walked += walked
            self.settled_locally += settled
            if self.check_rates:
                self._check_against_full()
        s.n_seeds = s.n_seed_links = 0
        s.stamp += 1
        return nxt

    def _all_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        s = self._store
        alive = s.alive()
        owner, links, coef = kernel.collect_entries(alive, s.f_head, s.e_fnext, s.e_link, s.e_coef)
        return alive, owner, links, coef

    def _full_solution(self) -> tuple[np.ndarray, np.ndarray]:
        alive, owner, links, coef = self._all_entries()
        cap = self._store.f_cap[alive]
        rates, _ = max_min_rates(owner, links, coef, self._capacity, len(alive),
                                 cap if np.isfinite(cap).any() else None)
        return alive, rates

    def _full_recompute(self, now: float) -> None:
        """Every flow recomputed with the numpy solver (the reference the compiled path is tested against)."""
        s = self._store
        alive, rates = self._full_solution()
        if not len(alive):
            self.close_meter()
            s.load[:] = 0.0
            return
        self.rate_computations += 1
        self.flows_rated += len(alive)
        self.close_meter()
        s.f_rem[alive] -= s.f_rate[alive] * (now - s.f_t[alive])
        s.f_t[alive] = now
        s.f_rate[alive] = rates
        with np.errstate(divide="ignore"):
            s.f_finish[alive] = np.where(rates > 0, now + s.f_rem[alive] / np.where(rates > 0, rates, 1.0), np.inf)
        s.f_due[alive] = -np.inf  # (drain scans test them all exactly)
        _, owner, links, coef = self._all_entries()
        s.load = np.bincount(links, weights=coef * rates[owner], minlength=len(self._capacity))
        s.l_stat[kernel.L_SUM] = s.load  # (the lists' order by rate is the kernel's; this path never uses it)
        s.f_ver[alive] += 1
        s.q_n[kernel.Q_RATED] += len(alive)  # (what keeping the queues costs: see kernel.Q_PER_RATED)
        if s.q_n[kernel.Q_ON]:
            kernel.rebuild_queues(s.flow_free, s.n_flow_free, s.flows, s.f_alive, s.f_finish, s.f_rem, s.f_rate,
                                  s.f_size, s.f_ver, s.q_key, s.q_id, s.q_n)

    def _check_against_full(self) -> None:
        alive, rates = self._full_solution()
        assert np.allclose(rates, self._store.f_rate[alive], rtol=1e-9, atol=0), \
            "partial max-min differs from the full one"

    def close_meter(self) -> None:
        """Bring the link meter up to now (each link's load is added to it lazily, when it changes)."""
        for active in self._loop.active.values():
            self._loop.record(self, active)
        if self.meter is not None:
            now = float(self.env.now)
            if self.meter.log_n[0] > self.meter.log_room:  # room for a log entry per link
                self.meter.fold()
            kernel.account_all(self.topo.num_links, now, self._store.load, self._since, self.meter.total,
                               self.meter.peak, self.meter.log_f, self.meter.log_link, self.meter.log_n)
            self.meter.reach(now)  # (the log is binned when it fills, or as a timeline asks)

    # ---- faults -------------------------------------------------------------------------------------

    def fail_links(self, links: list[int]) -> None:
        """Fail links now; active flows through them move to working paths of their policy."""
        self._settle(horizon=self.env.now)
        loop = self._loop
        if self._reference is not None:
            loop.split_step_rows(self)  # while the routes the sent transfers used still hold
        super().fail_links(links)
        loop.route(self, loop.unsent())  # transfers not yet sent take the new routes
        s = self._store
        dead = np.asarray(links, dtype=np.int64)
        s.stamp += 1  # a stamp of its own for this search's marks (nothing is seeded yet)
        k = kernel.flows_on_links(dead, s.l_head, s.e_lnext, s.e_flow, s.flow_mark, s.stamp, s.scratch)
        hit = s.scratch[:k].copy()
        s.stamp += 1
        s.grow(0, 64 * max(k, 1))
        for f in hit.tolist():
            if s.f_batch[f] == kernel.PROGRAM:
                self._split_class(f)
            self._reroute(f)
        s.seed_link_list(dead)
        self._schedule_wake(self._recompute(self.env.now))

    def _split_class(self, f: int) -> None:
        """Loop flow f's class members (records that joined it, `fluid_kernel._same_flow`) become flows of
        their own, each with f's bytes left, and rerouted on its own (its route key may take it elsewhere now);
        f keeps its own record."""
        loop, s = self._loop, self._store
        members = loop.members(int(s.f_index[f]))
        if len(members) == 1:
            return
        now = float(self.env.now)
        s.f_rem[f] -= s.f_rate[f] * (now - s.f_t[f])  # its bytes up to now (`_reroute` finds nothing more)
        s.f_t[f] = now
        loop.fl_next[members] = -1
        self.classes_split += len(members) - 1
        rest = np.asarray(members[1:], dtype=np.int64)
        lo, hi = loop.fl_ent_lo[rest], loop.fl_ent_hi[rest]
        ents = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())])
        s.grow(len(rest), len(ents))
        slots = np.empty(len(rest), dtype=np.int64)
        index = (loop.fl_owner[rest] << kernel.PATH_BITS) | (loop.fl_path[rest] + 1)
        s.n_flow_free, s.n_entry_free, s.n_seeds = kernel.insert_flows(
            now, loop.fl_bytes[rest], loop.fl_cap[rest], np.full(len(rest), kernel.PROGRAM, dtype=np.int64), index,
            hi - lo, loop.en_link[ents], loop.en_coef[ents], s.flow_free, s.n_flow_free, s.entry_free,
            s.n_entry_free, s.f_alive, s.f_rem, s.f_t, s.f_rate, s.f_size, s.f_cap, s.f_batch, s.f_index, s.f_finish,
            s.f_head, s.e_flow, s.e_link, s.e_coef, s.e_lnext, s.e_lprev, s.e_fnext, s.l_head, s.seeds, s.n_seeds,
            s.seed_mark, s.stamp, slots, s.l_stat, s.f_due)
        s.f_rem[slots] = s.f_rem[f]
        for g in slots.tolist():
            self._reroute(g)

    def _reroute(self, f: int) -> None:
        """New entries for flow slot f, from its policy's current answer."""
        s = self._store
        if s.f_batch[f] == kernel.PROGRAM:
            p, j = int(s.f_index[f]) >> kernel.PATH_BITS, (int(s.f_index[f]) & ((1 << kernel.PATH_BITS) - 1)) - 1
            src, dst, key = self._loop.transfer_of(p)
            route = self.router.route(src, dst, split_profile(key)[0])
        else:
            batch = self._batches[int(s.f_batch[f])]
            flow = int(s.f_index[f])
            i = int(batch.block.owner[flow])
            src = int(batch.src[i])
            route = self.router.route(src, int(batch.dst[i]), batch.key)
            j = int(batch.block.path[flow])
        if route.independent and 0 <= j < len(route.paths):
            links = np.asarray(route.paths[j], dtype=np.int64)
            coef = np.ones(len(links))
        else:
            links, coef = np.asarray(route.links, dtype=np.int64), np.asarray(route.coef, dtype=np.float64)
        if self.options.endpoint_rate_cap is not None:
            links = np.append(links, self.topo.num_links + src)
            coef = np.append(coef, 1.0)
        s.grow(0, len(links))
        s.n_entry_free, s.n_seed_links = kernel.drop_entries(
            f, s.f_head, s.e_link, s.e_lnext, s.e_lprev, s.e_fnext, s.l_head, s.entry_free, s.n_entry_free,
            s.seed_links, s.n_seed_links, s.seed_link_mark, s.stamp, s.f_rate, s.e_coef, s.l_stat)
        now = float(self.env.now)  # its bytes up to now; rate 0 until the recomputation (a seed's, on its links)
        s.f_rem[f] -= s.f_rate[f] * (now - s.f_t[f])
        s.f_t[f], s.f_rate[f], s.f_due[f] = now, 0.0, -np.inf
        s.n_entry_free = kernel.add_entries(f, links, coef, s.entry_free, s.n_entry_free, s.e_flow, s.e_link,
                                            s.e_coef, s.e_lnext, s.e_lprev, s.e_fnext, s.f_head, s.l_head, s.l_stat)
        s.seed_flow(f)

    def degrade_links(self, links: list[int], factor: float) -> None:
        self._settle(horizon=self.env.now)
        super().degrade_links(links, factor)
        self._store.seed_link_list(np.asarray(links, dtype=np.int64))
        self._schedule_wake(self._recompute(self.env.now))

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
compute step, a fault, another collective's arrival — SimPy's events at an instant go before the
loop's), storage must grow, the link meter's bins must be widened, or a step whose route could not
be found (links failed) is sent (its error is raised then, as the Python executor raises it). The
rules are those of the Python executor and the fluid model (drain tolerance, arrivals closer than
`base.ARRIVAL_TOLERANCE` delivered together, rates recomputed on the changed component), so both give
the same end times; the test suite runs both side by side.

Routes are looked up once per step and channel when the schedule starts (`build`; again for the
transfers not yet sent when links fail), which is why only policies that route each transfer on its
own (neither planning a batch, nor learning, nor placing routes in order of arrival) run here; the
others, and runs that cap endpoints, use the Python executor. With per-step load recording, a row
per step and channel (split at a failure into the part sent before it and the part after).

Transfer ids are taken in a block when the schedule starts and given out in send order. This module
builds and routes the schedule (`Program`, `build`, `route`); the compiled loop itself is
`fluid_kernel.advance`, in the kernel's file so that numba's on-disk cache of it is refreshed whenever
the kernel changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.errors import TopologyError
from netsim.network.base import _flow_bytes
from netsim.network.fluid_kernel import P_FOLLOW, P_K, P_N, P_READY, P_V, P_WAIT_SENDS


@dataclass(eq=False)
class Program:
    """A step schedule flattened into arrays for `fluid_kernel.advance`, with its run state.

    Transfers are numbered step by step (`step_off[k]` is step k's first); `sends` lists, per
    (step, rank), the transfers that rank sends on entering that step; a transfer's flows and a
    flow's link entries come from its route (looked up per step and channel).
    """

    key: tuple
    tag: str
    node_of: np.ndarray
    t_src_v: np.ndarray
    t_dst_v: np.ndarray
    t_step: np.ndarray
    t_bytes: np.ndarray
    t_chan: np.ndarray  # channel of the sender
    channels: bool  # whether channels count (each hashes as its own connection: key + (channel,))
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
    routes: tuple = ()  # t_fl_off, fl_bytes, fl_cap, fl_path, fl_ent_off, en_link, en_coef, t_lat, t_unrouted
    unrouted: dict = field(default_factory=dict)  # transfer -> the routing error to raise when it is sent
    step_rows: list | None = None  # with per-step recording: (transfers, loads) per step and channel, unrecorded

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
        return self.key + (int(self.t_chan[p]),) if self.channels else self.key

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
    channels = schedule.channel_of is not None
    chan = np.asarray(schedule.channel_of, dtype=np.int64)[t_src_v] if channels else np.zeros(len(t_src_v), np.int64)
    ps = np.zeros(P_N, dtype=np.int64)
    ps[P_V], ps[P_K] = v, k
    ps[P_WAIT_SENDS] = int(bool(schedule.wait_sends))
    ps[P_FOLLOW] = int(schedule.follower is not None)
    program = Program(key, tag, node_of, t_src_v, t_dst_v, t_step, t_bytes, chan, channels, s_off, s_idx,
                      gate, np.zeros((k + 1) * v, dtype=np.bool_), follower, ps)
    route(network, program)
    ready = np.flatnonzero(gate[:v] == 0)  # ranks that enter step 0 at once
    program.ready_r[:len(ready)] = ready
    ps[P_READY] = len(ready)
    return program


def route(network, program: Program) -> None:
    """Flows and link entries of every transfer not yet sent, from the network's current routes (on a
    link failure, transfers already sent keep theirs, and their latency, as the Python executor's
    batches do)."""
    k_steps = int(program.ps[P_K])
    step_off = np.concatenate([[0], np.cumsum(np.bincount(program.t_step, minlength=k_steps))])
    todo = program.t_order < 0
    for p in np.flatnonzero(todo).tolist():  # routed afresh below
        program.unrouted.pop(p, None)
    owner, fbytes, cap, path, count, links, coef = [], [], [], [], [], [], []
    lat = np.zeros(program.transfers)
    if program.routes:  # keep the routes of the transfers already sent
        t_fl_off, fl_bytes, fl_cap, fl_path, fl_ent_off, en_link, en_coef, t_lat, _ = program.routes
        fl_owner = np.repeat(np.arange(program.transfers), np.diff(t_fl_off))
        kept = np.flatnonzero(~todo[fl_owner])
        owner.append(fl_owner[kept]), fbytes.append(fl_bytes[kept]), cap.append(fl_cap[kept])
        path.append(fl_path[kept]), count.append(np.diff(fl_ent_off)[kept])
        entries = np.repeat(fl_ent_off[kept] - np.concatenate([[0], np.cumsum(count[-1])])[:-1], count[-1]) + \
            np.arange(int(count[-1].sum()))
        links.append(en_link[entries]), coef.append(en_coef[entries])
        lat[~todo] = t_lat[~todo]
    recording = network._reference is not None  # a row per step and channel routed now (see `split_step_rows`)
    rows: list = []
    for k in range(k_steps):
        lo, hi = int(step_off[k]), int(step_off[k + 1])
        if not todo[lo:hi].any():
            continue
        chan = program.t_chan[lo:hi]
        for c in np.unique(chan[todo[lo:hi]]).tolist():
            sub = np.flatnonzero((chan == c) & todo[lo:hi]) + lo
            src, dst = program.node_of[program.t_src_v[sub]], program.node_of[program.t_dst_v[sub]]
            key = program.key + (c,) if program.channels else program.key
            try:
                block = network._routes(src, dst, key)
            except TopologyError as exc:  # raised when the step is sent, as the Python executor would
                program.unrouted.update(dict.fromkeys(sub.tolist(), exc))
                continue
            flow_bytes = _flow_bytes(block, program.t_bytes[sub])
            if recording:  # a collective step (per channel) as the Python executor's batches record it
                rows.append((sub, network.step_loads(src, dst, program.t_bytes[sub], key, block, flow_bytes)))
            owner.append(sub[block.owner])
            fbytes.append(flow_bytes.astype(np.float64))
            cap.append(block.cap)
            path.append(block.path)
            count.append(block.counts)
            links.append(block.links)
            coef.append(block.coef)
            lat[sub] = block.latency
    if not owner:  # nothing routed (every pair lost its paths): no flows at all
        owner, fbytes, cap, path, count, links, coef = ([np.zeros(0)] for _ in range(7))
    owner_a = np.concatenate(owner).astype(np.int64)
    count_a = np.concatenate(count).astype(np.int64)
    order = np.argsort(owner_a, kind="stable")
    ent_start = np.concatenate([[0], np.cumsum(count_a)])[:-1][order]
    count_o = count_a[order]
    ent_off = np.concatenate([[0], np.cumsum(count_o)]).astype(np.int64)
    gather = np.repeat(ent_start - ent_off[:-1], count_o) + np.arange(int(ent_off[-1]))
    t_fl_off = np.concatenate([[0], np.cumsum(np.bincount(owner_a, minlength=program.transfers))]).astype(np.int64)
    if recording:
        program.step_rows = (program.step_rows or []) + rows
    unrouted = np.zeros(program.transfers, dtype=np.bool_)
    unrouted[list(program.unrouted)] = True
    program.routes = (t_fl_off, np.concatenate(fbytes)[order], np.concatenate(cap).astype(np.float64)[order],
                      np.concatenate(path).astype(np.int64)[order], ent_off,
                      np.concatenate(links).astype(np.int64)[gather], np.concatenate(coef).astype(np.float64)[gather],
                      lat, unrouted)


def split_step_rows(network, program: Program) -> None:
    """Before links fail: the step rows not yet written keep only their transfers already sent, with the
    loads of the routes those used (a step partly sent gets a row for that part, as a batch the Python
    executor sent before the failure would); `route` adds rows for the rest with the new routes."""
    kept = []
    for sub, loads in program.step_rows or []:
        sent = program.t_order[sub] >= 0
        if sent.all():
            kept.append((sub, loads))
        elif sent.any():
            part = sub[sent]
            src, dst = program.node_of[program.t_src_v[part]], program.node_of[program.t_dst_v[part]]
            key = program.transfer_key(int(part[0]))
            block = network._routes(src, dst, key)
            kept.append((part, network.step_loads(src, dst, program.t_bytes[part], key, block,
                                                  _flow_bytes(block, program.t_bytes[part]))))
    program.step_rows = kept


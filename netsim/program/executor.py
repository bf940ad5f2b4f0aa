"""The one executor: any `Program` on any network model, one row per node.

A program is lowered to a dataflow (`netsim.network.dataflow`), which the network model runs — the fluid
model in its compiled loop, beside whatever else shares the fabric; other models through the reference
executor. Per node n there is a start gate S(n) and an end gate E(n)::

    compute    E(deps), E(previous on its stream) ──► S(n) ──(duration)──► E(n)
    send       E(deps), E(previous on its stream) ──► S(n) ──transfer──► E(n)       (eager: the data
    recv       E(deps) ──► S(n) ──────────────────────────────────────────► E(n)    leaves when the send's
                                                     (E(n) also waits for the        own dependencies are
                                                      matching send's transfer)      met; `rendezvous`:
                                                                                    S(send) also waits for
                                                                                    S(recv))
    collective E(deps), E(previous call of the group) ──► S(n) ──► join of the call's members
               ──► the algorithm's step schedule on the group's GPUs ──► E(n) of every member

Semantics:

- dependency counting: a node starts when every node it depends on has ended;
- FIFO streams: a stream runs one node at a time. A group's collectives run on the group's stream in
  call order (the k-th collective of a group on each rank is one call; every rank must make the same
  calls). Compute and send nodes run on their streams (`stream_of`: by default one compute stream per
  rank and one send stream per connection) in *dependency order*: a topological order of the whole
  program (all ranks, rendezvous and messages included), ties broken by recorded start time where the
  program has one, then by recorded order — never in file order alone, so a trace that lists a kernel
  before the one it depends on still runs. Receives occupy no stream. Messages match in recorded order:
  the k-th send from a to b with a tag is b's k-th receive from a with that tag;
- a collective starts when every member has reached it (rendezvous) and ends, for every member, when
  its last transfer has arrived; zero-byte collectives (other than barriers) end at once;
- a program that cannot finish is refused before it runs, with the cycle found (rank, node, what it
  waits for).

`run_program` starts a program now on a `Simulation` and returns a `ProgramRun`; its `result()` (once
`done` has fired) is a `ProgramResult`: one row per node (start, end, stream, bytes) and one per
collective call.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import polars as pl
import simpy

from netsim.collectives import BUSBW_FACTOR, Communicator
from netsim.collectives.algorithms import ALGORITHMS
from netsim.collectives.direct import send_recv
from netsim.collectives.schedule import lower as lower_schedule
from netsim.errors import ConfigError
from netsim.network.dataflow import DataflowBuilder, DataflowRun
from netsim.program.budget import check_budget, collective_transfers
from netsim.program.model import Node, Program, ProgramError

SENDS = ("eager", "rendezvous")
ORDERS = ("dependencies", "recorded")
NODE_SCHEMA = {"rank": pl.Int64, "node": pl.Int64, "kind": pl.Utf8, "name": pl.Utf8, "op": pl.Utf8,
               "size_B": pl.Int64, "stream": pl.Utf8, "start_s": pl.Float64, "end_s": pl.Float64,
               "recorded_s": pl.Float64}
CALL_SCHEMA = {"group": pl.Utf8, "call": pl.Int64, "op": pl.Utf8, "ranks": pl.Int64, "size_B": pl.Int64,
               "algo": pl.Utf8, "start_s": pl.Float64, "end_s": pl.Float64, "time_s": pl.Float64,
               "busbw_Bps": pl.Float64, "recorded_s": pl.Float64}


def stream_of(node: Node) -> str:
    """The stream a node runs on: a collective its group's; a compute or send node its own `stream`, or by
    default ``compute`` and ``send:PEER``; a receive (which occupies none) ``recv:PEER``, for timelines."""
    if node.kind == "collective":
        return f"group:{node.group}"
    if node.stream is not None and node.kind != "recv":
        return node.stream
    if node.kind == "compute":
        return "compute"
    return f"{node.kind}:{node.peer}"


@dataclass(frozen=True, eq=False)
class ProgramResult:
    """One row per node (`nodes`: start, end, stream...), one per collective call (`calls`), the time the
    program took (`time_s`, from its start) and each rank's compute seconds."""

    time_s: float
    nodes: pl.DataFrame
    calls: pl.DataFrame
    compute_s: dict[int, float]
    compiled: bool


@dataclass
class _Call:
    group: str
    k: int
    members: tuple[int, ...]  # node indices
    join: int
    done: int  # gate firing when the call's transfers have all arrived (the join when it moves nothing)
    algo: str  # the algorithm that ran (a lazily lowered call's: set when it starts)


class ProgramRun:
    """A program started on a simulation: `done` fires when every node has ended; then `result()`."""

    def __init__(self, program: Program, nodes: list[Node], start: np.ndarray, end: np.ndarray,
                 calls: list[_Call], durations: np.ndarray, run: DataflowRun, t0: float):
        self.program, self._nodes, self._start, self._end = program, nodes, start, end
        self._calls, self._durations, self.run, self.t0 = calls, durations, run, t0

    @property
    def done(self) -> simpy.Event:
        return self.run.done

    def call_times(self) -> list[tuple[str, int, float, float]]:
        """(group, call number, start, end) of every collective call, from the program's start: it starts when
        its last member arrives, ends when its last transfer has (what `result()` tabulates)."""
        fire = self.run.fire
        return [(c.group, c.k, float(fire[c.join]) - self.t0, float(fire[c.done]) - self.t0) for c in self._calls]

    def times(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of every node, in the order of `program.all_nodes()`, from the program's start (the
        arrays `result()` tabulates)."""
        return self.run.fire[self._start] - self.t0, self.run.fire[self._end] - self.t0

    def result(self) -> ProgramResult:
        fire = self.run.fire
        if not self.run.done.triggered:
            raise RuntimeError("the program has not finished yet")
        nodes = self._nodes
        start, end = fire[self._start] - self.t0, fire[self._end] - self.t0
        rows = pl.DataFrame({
            "rank": [n.rank for n in nodes], "node": [n.id for n in nodes], "kind": [n.kind for n in nodes],
            "name": [n.name for n in nodes], "op": [n.op for n in nodes], "size_B": [n.nbytes for n in nodes],
            "stream": [stream_of(n) for n in nodes], "start_s": start, "end_s": end,
            "recorded_s": [n.duration for n in nodes]}, schema=NODE_SCHEMA)
        calls = []
        groups = self.program.groups
        for c in self._calls:
            first = nodes[c.members[0]]
            size = len(groups[c.group])
            t_a, t_b = float(fire[c.join]) - self.t0, float(fire[c.done]) - self.t0
            seconds = t_b - t_a
            recorded = [nodes[m].duration for m in c.members if nodes[m].duration is not None]
            calls.append({"group": c.group, "call": c.k, "op": first.op, "ranks": size, "size_B": first.nbytes,
                          "algo": c.algo, "start_s": t_a, "end_s": t_b, "time_s": seconds,
                          "busbw_Bps": first.nbytes / seconds * BUSBW_FACTOR[first.op](size)
                          if seconds > 0 and first.nbytes else None,
                          "recorded_s": max(recorded) if recorded else None})
        compute: dict[int, float] = dict.fromkeys(self.program.ranks, 0.0)
        for n, d in zip(nodes, self._durations.tolist()):
            if n.kind == "compute":
                compute[n.rank] += d
        return ProgramResult(float(fire[self.run.flow.done]) - self.t0, rows.sort("rank", "start_s", "node"),
                             pl.DataFrame(calls, schema=CALL_SCHEMA).sort("start_s", "group", "call"), compute,
                             self.run.compiled)


def run_program(sim, program: Program, gpu_of: dict[int, int], *, algo: str = "auto", scale_compute: float = 1.0,
                device_flops: float | None = None, sends: str = "eager", key: tuple = ("trace",),
                tag_keys: dict[int, tuple] | None = None, max_transfers: int | None = None,
                comms: dict[str, Communicator] | None = None, external: dict | None = None,
                order: str = "dependencies", lazy: bool = False) -> ProgramRun:
    """Start `program` now on `sim` with rank r on GPU node `gpu_of[r]` (see the module docstring).

    algo: the collective algorithm (`auto`: each call's own `algo`, else auto's choice; or a name for every
    call; a collective that has no such algorithm uses auto).
    scale_compute: factor on every compute duration. device_flops: FLOP/s (efficiency included) that
    times compute nodes given in FLOPs. sends: `eager` (default) or `rendezvous`. key: the route-key
    prefix of point-to-point transfers (each tag hashes as its own connection: `key + (tag,)`, or
    `tag_keys[tag]` where given). comms: the communicator of a group (default: one per group, named after
    it: its route key is ``("", name)``). external: groups whose collectives another engine runs — an object
    with ``run(op, nbytes, *, algo, label) -> simpy.Event`` (a `Communicator`'s signature), called when a call's
    members have all arrived, whatever its size; the call ends when its event fires. lazy: each collective
    call that moves data is lowered only when it starts (its group's communicator runs it then), so a long
    program holds one call's schedule at a time instead of all of them (the same times). order: ``dependencies`` (default: streams
    in dependency order, see the module docstring) or ``recorded`` — streams in recorded order, for builders
    that list each stream in the order it must run (a program whose recorded order contradicts its
    dependencies then never finishes instead of being refused; the program is not validated either: it is
    a builder's, valid by construction). max_transfers: refuse a
    program whose collectives and messages would create more transfers (None: `budget.MAX_TRANSFERS`),
    counted before anything is built.
    """
    if sends not in SENDS:
        raise ConfigError(f"unknown send mode {sends!r} (known: {', '.join(SENDS)})", field="sends")
    if order not in ORDERS:
        raise ConfigError(f"unknown stream order {order!r} (known: {', '.join(ORDERS)})", field="order")
    if not scale_compute >= 0 or scale_compute > 1e9:
        raise ConfigError(f"expected a factor >= 0, got {scale_compute!r}", field="--scale-compute")
    if algo != "auto" and not any(algo in names for names in ALGORITHMS.values()):
        known = sorted({a for names in ALGORITHMS.values() for a in names})
        raise ConfigError(f"unknown algorithm {algo!r} (known: auto, {', '.join(known)})", field="--algo")
    if order == "dependencies":  # (recorded order: a builder's program, valid by construction)
        program.validate()
    missing = sorted(set(program.ranks) - set(gpu_of))
    if missing:
        raise ConfigError(f"ranks {missing[:5]} have no GPU", field="placement")
    external = external or {}
    comms = {group: (comms or {}).get(group) or Communicator(sim, [gpu_of[r] for r in members], name=str(group))
             for group, members in program.groups.items() if group not in external}
    check_budget(work(program, comms, algo), f"the program ({len(program.nodes)} ranks)", max_transfers,
                 source=program.source or None)
    builder = DataflowBuilder()
    lowered = _Lowering(sim, program, gpu_of, builder, algo, scale_compute, device_flops, sends, key, comms,
                        tag_keys, external, lazy)
    flow = builder.build(lowered.finish(order == "dependencies"))
    run = sim.network.run_dataflow(flow, lowered.on_fire if lowered.outside else None)
    lowered.run = run
    return ProgramRun(program, lowered.nodes, lowered.S, lowered.E, lowered.calls, lowered.durations, run, sim.now)


def work(program: Program, comms: dict[str, Communicator], algo: str = "auto") -> int:
    """Transfers the program creates: its collective calls' (exact: see `budget.collective_transfers`) and
    its messages."""
    calls: dict[tuple, int] = {}
    sends = 0
    for x in program.all_nodes():
        if x.kind == "collective" and (x.nbytes or x.op == "barrier"):
            key = (x.group, x.op, x.nbytes, x.algo if algo == "auto" and x.algo else algo)
            calls[key] = calls.get(key, 0) + 1
        sends += x.kind == "send"
    total = sends
    for (group, op, nbytes, wanted), members in calls.items():
        comm = comms.get(group)
        if comm is None:  # run by another engine
            continue
        if comm.size > 1:
            chosen = wanted if wanted in ALGORITHMS.get(op, ()) else "auto"
            total += members // comm.size * collective_transfers(comm, op, nbytes, chosen)
    return total


class _Lowering:
    """A program's gates (see the module docstring), and the order its streams run in."""

    def __init__(self, sim, program: Program, gpu_of: dict[int, int], b: DataflowBuilder, algo: str,
                 scale_compute: float, device_flops: float | None, sends: str, key: tuple,
                 comms: dict[str, Communicator], tag_keys: dict[int, tuple] | None = None,
                 external: dict | None = None, lazy: bool = False):
        self.program, self.b, self.tag_keys = program, b, tag_keys
        self.external = dict(external or {})
        if lazy:  # the communicators run their groups' calls, each lowered when it starts
            self.external.update({g: c for g, c in comms.items() if g not in self.external})
            self._lazy = set(comms) - set(external or {})
        else:
            self._lazy = set()
        self.outside: dict[int, tuple] = {}  # join gate -> (engine, op, bytes, algo, label, done gate)
        self._call_of: dict[int, _Call] = {}  # join gate -> its call
        self.run = None
        self.nodes = nodes = list(program.all_nodes())
        n = len(nodes)
        self.index = {(x.rank, x.id): i for i, x in enumerate(nodes)}
        kind = np.array([x.kind for x in nodes], dtype=object)
        self.durations = np.array([_seconds(x, device_flops, program.source) * scale_compute
                                   if x.kind == "compute" else 0.0 for x in nodes], dtype=np.float64)
        self.S = b.gates(n, delay=self.durations)
        self.E = b.gates(n)
        self._oa: list[np.ndarray] = []  # ordering edges: the gate graph without the compute streams,
        self._ob: list[np.ndarray] = []  # a collective's schedule stood in for by join -> members' ends
        comp = np.flatnonzero(kind == "compute")
        self.edge(self.S[comp], self.E[comp])
        dep_a, dep_b = [], []
        for i, x in enumerate(nodes):
            for d in x.deps:
                dep_a.append(self.index[(x.rank, d)])
                dep_b.append(i)
        self.edge(self.E[np.asarray(dep_a, dtype=np.int64)], self.S[np.asarray(dep_b, dtype=np.int64)])
        self.calls: list[_Call] = []
        self._collectives(comms, algo)
        self._messages(gpu_of, sends, key)
        self._streamed = np.flatnonzero((kind == "compute") | (kind == "send"))  # ordered on their streams

    def edge(self, a: np.ndarray, b: np.ndarray, order: bool = True) -> None:
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        if not len(b):
            return
        self.b.edges(a, b)
        if order:
            self._oa.append(np.broadcast_to(a, b.shape))
            self._ob.append(b)

    def _collectives(self, comms: dict[str, Communicator], algo: str) -> None:
        program, nodes, b = self.program, self.nodes, self.b
        calls: dict[tuple[str, int], list[int]] = {}
        counters: dict[tuple[int, str], int] = {}
        previous: dict[tuple[int, str], int] = {}
        chain_a, chain_b = [], []
        for i, x in enumerate(nodes):
            if x.kind != "collective":
                continue
            k = counters.get((x.rank, x.group), 0)
            counters[(x.rank, x.group)] = k + 1
            calls.setdefault((x.group, k), []).append(i)
            if (x.rank, x.group) in previous:  # the group's stream on this rank: call order
                chain_a.append(previous[(x.rank, x.group)])
                chain_b.append(i)
            previous[(x.rank, x.group)] = i
        self.edge(self.E[np.asarray(chain_a, dtype=np.int64)], self.S[np.asarray(chain_b, dtype=np.int64)])
        joins = b.gates(len(calls)).tolist()
        s0, e0 = int(self.S[0]) if len(self.S) else 0, int(self.E[0]) if len(self.E) else 0
        ea: list[int] = []  # edges for the dataflow (and the order): a -> b
        eb: list[int] = []
        xa: list[np.ndarray] = []  # edges for the dataflow only
        xb: list[np.ndarray] = []
        oa: list[int] = []  # edges for the order only
        ob: list[int] = []
        outside = [key for key, members in calls.items() if self._outside(key[0], nodes[members[0]])]
        other = iter(b.gates(len(outside)).tolist())
        for ((group, k), members), join in zip(calls.items(), joins):
            first = nodes[members[0]]
            ends = [e0 + i for i in members]
            ea += [s0 + i for i in members]
            eb += [join] * len(members)
            wanted = first.algo if algo == "auto" and first.algo else algo  # the call's own, unless one is forced
            chosen = wanted if wanted in ALGORITHMS.get(first.op, ()) else "auto"
            moves = first.nbytes or first.op == "barrier"
            if self._outside(group, first):  # another engine runs it (what an empty call costs is its to say)
                done = next(other)
                b.hook(join)
                b.external(done)
                default = f"{comms[group].name}:{first.op}#{k}" if group in comms else f"{group}#{k}"
                self.outside[join] = (self.external[group], first.op, first.nbytes, chosen, first.name or default,
                                      done)
                name = chosen
            elif moves and len(program.groups[group]) > 1:
                comm = comms[group]
                start, key = join, (comm.job, comm.name)
                if first.op == "send_recv":  # rank 0 of the group to rank 1
                    name, schedule = "direct", send_recv(int(comm.nodes[0]), int(comm.nodes[1]), first.nbytes)
                else:
                    plan = comm.plan(first.op, first.nbytes, chosen)
                    name, schedule, key = plan.shown, plan.schedule, plan.key
                    if plan.delay > 0:  # the call's first step waits (NCCL's base latency)
                        start = int(b.gates(1, delay=plan.delay)[0])
                        b.edges([join], [start])
                label = first.name or f"{comm.name}:{first.op}#{k}"
                _, last = lower_schedule(b, schedule, key=key, tag=f"{comm.job}/{label}" if comm.job else label,
                                         after=start, compress=comm.sim.compress, note=comm.sim.note_compressed,
                                         step_times=comm.sim.network.step_times)
                done = int(b.gates(1)[0])
                xa.append(last)
                xb.append(np.full(len(last), done))
            else:
                name, done = chosen, join
            if done != join:  # the members end with the call; for the order, the call is its join
                xa.append(np.full(len(ends), done))
                xb.append(np.asarray(ends, dtype=np.int64))
                oa += [join] * len(ends)
                ob += ends
            else:
                ea += [join] * len(ends)
                eb += ends
            self.calls.append(_Call(group, k, tuple(members), join, done, name))
            self._call_of[join] = self.calls[-1]
        if ea:
            self.edge(np.asarray(ea, dtype=np.int64), np.asarray(eb, dtype=np.int64))
        if xa:
            self.edge(np.concatenate(xa), np.concatenate(xb), order=False)
        if oa:
            self._oa.append(np.asarray(oa, dtype=np.int64))
            self._ob.append(np.asarray(ob, dtype=np.int64))

    def _messages(self, gpu_of: dict[int, int], sends: str, key: tuple) -> None:
        nodes, b = self.nodes, self.b
        queues: dict[tuple, list[int]] = {}
        for i, x in enumerate(nodes):
            if x.kind == "send":
                queues.setdefault(("s", x.rank, x.peer, x.tag), []).append(i)
            elif x.kind == "recv":
                queues.setdefault(("r", x.peer, x.rank, x.tag), []).append(i)
        pairs = [(s, r) for (side, a, d, tag), found in queues.items() if side == "s"
                 for s, r in zip(found, queues.get(("r", a, d, tag), []))]
        if not pairs:
            return
        send = np.array([p[0] for p in pairs], dtype=np.int64)
        recv = np.array([p[1] for p in pairs], dtype=np.int64)
        src = np.array([nodes[s].rank for s in send.tolist()], dtype=np.int64)
        dst = np.array([nodes[s].peer for s in send.tolist()], dtype=np.int64)
        tag_keys = self.tag_keys or {}
        kid = np.array([b.key(tag_keys.get(nodes[s].tag, key + (nodes[s].tag,))) for s in send.tolist()],
                       dtype=np.int64)
        size = np.array([nodes[s].nbytes for s in send.tolist()], dtype=np.int64)
        tags = [nodes[s].name or f"p2p {nodes[s].rank}->{nodes[s].peer}" for s in send.tolist()]
        ids = b.transfers(self.S[send], np.array([gpu_of[r] for r in src.tolist()], dtype=np.int64),
                          np.array([gpu_of[r] for r in dst.tolist()], dtype=np.int64), size, key=kid, tag=tags)
        b.targets(ids, self.E[send])
        b.targets(ids, self.E[recv])
        self._oa += [self.S[send], self.S[send]]
        self._ob += [self.E[send], self.E[recv]]
        self.edge(self.S[recv], self.E[recv])
        if sends == "rendezvous":
            self.edge(self.S[recv], self.S[send])

    def _outside(self, group: str, first: Node) -> bool:
        """Whether another engine runs this group's call (lazily lowered calls: those that move data)."""
        if group not in self._lazy:
            return group in self.external
        return bool(first.nbytes or first.op == "barrier") and first.op != "send_recv" and \
            len(self.program.groups[group]) > 1

    def on_fire(self, gate: int) -> None:
        """A call on another engine's group: every member has arrived, so it starts; its end counts down the
        call's done gate."""
        engine, op, nbytes, algo, label, done = self.outside[gate]
        if isinstance(engine, Communicator):  # a lazily lowered call: its algorithm is decided now
            plan = engine.plan(op, nbytes, algo)
            self._call_of[gate].algo = plan.shown if plan.chunks == 1 else f"{plan.shown}x{plan.chunks}"
            event = engine.run_plan(plan, op, nbytes, label)
        else:
            event = engine.run(op, nbytes, algo=algo, label=label)
        if event.processed:  # (an engine that had nothing to do)
            self.run.count_down(done)
        else:
            event.callbacks.append(lambda _e: self.run.count_down(done))

    def finish(self, by_dependencies: bool = True) -> int:
        """The compute and send streams, in dependency order (or recorded order), and the done gate; returns
        the done gate."""
        b, nodes = self.b, self.nodes
        order = self._order() if by_dependencies else self._streamed.tolist()
        last: dict[tuple[int, str], int] = {}
        chain_a, chain_b = [], []
        for i in order:
            x = nodes[i]
            s = (x.rank, stream_of(x))
            if s in last:
                chain_a.append(last[s])
                chain_b.append(i)
            last[s] = i
        if chain_a:
            b.edges(self.E[np.asarray(chain_a, dtype=np.int64)], self.S[np.asarray(chain_b, dtype=np.int64)])
        done = int(b.gates(1)[0])
        if len(self.E):
            b.edges(self.E, np.full(len(self.E), done))
        return done

    def _order(self) -> list[int]:
        """Compute and send nodes in a topological order of the ordering graph (the program without those
        streams), ties by recorded start then recorded order; a cycle is a `ProgramError` naming it.

        Chaining each stream in this order adds no cycle: the chain edge E(a) -> S(b) needs S(a) before S(b),
        and E(a)'s only predecessor in the ordering graph is S(a) (a compute's delay, a send's transfer), so a
        path from S(b) to E(a) would pass S(a), which the order puts first."""
        g = self.b.num_gates
        oa = np.concatenate(self._oa) if self._oa else np.zeros(0, dtype=np.int64)
        ob = np.concatenate(self._ob) if self._ob else np.zeros(0, dtype=np.int64)
        indeg = np.bincount(ob, minlength=g)
        order = np.argsort(oa, kind="stable")
        off = np.zeros(g + 1, dtype=np.int64)
        np.cumsum(np.bincount(oa, minlength=g), out=off[1:])
        succ = ob[order].tolist()
        off_l = off.tolist()
        member = np.zeros(g, dtype=bool)
        member[oa] = True
        member[ob] = True
        member[self.S] = True
        member[self.E] = True
        compute_of = np.full(g, -1, dtype=np.int64)
        compute_of[self.S[self._streamed]] = self._streamed
        compute_of_l = compute_of.tolist()
        starts = [x.start for x in self.nodes]
        def key(w: int) -> tuple:  # a streamed start waits its turn: earliest recorded start, then recorded order
            c = compute_of_l[w]
            if c < 0:
                return (-np.inf, -1, w)
            return (-np.inf if starts[c] is None else starts[c], c, w)

        heap = [key(v) for v in np.flatnonzero(member & (indeg == 0)).tolist()]
        heapq.heapify(heap)
        left = indeg.tolist()
        seen = 0
        out: list[int] = []
        while heap:
            _, _, v = heapq.heappop(heap)
            seen += 1
            c = compute_of_l[v]
            if c >= 0:
                out.append(c)
            for q in range(off_l[v], off_l[v + 1]):
                w = succ[q]
                left[w] -= 1
                if left[w] == 0:
                    heapq.heappush(heap, key(w))
        if seen < int(member.sum()):
            self._cycle(np.asarray(left) > 0, oa, ob)
        return out

    def _cycle(self, stuck: np.ndarray, oa: np.ndarray, ob: np.ndarray) -> None:
        """Raise a `ProgramError` describing one cycle among the gates still waiting."""
        preds: dict[int, list[int]] = {}
        for a, c in zip(oa.tolist(), ob.tolist()):
            if stuck[a] and stuck[c]:
                preds.setdefault(c, []).append(a)
        v = int(np.flatnonzero(stuck)[0])
        path: list[int] = []
        where: dict[int, int] = {}
        while v not in where:
            where[v] = len(path)
            path.append(v)
            v = preds[v][0]
        names: list[str] = []  # each waits for the next (a node's start and end read as one)
        for gate in path[where[v]:]:
            text = self._describe(gate)
            if not names or names[-1] != text:
                names.append(text)
        if len(names) > 1 and names[0] == names[-1]:
            names.pop()
        raise ProgramError("cannot finish, a dependency cycle: " + " waits for ".join(names + names[:1]),
                           source=self.program.source or "program")

    def _describe(self, gate: int) -> str:
        n = len(self.nodes)
        i = gate - int(self.S[0]) if n and self.S[0] <= gate < self.S[0] + n else \
            gate - int(self.E[0]) if n and self.E[0] <= gate < self.E[0] + n else -1
        if i >= 0:
            x = self.nodes[i]
            what = {"compute": f"compute {x.name}".strip(), "collective": f"{x.op} on {x.group}",
                    "send": f"send to rank {x.peer}", "recv": f"recv from rank {x.peer}"}[x.kind]
            return f"rank {x.rank} node {x.id} ({what})"
        for c in self.calls:
            if c.join == gate:
                return f"call {c.k} of group {c.group!r} (all its members)"
        return f"gate {gate}"


def _seconds(node: Node, device_flops: float | None, source: str) -> float:
    if node.duration is not None:
        return float(node.duration)
    if device_flops is None or not device_flops > 0:
        raise ProgramError(f"rank {node.rank} node {node.id}: compute given in FLOPs needs a device speed "
                           "(FLOP/s > 0)", source=source or "program")
    return float(node.flops) / device_flops


__all__ = ["CALL_SCHEMA", "NODE_SCHEMA", "ProgramResult", "ProgramRun", "SENDS", "run_program", "stream_of"]

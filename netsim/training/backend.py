"""The ``netsim`` torch.distributed backend: real maths by gloo, every call recorded for the simulator.

Importing this module registers the backend (`torch.distributed.Backend.register_backend`, CPU), so an
unmodified script's ``dist.init_process_group("netsim")`` and ``dist.new_group(...)`` get a
`NetsimProcessGroup`. Each process group delegates every call, with the caller's own tensors and
options, to a plain gloo process group on the same store (results are gloo's, bit for bit) and records
it — op, bytes in netsim's convention, dtype, group, peer and tag, when the rank entered and left the
backend, when the work finished (where a wait saw it), the script line — and every wait: `Work.wait`,
`Future.wait` called from Python, and the end of a backward pass, where DDP waits for the buckets it
reduced while the backward went on (a callback queued on the autograd engine marks where that wait
began and ended). With ``NETSIM_RECORD_DIR`` set, each rank writes its recording there when the default
group is destroyed (or, without that, when the process exits, unless an exception ended it);
`netsim.traces.recording.program_from_recording` merges them into a `Program`. With ``NETSIM_SYMMETRIC`` set,
one process records a world of N: its default group is `netsim.training.symmetric.SymmetricGroup`, not gloo.

Why a `ProcessGroup` subclass: torch 2.13 lets Python override a `ProcessGroup`'s collectives (pybind
trampolines, `PyProcessGroup`) but not a `Backend`'s, and `_new_process_group_helper` uses a creator's
`ProcessGroup` as the group itself. C++ callers (DDP's reducer, functional collectives) reach the
trampolined methods (allreduce, allgather, broadcast, reduce_scatter, all_to_all_single, the coalesced
all-gather / reduce-scatter / all-reduce, barrier, send, recv); the others (reduce, all_to_all with
lists, gather, scatter, the single-tensor all-gather / reduce-scatter) are reached from Python only — a
C++ caller of those would find no backend. Gather and scatter are recorded as such (replayed as
messages); ops netsim cannot replay (a receive from any source, ...) raise `BackendError` naming the op
and the script line.
"""

from __future__ import annotations

import atexit
import os
import site
import sys
import time
import uuid

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import PrefixStore, ProcessGroup as _ProcessGroup, ProcessGroupGloo
from torch.optim.optimizer import register_optimizer_step_post_hook

from netsim.errors import NetsimError

NAME = "netsim"
ENV_DIR = "NETSIM_RECORD_DIR"  # where each rank writes its recording (unset: kept in memory only)

_clock = time.perf_counter  # CLOCK_MONOTONIC: one clock for every process of the machine
_THIS = os.path.abspath(__file__)
# where the script's own lines are not: torch, the standard library and installed packages
_LIBRARY = tuple({os.path.dirname(torch.__file__) + os.sep, os.path.dirname(os.__file__) + os.sep,
                  *(p + os.sep for p in site.getsitepackages() + [site.getusersitepackages()])})
_paths: dict[str, str | None] = {}  # a frame's file name -> how the script line shows it (None: a library's)


class BackendError(NetsimError):
    """A call the netsim backend cannot record (an op netsim does not model): names the op and the line."""


def script_line() -> str:
    """``file:line`` of the innermost caller outside torch, the standard library, installed packages and
    this module: where the script made the call ("" when there is none)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        shown = _paths.get(name, "")
        if shown == "":
            shown = _paths[name] = _shown(name)
        if shown is not None:
            return f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _shown(name: str) -> str | None:
    if name.startswith("<") or os.path.abspath(name) == _THIS or name.startswith(_LIBRARY):
        return None
    rel = os.path.relpath(name) if os.path.isabs(name) else name
    return name if rel.startswith("..") else rel


def _library_caller() -> bool:
    """The caller's caller is not the script's code: torch (C++, or its own Python) asked, not a script's
    custom backward, whose `Future.wait` must be recorded."""
    try:
        frame = sys._getframe(2)
    except ValueError:  # called from C++ with no Python frame below
        return True
    name = frame.f_code.co_filename
    shown = _paths.get(name, "")
    if shown == "":
        shown = _paths[name] = _shown(name)
    return shown is None


def nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _dtype(tensors) -> str:
    return str(tensors[0].dtype).removeprefix("torch.") if tensors else ""


class Recording:
    """One process's record: the groups it belongs to and its calls and waits, in the order it made them
    (one sequence per process: calls from several threads of a rank would be recorded as one chain)."""

    def __init__(self, rank: int, world_size: int, run: str = ""):
        self.rank, self.world_size, self.run = rank, world_size, run
        self.origin = _clock()
        self.end: float | None = None
        self.groups: dict[str, list[int]] = {}
        self.default: str | None = None
        self.events: list[dict] = []
        self._next = 0
        self._futures: set[int] = set()  # calls whose future was taken (DDP waits on those)
        self._backward: list[int] = []  # calls issued in the running backward pass
        self._queued = False
        self.closed = False
        self.symmetric = False  # one rank recorded for all (`netsim.training.symmetric`)
        self.steps: list[float] = []  # when each optimizer step of the script ended (its iterations)
        register_optimizer_step_post_hook(self._stepped)

    def _stepped(self, optimizer, args, kwargs) -> None:
        """Every torch optimizer's step() ends here: the script's iterations, unmodified scripts included
        (several optimizers stepping with no call between them are one step, at the last one's end)."""
        if self.closed:
            return
        now = _clock()
        last = self.events[-1]["t1"] if self.events else self.origin
        if self.steps and self.steps[-1] >= last:  # no call since the previous optimizer's step: the same step
            self.steps[-1] = now
        else:
            self.steps.append(now)

    def call(self, t0: float, **fields) -> dict:
        ev = {"call": self._next, "t0": t0, "t1": t0, "done": None, **fields}
        self._next += 1
        self.events.append(ev)
        if torch._C._current_graph_task_id() != -1:  # inside a backward pass
            self._backward.append(ev["call"])
            if not self._queued:
                self._queued = True
                torch.autograd.Variable._execution_engine.queue_callback(self._backward_ends)
        return ev

    def wait(self, ids: list[int], t0: float, t1: float, how: str) -> None:
        self.events.append({"wait": ids, "t0": t0, "t1": t1, "how": how})

    def future_taken(self, call: int) -> None:
        self._futures.add(call)

    def _backward_ends(self) -> None:
        """Runs when the backward's graph is done, just before DDP's finalizer (which DDP queues after this
        callback, when its last bucket is ready) waits on the buckets' futures; a callback queued now runs
        after the finalizer and marks the wait's end."""
        t0 = _clock()
        ids = [i for i in self._backward if i in self._futures]
        self._backward, self._queued = [], False
        self._futures.clear()
        if ids:
            torch.autograd.Variable._execution_engine.queue_callback(
                lambda: self.wait(ids, t0, _clock(), "backward"))

    def data(self) -> dict:
        return {"rank": self.rank, "world_size": self.world_size, "run": self.run, "origin": self.origin,
                "end": self.end if self.end is not None else _clock(), "default": self.default,
                "groups": self.groups, "events": self.events, "steps": self.steps,
                **({"symmetric": True} if self.symmetric else {})}

    def finish(self) -> None:
        """Close the record (now) and write it where ``NETSIM_RECORD_DIR`` says; once (later calls do
        nothing)."""
        if self.closed:
            return
        self.closed, self.end = True, _clock()
        directory = os.environ.get(ENV_DIR)
        if directory:
            from netsim.traces.recording import write_rank  # (here: netsim.traces costs 0.6 s to import)

            write_rank(directory, self.data())


_recording: Recording | None = None


def recording() -> Recording | None:
    """This process's recording (None before the default group is created)."""
    return _recording


class RecordedFuture(torch.futures.Future):
    """A work's future: completes with gloo's; a `wait` from Python is recorded."""

    def __init__(self, rec: Recording, call: int):
        super().__init__()
        self._rec, self._call = rec, call

    def wait(self):
        t0 = _clock()
        value = super().wait()
        self._rec.wait([self._call], t0, _clock(), "future")
        return value


class RecordedWork(dist.Work):
    """gloo's work for a recorded call: `wait` is recorded; the rest is gloo's."""

    def __init__(self, inner, rec: Recording, call: dict):
        super().__init__()
        self._inner, self._rec, self._ev, self._call = inner, rec, call, call["call"]

    def wait(self, timeout=None):
        t0 = _clock()
        running = not self._inner.is_completed()
        ok = self._inner.wait() if timeout is None else self._inner.wait(timeout)
        t1 = _clock()
        self._rec.wait([self._call], t0, t1, "work")
        if running and self._ev["done"] is None:  # the wait saw it finish (a callback on gloo's thread
            self._ev["done"] = t1  # would cost a GIL hand-over per call)
        return ok

    def get_future(self):
        self._rec.future_taken(self._call)
        if torch._C._current_graph_task_id() != -1 and _library_caller():  # DDP's reducer, in a backward pass:
            return self._inner.get_future()  # gloo's own future (the backward's end records the wait), and no
        fut = RecordedFuture(self._rec, self._call)  # Python callback on gloo's thread costs a GIL hand-over

        def forward(f):
            try:
                fut.set_result(f.value())
            except Exception as exc:  # gloo's error, handed on
                fut.set_exception(exc)

        self._inner.get_future().add_done_callback(forward)
        return fut

    def is_completed(self):
        return self._inner.is_completed()

    def is_success(self):
        return self._inner.is_success()

    def exception(self):
        return self._inner.exception()

    def result(self):
        return self._inner.result()

    def source_rank(self):
        return self._inner.source_rank()

    def synchronize(self):
        return self._inner.synchronize()


def _unsupported(op: str, why: str):
    def method(self, *args, **kwargs):
        at = script_line()
        raise BackendError(f"{op} is not supported by the netsim backend ({why})" + (f", called at {at}" if at else ""))
    method.__name__ = op
    return method


class NetsimProcessGroup(dist.ProcessGroup):
    """A process group that records each call and has gloo do it (see the module docstring)."""

    def __init__(self, inner, rec: Recording, name: str, ranks: list[int], rank: int, size: int):
        super().__init__(rank, size)
        self._inner, self._rec, self._name, self._ranks = inner, rec, name, ranks
        self._group_name, self._group_desc = name, "undefined"

    def getBackendName(self) -> str:
        return NAME

    # torch keeps a group's name and description in its backends; this group has none of its own
    def getGroupName(self) -> str:
        return self._group_name

    def setGroupName(self, name: str) -> None:
        self._group_name = name

    def getGroupDesc(self) -> str:
        return self._group_desc

    def setGroupDesc(self, desc: str) -> None:
        self._group_desc = desc

    group_name = property(getGroupName)
    group_desc = property(getGroupDesc)

    def _issue(self, t0: float, op: str, run, tensors, *, collective: str | None = None, size: int | None = None,
               peer: int | None = None, tag: int = 0, root: int | None = None) -> RecordedWork:
        kind = "collective" if collective else op
        ev = self._rec.call(t0, op=op, kind=kind, collective=collective,
                            bytes=nbytes(tensors) if size is None else size, dtype=_dtype(tensors),
                            group=self._name, peer=None if peer is None else self._ranks[peer], tag=tag,
                            where=script_line())
        if root is not None:
            ev["root"] = self._ranks[root]
        try:
            work = run()
        except BaseException:  # gloo refused it: nothing happened, nothing recorded
            self._rec.events.remove(ev)
            raise
        ev["t1"] = _clock()
        return RecordedWork(work, self._rec, ev)

    # -- collectives (sizes in netsim's convention: see netsim.program.model)
    def allreduce(self, tensors, opts=None):
        t0 = _clock()
        return self._issue(t0, "allreduce", lambda: _call(self._inner.allreduce, tensors, opts), tensors,
                           collective="all_reduce")

    def allreduce_coalesced(self, tensors, opts=None):
        t0 = _clock()
        return self._issue(t0, "allreduce_coalesced", lambda: _call(self._inner.allreduce_coalesced, tensors, opts),
                           tensors, collective="all_reduce")

    def broadcast(self, tensors, opts=None):
        t0 = _clock()
        return self._issue(t0, "broadcast", lambda: _call(self._inner.broadcast, tensors, opts), tensors,
                           collective="broadcast")

    def reduce(self, tensors, opts=None):
        t0 = _clock()
        return self._issue(t0, "reduce", lambda: _call(self._inner.reduce, tensors, opts), tensors,
                           collective="reduce")

    def allgather(self, output_lists, inputs, opts=None):
        t0 = _clock()
        return self._issue(t0, "allgather", lambda: _call(self._inner.allgather, output_lists, inputs, opts), inputs,
                           collective="all_gather", size=nbytes(output_lists[0]))

    def all_gather_single(self, output, input, opts=None):
        t0 = _clock()
        return self._issue(t0, "all_gather_single", lambda: _call(self._inner.all_gather_single, output, input, opts),
                           [input], collective="all_gather", size=nbytes([output]))

    _allgather_base = all_gather_single

    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        t0 = _clock()
        return self._issue(t0, "all_gather_single_coalesced",
                           lambda: _call(self._inner.all_gather_single_coalesced, outputs, inputs, opts), inputs,
                           collective="all_gather", size=nbytes(outputs))

    allgather_into_tensor_coalesced = all_gather_single_coalesced

    def reduce_scatter(self, outputs, input_lists, opts=None):
        t0 = _clock()
        return self._issue(t0, "reduce_scatter", lambda: _call(self._inner.reduce_scatter, outputs, input_lists, opts),
                           input_lists[0], collective="reduce_scatter")

    def reduce_scatter_single(self, output, input, opts=None):
        t0 = _clock()
        return self._issue(t0, "reduce_scatter_single",
                           lambda: _call(self._inner.reduce_scatter_single, output, input, opts), [input],
                           collective="reduce_scatter")

    _reduce_scatter_base = reduce_scatter_single

    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        t0 = _clock()
        return self._issue(t0, "reduce_scatter_single_coalesced",
                           lambda: _call(self._inner.reduce_scatter_single_coalesced, outputs, inputs, opts), inputs,
                           collective="reduce_scatter")

    reduce_scatter_tensor_coalesced = reduce_scatter_single_coalesced

    def all_to_all_single(self, output, input, output_splits, input_splits, opts=None):
        t0 = _clock()
        return self._issue(t0, "all_to_all_single",
                           lambda: _call(self._inner.all_to_all_single, output, input, output_splits, input_splits,
                                         opts), [input], collective="all_to_all")

    alltoall_base = all_to_all_single

    def alltoall(self, outputs, inputs, opts=None):
        t0 = _clock()
        return self._issue(t0, "alltoall", lambda: _call(self._inner.alltoall, outputs, inputs, opts), inputs,
                           collective="all_to_all")

    def barrier(self, opts=None):
        t0 = _clock()
        return self._issue(t0, "barrier", lambda: _call(self._inner.barrier, opts), [], collective="barrier", size=0)

    # -- point to point (peers are group ranks here, global ranks in the record)
    def send(self, tensors, dst, tag=0):
        t0 = _clock()
        return self._issue(t0, "send", lambda: self._inner.send(tensors, dst, tag), tensors, peer=dst, tag=tag)

    def recv(self, tensors, src, tag=0):
        t0 = _clock()
        return self._issue(t0, "recv", lambda: self._inner.recv(tensors, src, tag), tensors, peer=src, tag=tag)

    # -- gather and scatter: recorded as such, replayed as messages to / from the root (one block each)
    def gather(self, outputs, inputs, opts=None):
        t0 = _clock()
        return self._issue(t0, "gather", lambda: _call(self._inner.gather, outputs, inputs, opts), inputs,
                           root=(opts.rootRank if opts is not None else 0))

    def scatter(self, outputs, inputs, opts=None):
        t0 = _clock()
        return self._issue(t0, "scatter", lambda: _call(self._inner.scatter, outputs, inputs, opts), outputs,
                           root=(opts.rootRank if opts is not None else 0))

    recv_anysource = _unsupported("recv_anysource", "a receive from any source has no peer to simulate")
    allgather_coalesced = _unsupported("allgather_coalesced", "deprecated by torch; use all_gather_into_tensor")
    monitored_barrier = _unsupported("monitored_barrier", "a gloo debugging barrier")
    _start_coalescing = _unsupported("coalescing (_start_coalescing)", "coalesced calls are recorded only through "
                                     "the coalesced collectives")
    _end_coalescing = _unsupported("coalescing (_end_coalescing)", "coalesced calls are recorded only through "
                                   "the coalesced collectives")
    split_group = _unsupported("split_group", "use dist.new_group")
    merge_remote_group = _unsupported("merge_remote_group", "use dist.new_group")

    def shutdown(self):
        self._inner.shutdown()
        if self._name == self._rec.default:
            self._rec.finish()

    def abort(self):
        self._inner.abort()


def _call(method, *args):
    """`method(*args)`, the trailing options left out when the caller gave none (gloo's defaults)."""
    return method(*args[:-1]) if args[-1] is None else method(*args)



def _create(opts, pg_options) -> NetsimProcessGroup:
    """The backend's creator (`register_backend`'s extended API: it is told the group's global ranks). Creating
    gloo's group waits for every member to connect: that time is setup, not compute (the recording of the
    default group begins when it is done; a subgroup's is recorded as a ``setup`` window)."""
    global _recording
    t0 = _clock()
    size, group_rank, name = opts.group_size, opts.group_rank, str(opts.group_id)
    ranks = list(opts.global_ranks_in_group) or list(range(size))
    default = not opts.global_ranks_in_group
    if not default and _recording is None:
        raise BackendError("a netsim process group needs the default group to be netsim too "
                           "(dist.init_process_group('netsim'))")
    from netsim.training import symmetric
    from netsim.training.launch import SYMMETRIC

    if os.environ.get(SYMMETRIC):  # one rank stands for all: no peers, collectives complete locally
        if not default:
            raise BackendError(f"a subgroup ({len(ranks)} of the ranks) cannot be recorded in symmetric mode (its "
                               "members differ from rank to rank); run the script on real ranks")
        inner = symmetric.SymmetricGroup(group_rank, size)
    else:
        store = PrefixStore("gloo/", opts.store)
        gloo = ProcessGroupGloo(store, group_rank, size, opts.timeout)
        inner = _ProcessGroup(store, group_rank, size)
        inner._set_default_backend(_ProcessGroup.BackendType.GLOO)
        inner._register_backend(torch.device("cpu"), _ProcessGroup.BackendType.GLOO, gloo)
    if default:  # one run's ranks share an id, so a directory never mixes runs unnoticed
        if group_rank == 0:
            opts.store.set("netsim/run", uuid.uuid4().hex)
        _recording = Recording(ranks[group_rank], size, opts.store.get("netsim/run").decode())
        _recording.default = name
        _recording.symmetric = bool(os.environ.get(SYMMETRIC))
    else:
        _recording.events.append({"setup": name, "t0": t0, "t1": _clock()})
    _recording.groups[name] = ranks
    return NetsimProcessGroup(inner, _recording, name, ranks, group_rank, size)


_failed = False  # an exception ended the script: its recording is not written at exit


def _at_exit() -> None:
    if _recording is not None and not _failed:
        _recording.finish()


def _excepthook(kind, value, tb, *, previous=sys.excepthook) -> None:
    global _failed
    _failed = True
    previous(kind, value, tb)


def register() -> None:
    """Register the ``netsim`` backend with torch.distributed (once; importing this module does it)."""
    if NAME.upper() not in dist.Backend._plugins:
        dist.Backend.register_backend(NAME, _create, extended_api=True, devices=["cpu"])
        atexit.register(_at_exit)
        sys.excepthook = _excepthook


register()

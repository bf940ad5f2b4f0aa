"""Run an unmodified torch.distributed script on N local ranks, as ``torchrun --nproc-per-node N`` would
(env:// rendezvous on a free local port: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK; and, like
torchrun, OMP_NUM_THREADS=1 for several ranks unless it is set: torch threads per rank), each rank
a process forked from a server that imported torch once (a fresh interpreter per rank spends seconds on
it), with its output in a log file of its own.

With `route` the ranks' CPU process groups go to the ``netsim`` backend (`netsim.training.backend`): a
script's ``init_process_group("gloo")`` (or no backend named) and ``new_group(backend="gloo")`` get the
recording backend, whose maths is gloo's; any other backend name is refused in one line naming it. With
`symmetric`, one rank runs in a world of N, its default group on a store of its own and its collectives
completed locally (`netsim.training.symmetric`).

    >>> codes = run_ranks("train.py", ["--steps", "3"], 4, logs=Path("logs"), record=Path("rec"))
    >>> codes
    {0: 0, 1: 0, 2: 0, 3: 0}
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import socket
import sys
import traceback
from pathlib import Path

from netsim.errors import NetsimError

# imported once by the fork server (DDP imports torch._dynamo: about 2 s). Nothing that starts threads at
# import (netsim.traces does: polars' pool): a process forked while other threads hold locks can hang in
# them (seen: a rank asleep in its last call while the others had exited); the recording's writer is
# imported by each rank when it writes.
PRELOAD = ["torch", "torch.distributed", "torch.nn.parallel", "torch._dynamo",
           "torch.distributed._functional_collectives", "netsim.training.backend"]
SYMMETRIC = "NETSIM_SYMMETRIC"  # set in the one rank of a symmetric run (netsim.training.symmetric)
CPU_BACKENDS = ("gloo", "cpu:gloo", "netsim", "cpu:netsim")  # names a script may give (or none)
_context = None


class LaunchError(NetsimError):
    """A script asked for what a CPU run under the netsim backend cannot give (a GPU backend, ...)."""


def _server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _routed(name):
    """The backend a script's process group gets: netsim for a CPU backend or none named."""
    if name is None or str(name).lower() in CPU_BACKENDS:
        return "netsim"
    caller = sys._getframe(2)  # the script's call of init_process_group / new_group
    raise LaunchError(f"backend {name!r} at {caller.f_code.co_filename}:{caller.f_lineno}: netsim runs the ranks "
                      f"on this machine's CPU, so a script's process groups must use gloo (or name no backend)")


def route_to_netsim() -> None:
    """From now on, this process's CPU process groups are netsim's (see the module's docstring)."""
    import torch.distributed as dist
    import torch.distributed.distributed_c10d as c10d

    from netsim.training.backend import register

    register()  # (once: importing the module already did)
    init, new_group = c10d.init_process_group, c10d.new_group

    def init_process_group(backend=None, *args, **kwargs):
        if os.environ.get(SYMMETRIC):  # one rank, no peers to meet: a store of its own, the world env's
            for key in ("init_method", "store", "rank", "world_size"):
                kwargs.pop(key, None)
            return init(_routed(backend), *args, store=dist.HashStore(), rank=int(os.environ["RANK"]),
                        world_size=int(os.environ["WORLD_SIZE"]), **kwargs)
        return init(_routed(backend), *args, **kwargs)

    def new_group_routed(ranks=None, timeout=None, backend=None, *args, **kwargs):
        return new_group(ranks, timeout, None if backend is None else _routed(backend), *args, **kwargs)

    for module in (dist, c10d):
        module.init_process_group, module.new_group = init_process_group, new_group_routed


def _rank(script: str, argv: list[str], env: dict, log: str, route: bool) -> None:
    """One rank: the script run as __main__ in this process, its output to `log`, its exit status ours."""
    from netsim.training import backend

    os.environ.clear()  # the launcher's environment as it is now (the fork server's may be older)
    os.environ.update(env)
    if env.get("OMP_NUM_THREADS", "").isdigit() and int(env["OMP_NUM_THREADS"]) > 0:  # (torch is imported already:
        import torch  # the variable alone no longer sets its threads)

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    sys.argv = [script, *argv]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))  # as `python script.py` does
    with open(log, "w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    code = 0
    try:
        if route:
            route_to_netsim()
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # the script's traceback, without this launcher's frames
        shown = traceback.TracebackException.from_exception(exc)
        shown.stack = traceback.StackSummary.from_list(
            [f for f in shown.stack if f.filename != __file__ and "runpy" not in f.filename])
        print("".join(shown.format()), end="", file=sys.stderr)
        code = 1
    if code == 0:
        backend._at_exit()  # (a forked process leaves without running atexit handlers)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_ranks(script: str | Path, argv: list[str], nproc: int, *, logs: Path, record: Path | None = None,
              env: dict | None = None, timeout: float | None = None, route: bool = True,
              symmetric: bool = False) -> dict[int, int]:
    """Run `script` with `argv` on `nproc` local ranks; each rank's output goes to ``logs/rank-<r>.log``
    (`logs` must exist), its recording to `record` (``NETSIM_RECORD_DIR``) if given. Returns each rank's
    exit status (a rank still running after `timeout` seconds is killed: -9). When one rank fails, the
    others are given a few seconds (they may wait for it in a collective) before they are killed. With
    `symmetric`, rank 0 alone runs, in a world of `nproc` (`netsim.training.symmetric`; routed to netsim)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    try:
        for rank in range(1 if symmetric else nproc):
            rank_env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(nproc),
                        "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(nproc), **(env or {})}
            if nproc > 1:  # as torchrun: one thread per rank unless told (ranks' thread pools fight for the cores)
                rank_env.setdefault("OMP_NUM_THREADS", "1")
            rank_env.pop("NETSIM_RECORD_DIR", None)
            rank_env.pop(SYMMETRIC, None)
            if record is not None:
                rank_env["NETSIM_RECORD_DIR"] = str(record)
            if symmetric:
                rank_env[SYMMETRIC], route = "1", True
            p = _server().Process(target=_rank, args=(str(script), list(argv), rank_env, str(logs / f"rank-{rank}.log"),
                                                      route))
            p.start()
            procs.append(p)
        _join(procs, timeout)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    return {rank: p.exitcode for rank, p in enumerate(procs)}


def _join(procs, timeout: float | None, grace: float = 5.0) -> None:
    """Wait for every rank (up to `timeout` s in all); once one has failed, the rest get `grace` s."""
    import time

    end = None if timeout is None else time.monotonic() + timeout
    for p in procs:
        while p.is_alive():
            p.join(0.1)
            if any(q.exitcode for q in procs if q.exitcode is not None):
                end = min(end or float("inf"), time.monotonic() + grace)
            if end is not None and time.monotonic() > end:
                return


def failure_report(codes: dict[int, int], logs: Path, tail: int = 60) -> str:
    """The failed ranks' own output (its last `tail` lines: the script's traceback), each line prefixed with
    the rank; ranks that failed with the same output are shown once (``[ranks 0,1]``); ranks killed after
    another failed are named, not shown."""
    lines = []
    first = [r for r, c in codes.items() if c not in (0, -9)]
    outputs: dict[tuple[str, ...], list[int]] = {}
    for rank in first:
        log = logs / f"rank-{rank}.log"
        text = log.read_text(errors="replace").splitlines()[-tail:] if log.exists() else []
        outputs.setdefault(tuple(text) or (f"exited {codes[rank]}, no output",), []).append(rank)
    for text, ranks in outputs.items():
        prefix = f"[rank {ranks[0]}]" if len(ranks) == 1 else f"[ranks {','.join(map(str, ranks))}]"
        lines += [f"{prefix} {line}" for line in text]
    killed = [r for r, c in codes.items() if c == -9]
    if killed:
        lines.append(f"(ranks {', '.join(map(str, killed))} were stopped after the failure)" if first
                     else f"(ranks {', '.join(map(str, killed))} did not finish in time and were stopped)")
    return "\n".join(lines)

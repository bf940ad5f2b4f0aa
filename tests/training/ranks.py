"""Run a plain torch.distributed script on N local ranks, as torchrun would (env:// rendezvous on a free
port), each rank a process forked from a server that imported torch once (a fresh interpreter per rank
would spend a second importing it)."""

from __future__ import annotations

import multiprocessing
import os
import runpy
import socket
import sys
import traceback
from pathlib import Path

PRELOAD = ["torch", "torch.distributed", "torch.nn.parallel", "torch._dynamo", "torch.distributed._functional_collectives",
           "netsim.training.backend", "netsim.traces.recording"]  # (DDP imports torch._dynamo: 2 s)
_context = None


def _server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _rank(script: str, env: dict, log: str) -> None:
    """One rank: the script run as __main__ in this process, its output to `log`, its exit status ours."""
    from netsim.training import backend

    os.environ.pop(backend.ENV_DIR, None)
    os.environ.update(env)
    sys.argv = [script]
    with open(log, "w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    if code == 0:
        backend._at_exit()  # (a forked process leaves without running atexit handlers)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def launch(script: str | Path, nproc: int, backend: str, out: Path, record: Path | None = None,
           env: dict | None = None, timeout: float = 120) -> None:
    """Run `script` on `nproc` ranks with ``BACKEND=backend`` and ``OUT=out`` (created) in their
    environment, recording to `record` if given; a rank that fails is an AssertionError with its output."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out.mkdir(parents=True)
    procs = []
    try:
        for rank in range(nproc):
            rank_env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(nproc),
                        "RANK": str(rank), "LOCAL_RANK": str(rank), "BACKEND": backend, "OUT": str(out),
                        **(env or {})}
            if record is not None:
                rank_env["NETSIM_RECORD_DIR"] = str(record)
            p = _server().Process(target=_rank, args=(str(script), rank_env, str(out / f"rank-{rank}.log")))
            p.start()
            procs.append(p)
        for p in procs:
            p.join(timeout)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    failed = [(r, p.exitcode) for r, p in enumerate(procs) if p.exitcode]
    logs = {r: (out / f"rank-{r}.log").read_text()[-3000:] for r, _ in failed if (out / f"rank-{r}.log").exists()}
    assert not failed, "\n".join(f"rank {r} exited {code}:\n{logs.get(r, '')}" for r, code in failed)

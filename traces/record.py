"""Record the sample traces in this folder: small real torch.distributed jobs on CPU (gloo backend).

    .venv/bin/python traces/record.py            # all jobs (about a minute on 2 cores)
    .venv/bin/python traces/record.py ddp2       # one

Jobs (each a folder here):
- ddp2, ddp4: data-parallel training (DistributedDataParallel) of a 4-layer MLP, 2 and 4 processes;
- tp2: one tensor-parallel MLP block (column-parallel then row-parallel linear, Megatron style: an
  all-reduce of the output in the forward and of the input gradient in the backward), 2 processes;
- pp2: a two-stage pipeline, 4 micro-batches (activations sent forward, gradients back), 2 processes.

Per job and rank: ``kineto.<rank>.json.gz`` (torch.profiler, shapes recorded), ``pytorch_et.<rank>.json.gz``
(torch's execution-trace observer: operators with their parent links), ``chakra.<rank>.et`` (netsim's
own Chakra writer, from the profiler trace) and ``recorded.json`` (wall seconds of the profiled
iterations per rank, measured around them). The profiled part is a barrier (so the ranks start together)
and ITERATIONS iterations, after WARMUP unprofiled ones.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARMUP, ITERATIONS = 2, 2
JOBS = {"ddp2": 2, "ddp4": 4, "tp2": 2, "pp2": 2}


def _ddp(rank: int, world: int):
    import torch

    torch.manual_seed(0)
    layers = []
    for _ in range(4):
        layers += [torch.nn.Linear(256, 256), torch.nn.ReLU()]
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Sequential(*layers), bucket_cap_mb=0.25)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    data = torch.randn(64, 256, generator=torch.Generator().manual_seed(rank))

    def step():
        opt.zero_grad()
        model(data).square().mean().backward()
        opt.step()

    return step


def _tp(rank: int, world: int):
    import torch
    import torch.distributed as dist

    class CopyToParallel(torch.autograd.Function):  # identity forward, all-reduce backward
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            grad = grad.clone()
            dist.all_reduce(grad)
            return grad

    class ReduceFromParallel(torch.autograd.Function):  # all-reduce forward, identity backward
        @staticmethod
        def forward(ctx, x):
            x = x.clone()
            dist.all_reduce(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    torch.manual_seed(0)
    hidden, ffn = 512, 2048
    w1 = torch.nn.Parameter(torch.randn(hidden, ffn // world) * 0.02)  # column-parallel shard
    w2 = torch.nn.Parameter(torch.randn(ffn // world, hidden) * 0.02)  # row-parallel shard
    x = torch.randn(128, hidden, requires_grad=True)

    def step():
        h = torch.nn.functional.gelu(CopyToParallel.apply(x) @ w1)
        y = ReduceFromParallel.apply(h @ w2)
        y.square().mean().backward()

    return step


def _pp(rank: int, world: int):
    import torch
    import torch.distributed as dist

    torch.manual_seed(rank)
    stage = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512))
    micro, batch = 4, 32

    def step():
        if rank == 0:
            outs = []
            for m in range(micro):  # forward of every micro-batch, activations to the next stage
                x = torch.randn(batch, 512)
                y = stage(x)
                dist.send(y.detach(), 1, tag=m)
                outs.append(y)
            for m in range(micro):  # backward as the gradients come back
                g = torch.empty(batch, 512)
                dist.recv(g, 1, tag=100 + m)
                outs[m].backward(g)
        else:
            ins, losses = [], []
            for m in range(micro):
                x = torch.empty(batch, 512)
                dist.recv(x, 0, tag=m)
                x.requires_grad_(True)
                ins.append(x)
                losses.append(stage(x).square().mean())
            for m in range(micro):
                losses[m].backward()
                dist.send(ins[m].grad, 0, tag=100 + m)

    return step


BUILDERS = {"ddp2": _ddp, "ddp4": _ddp, "tp2": _tp, "pp2": _pp}


def _worker(rank: int, world: int, job: str, store: str, out: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.profiler import ExecutionTraceObserver, ProfilerActivity, profile

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    step = BUILDERS[job](rank, world)
    for _ in range(WARMUP):
        step()
    dist.barrier()
    et_path = os.path.join(out, f"pytorch_et.{rank}.json")
    et = ExecutionTraceObserver().register_callback(et_path)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        et.start()
        dist.barrier()  # the ranks start the profiled iterations together (starting the observer takes a while)
        tic = time.perf_counter()
        for _ in range(ITERATIONS):
            step()
        wall = time.perf_counter() - tic
        et.stop()
    et.unregister_callback()
    kineto = os.path.join(out, f"kineto.{rank}.json")
    prof.export_chrome_trace(kineto)
    for path in (kineto, et_path):
        with open(path, "rb") as src, gzip.open(path + ".gz", "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst)
        os.remove(path)
    with open(os.path.join(out, f"wall.{rank}.json"), "w") as f:
        json.dump({"rank": rank, "iterations": ITERATIONS, "wall_s": wall}, f)
    dist.barrier()
    dist.destroy_process_group()


def record(job: str) -> Path:
    import torch.multiprocessing as mp

    world = JOBS[job]
    # out/traces/JOB by default (the shipped recordings are never overwritten by accident); NETSIM_TRACES=traces
    # re-records them in place
    out = Path(os.environ.get("NETSIM_TRACES") or HERE.parent / "out" / "traces") / job
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(world, job, os.path.join(tmp, "store"), str(out)), nprocs=world, join=True)
    walls = []
    for r in range(world):
        path = out / f"wall.{r}.json"
        walls.append(json.loads(path.read_text())["wall_s"])
        path.unlink()
    (out / "recorded.json").write_text(json.dumps({"job": job, "ranks": world, "iterations": ITERATIONS,
                                                   "wall_s_per_rank": walls}, indent=1) + "\n")
    sys.path.insert(0, str(HERE.parent))
    from netsim.traces import chakra, load_trace

    chakra.write(load_trace(out, format="kineto"), out / "chakra")
    return out


def main(argv: list[str]) -> int:
    jobs = argv or list(JOBS)
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        print(f"unknown job(s) {unknown} (known: {', '.join(JOBS)})", file=sys.stderr)
        return 2
    for job in jobs:
        out = record(job)
        size = sum(p.stat().st_size for p in out.iterdir())
        print(f"{job}: {len(list(out.iterdir()))} files, {size / 1024:.0f} KiB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

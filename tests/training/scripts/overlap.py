"""A blocking all-reduce, then an asynchronous one with 50 ms of work (a sleep) before its wait: the work
overlaps the all-reduce. Saves both results to OUT/rank-<r>.pt."""

import os
import time

import torch
import torch.distributed as dist

dist.init_process_group(os.environ.get("BACKEND", "gloo"))
rank = dist.get_rank()
a = torch.full((250_000,), float(rank + 1))  # 1 MB
dist.all_reduce(a)
b = torch.arange(500_000, dtype=torch.float32) * (rank + 1)  # 2 MB
work = dist.all_reduce(b, async_op=True)
time.sleep(0.05)
work.wait()
torch.save({"out": {"a": a, "b": b}}, os.path.join(os.environ["OUT"], f"rank-{rank}.pt"))

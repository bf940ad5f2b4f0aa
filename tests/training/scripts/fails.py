"""Fails on rank 1 after a first collective (its traceback is what `netsim torchrun` shows)."""

import os

import torch
import torch.distributed as dist

dist.init_process_group(os.environ.get("WANT", "gloo"))
dist.all_reduce(torch.ones(4))
if dist.get_rank() == 1:
    raise RuntimeError("rank one gives up")
dist.barrier()

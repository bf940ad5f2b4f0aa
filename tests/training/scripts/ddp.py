"""A few steps of DistributedDataParallel on a small MLP, small buckets (several all-reduces per backward,
overlapping it). Saves the trained parameters and the parameter bytes to OUT/rank-<r>.pt."""

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group(os.environ.get("BACKEND", "gloo"))
rank = dist.get_rank()
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                            torch.nn.Linear(256, 8))
ddp = DistributedDataParallel(model, bucket_cap_mb=0.1)
opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
torch.manual_seed(1 + rank)
steps = int(os.environ.get("STEPS", "3"))
for step in range(steps):
    x, y = torch.randn(32, 64), torch.randn(32, 8)
    loss = torch.nn.functional.mse_loss(ddp(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
params = {name: p.detach().clone() for name, p in model.named_parameters()}
torch.save({"out": params, "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "steps": steps}, os.path.join(os.environ["OUT"], f"rank-{rank}.pt"))

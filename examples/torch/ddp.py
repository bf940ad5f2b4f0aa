"""Data-parallel training with DistributedDataParallel: a small MLP, a few steps, gradients all-reduced in
buckets while the backward runs. A plain torch.distributed script:

    torchrun --nproc-per-node 4 examples/torch/ddp.py --steps 3
    netsim torchrun --nproc 4 --topology fattree1024 --rescale 1024 examples/torch/ddp.py --steps 3
"""

import argparse
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--width", type=int, default=256)
parser.add_argument("--save", help="a folder to save each rank's final parameters in")
args = parser.parse_args()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)  # the same initial model on every rank
model = torch.nn.Sequential(torch.nn.Linear(64, args.width), torch.nn.ReLU(), torch.nn.Linear(args.width, args.width),
                            torch.nn.ReLU(), torch.nn.Linear(args.width, 8))
ddp = DistributedDataParallel(model, bucket_cap_mb=0.25)
opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
torch.manual_seed(1 + rank)  # each rank its own data
for step in range(args.steps):
    x, y = torch.randn(32, 64), torch.randn(32, 8)
    loss = torch.nn.functional.mse_loss(ddp(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if rank == 0:
        print(f"step {step}: loss {loss.item():.4f}")
if args.save:
    torch.save(model.state_dict(), os.path.join(args.save, f"rank-{rank}.pt"))

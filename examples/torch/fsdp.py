"""Fully sharded data parallel with torch's own FSDP (`fully_shard`, FSDP2): a small MLP, each Linear layer
its own FSDP unit, its parameters split by rows across the ranks. Before a layer's forward, and again before
its backward (the layer resharded after its forward), its shards are gathered into whole parameters (one
all_gather_into_tensor per layer); after its backward its gradients are reduce-scattered (one
reduce_scatter_tensor per layer), so each rank keeps and updates only its own shard. A plain
torch.distributed script (gloo runs FSDP2 on the CPU):

    torchrun --nproc-per-node 4 examples/torch/fsdp.py --steps 3
    netsim torchrun --nproc 4 --topology fattree1024 --rescale 1024 examples/torch/fsdp.py --steps 3
"""

import argparse
import os

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--width", type=int, default=256, help="hidden width (a multiple of the ranks: even shards)")
parser.add_argument("--save", help="a folder to save each rank's final parameter shards in")
args = parser.parse_args()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)  # the same initial model on every rank (each keeps its own rows of it)
model = torch.nn.Sequential(torch.nn.Linear(32, args.width), torch.nn.ReLU(), torch.nn.Linear(args.width, args.width),
                            torch.nn.ReLU(), torch.nn.Linear(args.width, 8))
for layer in model:
    if isinstance(layer, torch.nn.Linear):
        fully_shard(layer)
fully_shard(model)  # the root: runs the units' gathers and reduce-scatters in order
opt = torch.optim.SGD(model.parameters(), lr=0.01)  # over the local shards
torch.manual_seed(1 + rank)  # each rank its own data
for step in range(args.steps):
    x, y = torch.randn(16, 32), torch.randn(16, 8)
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if rank == 0:
        print(f"step {step}: loss {loss.item():.4f}")
if args.save:  # the rank's own shards (a full_tensor() would gather them: more calls than training makes)
    torch.save({name: p.to_local().detach() for name, p in model.named_parameters()},
               os.path.join(args.save, f"rank-{rank}.pt"))

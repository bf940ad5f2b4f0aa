"""An expert-parallel mixture-of-experts layer: each rank holds one expert; tokens go to their experts with
an all-to-all and come back with another (top-1 routing, equal capacity per expert so every exchange has the
same size). A plain torch.distributed script:

    torchrun --nproc-per-node 4 examples/torch/moe.py
    netsim torchrun --nproc 4 --topology fattree1024 examples/torch/moe.py
"""

import argparse
import os

import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=2)
parser.add_argument("--tokens", type=int, default=64, help="tokens each rank sends to each expert")
parser.add_argument("--width", type=int, default=256)
parser.add_argument("--save", help="a folder to save each rank's final parameters in")
args = parser.parse_args()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(rank)
expert = torch.nn.Linear(args.width, args.width)
opt = torch.optim.SGD(expert.parameters(), lr=0.01)
torch.manual_seed(10 + rank)
for step in range(args.steps):
    # tokens already sorted by expert, `tokens` for each (a router with a capacity factor would pad to this)
    x = torch.randn(world * args.tokens, args.width)
    arrived = torch.empty_like(x)
    dist.all_to_all_single(arrived, x)  # dispatch
    out = expert(arrived)
    back = torch.empty_like(out)
    dist.all_to_all_single(back, out.detach())  # combine
    loss = back.pow(2).mean()
    opt.zero_grad()
    grad = torch.empty_like(back)
    dist.all_to_all_single(grad, (2 * back / back.numel()).contiguous())  # the gradients return to the experts
    out.backward(grad)
    opt.step()
    if rank == 0:
        print(f"step {step}: loss {loss.item():.5f}")
if args.save:
    torch.save(expert.state_dict(), os.path.join(args.save, f"rank-{rank}.pt"))

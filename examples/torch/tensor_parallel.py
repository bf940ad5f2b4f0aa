"""A tensor-parallel MLP (Megatron style): the first layer split by columns, the second by rows, one
all-reduce of the output in the forward and one of the input gradient in the backward, on a subgroup of
each pair of ranks (ranks 0-1, 2-3, ...: tensor parallel 2), and the replicas' gradients all-reduced across
the pairs (data parallel). A plain torch.distributed script, for an even number of ranks:

    torchrun --nproc-per-node 4 examples/torch/tensor_parallel.py
    netsim torchrun --nproc 4 --topology fattree1024 examples/torch/tensor_parallel.py
"""

import argparse
import os

import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=2)
parser.add_argument("--width", type=int, default=256)
parser.add_argument("--save", help="a folder to save each rank's final parameters in")
args = parser.parse_args()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
assert world % 2 == 0, "tensor parallel 2: run it on an even number of ranks"
tp_groups = [dist.new_group([r, r + 1]) for r in range(0, world, 2)]  # every rank creates every group
dp_groups = [dist.new_group(list(range(i, world, 2))) for i in range(2)]
tp, dp = tp_groups[rank // 2], dp_groups[rank % 2]
torch.manual_seed(rank % 2)  # a shard per position in the pair, the same in every replica
w1 = torch.nn.Parameter(torch.randn(args.width, 2 * args.width // 2) * 0.02)  # columns of the first layer
w2 = torch.nn.Parameter(torch.randn(2 * args.width // 2, args.width) * 0.02)  # rows of the second
opt = torch.optim.SGD([w1, w2], lr=0.1)
torch.manual_seed(50 + rank // 2)  # each replica its own data
for step in range(args.steps):
    x = torch.randn(16, args.width)
    partial = torch.relu(x @ w1) @ w2
    y = partial.detach().clone()
    dist.all_reduce(y, group=tp)  # the forward's all-reduce: the full output
    loss = (y ** 2).mean()
    grad_y = 2 * y / y.numel()
    opt.zero_grad()
    partial.backward(grad_y)  # (the input's gradient would need the backward's all-reduce; x is data here)
    for p in (w1, w2):
        dist.all_reduce(p.grad, group=dp)
        p.grad /= world // 2
    opt.step()
    if rank == 0:
        print(f"step {step}: loss {loss.item():.5f}")
if args.save:
    torch.save({"w1": w1.detach(), "w2": w2.detach()}, os.path.join(args.save, f"rank-{rank}.pt"))

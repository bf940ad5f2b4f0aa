"""A two-stage pipeline: rank 0 holds the first half of an MLP, rank 1 the second; each micro-batch's
activations go forward with send/recv and its gradients come back the same way (GPipe order: all forwards,
then all backwards). A plain torch.distributed script, for exactly 2 ranks:

    torchrun --nproc-per-node 2 examples/torch/pipeline.py --microbatches 4
    netsim torchrun --nproc 2 --topology fattree1024 examples/torch/pipeline.py --microbatches 4
"""

import argparse
import os

import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=2)
parser.add_argument("--microbatches", type=int, default=4)
parser.add_argument("--width", type=int, default=512)
parser.add_argument("--save", help="a folder to save each rank's final parameters in")
args = parser.parse_args()

dist.init_process_group("gloo")
rank = dist.get_rank()
assert dist.get_world_size() == 2, "this pipeline has two stages: run it on 2 ranks"
torch.manual_seed(rank)
stage = torch.nn.Sequential(torch.nn.Linear(args.width, args.width), torch.nn.Tanh())
opt = torch.optim.SGD(stage.parameters(), lr=0.01)
torch.manual_seed(100)
batch = 8
for step in range(args.steps):
    opt.zero_grad()
    kept = []
    for m in range(args.microbatches):  # forwards
        if rank == 0:
            out = stage(torch.randn(batch, args.width))
            dist.send(out.detach(), dst=1)
            kept.append(out)
        else:
            x = torch.empty(batch, args.width)
            dist.recv(x, src=0)
            x.requires_grad_(True)
            out = stage(x)
            kept.append((x, out))
    for m in range(args.microbatches):  # backwards
        if rank == 1:
            x, out = kept[m]
            loss = out.pow(2).mean()
            loss.backward()
            dist.send(x.grad, dst=0)
        else:
            grad = torch.empty(batch, args.width)
            dist.recv(grad, src=1)
            kept[m].backward(grad)
    opt.step()
    if rank == 1:
        print(f"step {step}: last micro-batch loss {loss.item():.5f}")
if args.save:
    torch.save(stage.state_dict(), os.path.join(args.save, f"rank-{rank}.pt"))

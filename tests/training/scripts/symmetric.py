"""What each collective leaves in a symmetric run (one rank standing for WORLD_SIZE ranks with its data):
saves the inputs and outputs to OUT/rank-0.pt, then tries a send (refused: the rank's log says why)."""

import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
n = dist.get_world_size()
torch.manual_seed(0)
x = torch.randn(4 * n)
out = {"x": x.clone()}
for name, op in (("sum", dist.ReduceOp.SUM), ("avg", dist.ReduceOp.AVG), ("max", dist.ReduceOp.MAX)):
    y = x.clone()
    dist.all_reduce(y, op=op)
    out[f"all_reduce_{name}"] = y
gathered = torch.empty(n * x.numel())
dist.all_gather_into_tensor(gathered, x)
out["all_gather_into_tensor"] = gathered
parts = [torch.empty_like(x) for _ in range(n)]
dist.all_gather(parts, x)
out["all_gather"] = torch.stack(parts)
shard = torch.empty(4)
dist.reduce_scatter_tensor(shard, x)
out["reduce_scatter_tensor"] = shard
a2a = torch.empty_like(x)
dist.all_to_all_single(a2a, x)
out["all_to_all_single"] = a2a
b = x.clone()
dist.broadcast(b, src=n - 1)
out["broadcast"] = b
torch.save(out, os.path.join(os.environ["OUT"], f"rank-{dist.get_rank()}.pt"))
dist.send(x, dst=1)

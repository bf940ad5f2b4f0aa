"""Every call the netsim backend records, on the world and on subgroups, as a plain torch.distributed script.

Run with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (as torchrun sets them), BACKEND (gloo or netsim) and
OUT (a directory): each rank saves what it computed and the calls it made (netsim's op, bytes in netsim's
convention, and the group's global ranks or the peer) to OUT/rank-<r>.pt.
"""

import os

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol

dist.init_process_group(os.environ.get("BACKEND", "gloo"))
rank, n = dist.get_rank(), dist.get_world_size()
world = list(range(n))
torch.manual_seed(rank)
issued, out = [], {}


def data(*shape, dtype=torch.float32):
    return (torch.randn(*shape) * 10).to(dtype)


x = data(1000)
dist.all_reduce(x)
issued.append(("all_reduce", 4000, world))
out["all_reduce"] = x

y = data(257, dtype=torch.float64)
work = dist.all_reduce(y, op=dist.ReduceOp.MAX, async_op=True)
z = (torch.randn(64, 64) @ torch.randn(64, 64)).sum()  # compute while the all-reduce runs
work.wait()
issued.append(("all_reduce", 257 * 8, world))
out["all_reduce_max"], out["overlapped"] = y, z

f = data(31)
future = dist.all_reduce(f, async_op=True).get_future()
out["all_reduce_future"] = future.wait()[0]
issued.append(("all_reduce", 31 * 4, world))

blocks = [torch.empty(300) for _ in world]
dist.all_gather(blocks, data(300))
issued.append(("all_gather", 300 * 4 * n, world))
out["all_gather"] = torch.stack(blocks)

gathered = torch.empty(n * 128, dtype=torch.int64)
dist.all_gather_single(gathered, torch.arange(128) * (rank + 1))
issued.append(("all_gather", 128 * 8 * n, world))
out["all_gather_single"] = gathered

shard = torch.empty(50)
dist.reduce_scatter(shard, [data(50) for _ in world])
issued.append(("reduce_scatter", 50 * 4 * n, world))
out["reduce_scatter"] = shard

shard2 = torch.empty(64, dtype=torch.float64)
dist.reduce_scatter_single(shard2, data(64 * n, dtype=torch.float64))
issued.append(("reduce_scatter", 64 * 8 * n, world))
out["reduce_scatter_single"] = shard2

b = data(77)
dist.broadcast(b, src=n - 1)
issued.append(("broadcast", 77 * 4, world))
out["broadcast"] = b

r = data(99)
dist.reduce(r, dst=0)
issued.append(("reduce", 99 * 4, world))
out["reduce"] = r if rank == 0 else torch.zeros(0)

a2a = torch.empty(16 * n)
dist.all_to_all_single(a2a, data(16 * n))
issued.append(("all_to_all", 16 * n * 4, world))
out["all_to_all_single"] = a2a

# uneven splits: rank r sends r + 1 + j elements to rank j
send_splits = [rank + 1 + j for j in world]
recv_splits = [j + 1 + rank for j in world]
uneven = torch.empty(sum(recv_splits))
dist.all_to_all_single(uneven, data(sum(send_splits)), recv_splits, send_splits)
issued.append(("all_to_all", sum(send_splits) * 4, world))
out["all_to_all_uneven"] = uneven

outs = [torch.empty(5) for _ in world]
dist.all_to_all(outs, [data(5) for _ in world])
issued.append(("all_to_all", 5 * 4 * n, world))
out["all_to_all"] = torch.stack(outs)

dist.barrier()
issued.append(("barrier", 0, world))

with dist._coalescing_manager():
    for k in range(2):
        dist.all_reduce(out["all_reduce"][k * 10:(k + 1) * 10])
issued.append(("all_reduce", 2 * 10 * 4, world))

recv = torch.empty(33)
sent = data(33)
if rank % 2 == 0:
    dist.send(sent, rank + 1, tag=3)
    issued.append(("send", 33 * 4, rank + 1))
    dist.recv(recv, rank + 1, tag=4)
    issued.append(("recv", 33 * 4, rank + 1))
else:
    dist.recv(recv, rank - 1, tag=3)
    issued.append(("recv", 33 * 4, rank - 1))
    dist.send(sent, rank - 1, tag=4)
    issued.append(("send", 33 * 4, rank - 1))
out["send_recv"] = recv

ring = torch.empty(21)
ops = [dist.P2POp(dist.isend, data(21), (rank + 1) % n), dist.P2POp(dist.irecv, ring, (rank - 1) % n)]
for req in dist.batch_isend_irecv(ops):
    req.wait()
issued += [("send", 21 * 4, (rank + 1) % n), ("recv", 21 * 4, (rank - 1) % n)]
out["batch_isend_irecv"] = ring

g = torch.zeros(n, 3) if rank == 0 else None
dist.gather(data(3), list(g) if g is not None else None, dst=0)
issued.append(("gather", 3 * 4, world))
out["gather"] = g if g is not None else torch.zeros(0)

s = torch.empty(4)
dist.scatter(s, [data(4) for _ in world] if rank == 1 else None, src=1)
issued.append(("scatter", 4 * 4, world))
out["scatter"] = s

objects = [None] * n
dist.all_gather_object(objects, {"rank": rank})
out["objects"] = torch.tensor([o["rank"] for o in objects])
issued.append(("all_gather", None, world))  # (pickled sizes: an all_gather of the lengths, then of the bytes)
issued.append(("all_gather", None, world))

# functional collectives (what DTensor and tensor parallelism use): C++ calls into the process group
out["functional_all_reduce"] = funcol.all_reduce(data(6), "sum", dist.group.WORLD).wait()
issued.append(("all_reduce", 24, world))
out["functional_all_gather"] = funcol.all_gather_tensor(data(3, 2), 0, dist.group.WORLD).wait()
issued.append(("all_gather", 24 * n, world))
out["functional_reduce_scatter"] = funcol.reduce_scatter_tensor(data(2 * n), "sum", 0, dist.group.WORLD).wait()
issued.append(("reduce_scatter", 8 * n, world))

# subgroups: pairs (every rank creates every group, in the same order) and the even ranks
pairs = [dist.new_group([i, i + 1]) for i in range(0, n - 1, 2)]
evens = dist.new_group(world[::2])
mine = pairs[rank // 2] if rank // 2 < len(pairs) else None
if mine is not None:
    p = data(40)
    dist.all_reduce(p, group=mine)
    issued.append(("all_reduce", 160, [rank - rank % 2, rank - rank % 2 + 1]))
    out["pair_all_reduce"] = p
    q = torch.zeros(7)
    if rank % 2 == 0:
        dist.send(data(7), rank + 1, group=mine)  # the same tag and peer as above, on another group
        issued.append(("send", 28, rank + 1))
    else:
        dist.recv(q, rank - 1, group=mine)
        issued.append(("recv", 28, rank - 1))
    out["pair_send_recv"] = q
if rank % 2 == 0:
    e = data(12)
    dist.broadcast(e, src=0, group=evens)
    issued.append(("broadcast", 48, world[::2]))
    out["evens_broadcast"] = e

torch.save({"issued": issued, "out": out}, os.path.join(os.environ["OUT"], f"rank-{rank}.pt"))

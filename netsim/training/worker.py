"""What every method script (`netsim/training/methods`) shares: its command line, the worker one rank
trains (the TinyLM every rank starts from, its inner optimiser, its data shard), the exchanges in the
chosen wire format, and the step log the driver (`netsim.training.coupled`) joins with simulated time.

The step log holds, per step, its loss and three instants on the machine's monotonic clock (the one the
netsim backend records with): `begin` and `end` of the step's own compute (forward, backward and, where
the method steps locally, the optimiser) and `done`, when the worker could go on (its sync included).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from netsim.training.data import Shard, corpus_bytes
from netsim.training.model import ModelConfig, TinyLM
from netsim.training.quantize import FORMATS, decode, encode

LOG = "rank-{rank}.steps.json"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--inner-steps", type=int, default=10, help="H: local steps between syncs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--inner-optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--outer-lr", type=float, default=0.7)
    p.add_argument("--outer-momentum", type=float, default=0.9)
    p.add_argument("--exchange", choices=tuple(FORMATS), default="bf16", help="format of exchanged values")
    p.add_argument("--fragments", type=int, default=4, help="F (streaming_diloco)")
    p.add_argument("--overlap", type=int, default=1, help="tau (streaming_diloco)")
    p.add_argument("--alpha", type=float, default=0.5, help="mixing of local and merged fragment (streaming_diloco)")
    p.add_argument("--pull", type=float, default=0.5, help="pull toward the pair's mean slow weights (noloco)")
    p.add_argument("--graph", default="ring", help="gossip: ring, exponential or random")
    p.add_argument("--final-merge", action="store_true", help="gossip: one global average at the end")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=".", help="directory for this rank's step log")
    return p


class Worker:
    """One rank's model (every rank builds the same from the seed), optimiser and data shard, and its step log."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        torch.manual_seed(args.seed)
        self.model = TinyLM(ModelConfig(args.layers, args.width, args.heads, args.context))
        self.params = list(self.model.parameters())
        self.opt = (torch.optim.AdamW(self.params, lr=args.lr) if args.inner_optimizer == "adamw"
                    else torch.optim.SGD(self.params, lr=args.lr))
        self.shard = Shard(corpus_bytes(), self.rank, self.world, args.context, args.batch, args.seed)
        self.rows: list[list] = []

    def train_step(self, t: int, optimizer_step: bool = True) -> float:
        """Step t's forward and backward (and the optimiser's step), logged as the step's compute; its loss."""
        begin = time.perf_counter()
        self.opt.zero_grad()
        loss = self.model.loss(self.shard.next())
        loss.backward()
        if optimizer_step:
            self.opt.step()
        self.rows.append([t, float(loss.item()), begin, time.perf_counter(), None])
        return self.rows[-1][1]

    def done(self, t: int, loss: float | None = None) -> None:
        """Step t is over (a step with no compute of its own, such as an evaluation, is logged with `loss`)."""
        if loss is not None:
            self.rows.append([t, loss, None, None, None])
        self.rows[-1][4] = time.perf_counter()

    def vector(self) -> torch.Tensor:
        return parameters_to_vector(self.params).detach()

    def load(self, vector: torch.Tensor) -> None:
        vector_to_parameters(vector.clone(), self.params)

    def write_log(self) -> None:
        path = Path(self.args.log) / LOG.format(rank=self.rank)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"rank": self.rank, "steps": self.rows}))
        os.replace(tmp, path)


class Mean:
    """The mean over a group's ranks of one vector each, sent in the wire format: an all-reduce of the values
    (fp32, bf16: summed in that type), or, for the scaled formats (each rank's own scale), an all-gather of
    every rank's bytes, decoded and averaged in fp32. `wait()` gives it."""

    def __init__(self, vector: torch.Tensor, fmt: str, group=None, async_op: bool = False):
        self.fmt, self.numel, self.size = fmt, vector.numel(), dist.get_world_size(group)
        wire = encode(vector, fmt)
        if fmt in ("fp32", "bf16"):
            self.buffer = wire
            self.work = dist.all_reduce(wire, group=group, async_op=async_op)
        else:
            self.buffer = torch.empty(self.size * wire.numel(), dtype=wire.dtype)
            self.work = dist.all_gather_single(self.buffer, wire, group=group, async_op=async_op)

    def wait(self) -> torch.Tensor:
        if self.work is not None:
            self.work.wait()
        if self.fmt in ("fp32", "bf16"):
            return self.buffer.to(torch.float32) / self.size
        parts = self.buffer.view(self.size, -1)
        return torch.stack([decode(part, self.fmt, self.numel) for part in parts]).mean(dim=0)


class Exchange:
    """Point-to-point: this rank's vectors (each in the wire format, one message) sent to each of `peers`, one
    message received from each of `senders`; `wait()` gives, per sender, its vectors decoded."""

    def __init__(self, vectors: list[torch.Tensor], fmt: str, peers: list[int], senders: list[int], tag: int):
        self.fmt, self.sizes = fmt, [v.numel() for v in vectors]
        parts = [encode(v, fmt) for v in vectors]
        self.split = [p.numel() for p in parts]
        self.wire = torch.cat(parts)
        self.sends = [dist.isend(self.wire, peer, tag=tag) for peer in peers]
        self.buffers = [torch.empty_like(self.wire) for _ in senders]
        self.recvs = [dist.irecv(buf, s, tag=tag) for buf, s in zip(self.buffers, senders)]

    def wait(self) -> list[list[torch.Tensor]]:
        for work in self.recvs:
            work.wait()
        return [[decode(part, self.fmt, n) for part, n in zip(buf.split(self.split), self.sizes)]
                for buf in self.buffers]

    def finish(self) -> None:
        """Wait for this rank's sends (nothing in the method needs them: only the end of the script)."""
        for work in self.sends:
            work.wait()

"""Symmetric recording: one real rank stands for all N, so a world larger than this machine can be recorded.

With ``NETSIM_SYMMETRIC`` set, the netsim backend's default group gets a `SymmetricGroup` instead of gloo: no
peer exists, and each collective completes at once, in this process, with the result it would have if every
rank held this rank's data — a sum is N times the tensor, an average, minimum or maximum the tensor itself,
a product its N-th power; a gather repeats the tensor N times; a reduce-scatter or all-to-all returns N
copies' reduction of this rank's own block. The script sees a world of N (``get_world_size``) and issues
the calls an N-rank run would; the recording (one rank's) is read as N ranks' (`netsim.traces.recording`).

What is not symmetric is refused with a `BackendError` naming the op: point-to-point messages (a pipeline's
stages differ; what would a receive hold?), gather and scatter (the root differs from the others), and
subgroups (their members differ from rank to rank, which one rank cannot record). A sum of N equal floats
is computed as one product, so it may differ from gloo's N - 1 additions in the last bit: symmetric mode is
for recording calls and their timing, not for reproducing a run's numbers.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import _create_work_from_future

from netsim.training.backend import BackendError, script_line


def _done(result) -> dist.Work:
    """A work already completed, its future holding `result` (what DDP's reducer reads)."""
    fut = torch.futures.Future()
    fut.set_result(result)
    return _create_work_from_future(fut)


def _refused(op: str, why: str):
    def method(self, *args, **kwargs):
        at = script_line()
        raise BackendError(f"{op} cannot be recorded in symmetric mode ({why}){f', called at {at}' if at else ''}; "
                           "run the script on real ranks")
    method.__name__ = op
    return method


class SymmetricGroup:
    """gloo's place in a symmetric run: the same methods (the ones `NetsimProcessGroup` delegates), each
    completing locally as if all `size` ranks held this rank's data (see the module docstring)."""

    def __init__(self, rank: int, size: int):
        self.rank, self.size = rank, size

    def _reduce(self, t: torch.Tensor, opts) -> torch.Tensor:
        """`t` reduced with itself over the N ranks, by the options' op (SUM when none is given)."""
        op = opts.reduceOp if opts is not None else dist.ReduceOp.SUM
        op = op.op if isinstance(op, dist.ReduceOp) else op  # (options hold a ReduceOp; compare its kind)
        R = dist.ReduceOp
        if op == R.SUM:
            return t * self.size
        if op == R.PRODUCT:
            return t ** self.size
        if op in (R.AVG, R.MIN, R.MAX, R.BAND, R.BOR):
            return t.clone()
        raise BackendError(f"reduce op {op} cannot be recorded in symmetric mode")

    def _block(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's block of a tensor split in N equal blocks along its first dimension (flat when 1-d)."""
        return t.reshape(self.size, -1)[self.rank].reshape(-1)

    def allreduce(self, tensors, opts=None):
        for t in tensors:
            t.copy_(self._reduce(t, opts))
        return _done(tensors)

    allreduce_coalesced = allreduce

    def reduce(self, tensors, opts=None):
        return self.allreduce(tensors, opts)

    def broadcast(self, tensors, opts=None):
        return _done(tensors)  # every rank holds the root's data already

    def allgather(self, output_lists, inputs, opts=None):
        for outs, t in zip(output_lists, inputs):
            for o in outs:
                o.copy_(t)
        return _done(output_lists)

    def all_gather_single(self, output, input, opts=None):
        output.view(self.size, -1).copy_(input.reshape(1, -1).expand(self.size, -1))
        return _done([output])

    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        for o, t in zip(outputs, inputs):
            self.all_gather_single(o, t)
        return _done(outputs)

    def reduce_scatter(self, outputs, input_lists, opts=None):
        for o, ins in zip(outputs, input_lists):
            o.copy_(self._reduce(ins[self.rank], opts))
        return _done(outputs)

    def reduce_scatter_single(self, output, input, opts=None):
        output.view(-1).copy_(self._reduce(self._block(input), opts))
        return _done([output])

    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        for o, t in zip(outputs, inputs):
            self.reduce_scatter_single(o, t, opts)
        return _done(outputs)

    def all_to_all_single(self, output, input, output_splits, input_splits, opts=None):
        """Every peer sends this rank the block this rank would send itself: N copies of it."""
        if input_splits:
            start = sum(input_splits[:self.rank])
            block = input.narrow(0, start, input_splits[self.rank])
            parts = output.split(list(output_splits)) if output_splits else output.chunk(self.size)
        else:
            block, parts = input.chunk(self.size)[self.rank], output.chunk(self.size)
        for p in parts:
            p.copy_(block)
        return _done([output])

    def alltoall(self, outputs, inputs, opts=None):
        for o in outputs:
            o.copy_(inputs[self.rank])
        return _done(outputs)

    def barrier(self, opts=None):
        return _done([])

    send = _refused("send", "a message's peer does other work than this rank")
    recv = _refused("recv", "what a message would hold is another rank's data")
    gather = _refused("gather", "the root does other work than the other ranks")
    scatter = _refused("scatter", "the root does other work than the other ranks")

    def shutdown(self):
        pass

    def abort(self):
        pass

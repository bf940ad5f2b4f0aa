"""Streaming DiLoCo: the parameters in F fragments (transformer block l in fragment l mod F; embeddings and
final norm with fragment 0); fragment p's outer gradient is all-reduced, without blocking, after the steps
t with (t - round(pH/F)) mod H == 0, and merged tau steps later: local <- alpha local + (1 - alpha) global,
global after its outer Nesterov step. Each fragment all-reduces on a process group of its own, so
fragments due at one step reduce at once."""

import torch
import torch.distributed as dist

from netsim.training.outer import OuterNesterov
from netsim.training.worker import Mean, Worker, parser
from netsim.workloads.diloco import StreamingConfig, due_fragments


def fragment_slices(model, fragments: int) -> list[torch.Tensor]:
    """Indices into the flat parameter vector per fragment."""
    owner = []
    for name, p in model.named_parameters():
        part = int(name.split(".")[1]) % fragments if name.startswith("blocks.") else 0
        owner.append(torch.full((p.numel(),), part))
    owner = torch.cat(owner)
    return [torch.nonzero(owner == f).flatten() for f in range(fragments)]


def main() -> None:
    args = parser(__doc__).parse_args()
    dist.init_process_group("gloo")
    w = Worker(args)
    slices = fragment_slices(w.model, args.fragments)
    groups = [dist.new_group(list(range(w.world))) for _ in slices]
    start = w.vector()
    outer = [OuterNesterov(start[idx], args.outer_lr, args.outer_momentum, nesterov=args.outer_momentum > 0)
             for idx in slices]
    periods = -(-args.steps // args.inner_steps)
    due = due_fragments(StreamingConfig(args.inner_steps, len(slices), args.overlap, 16, periods))
    pending: dict[int, list[tuple[int, Mean]]] = {}  # step -> (fragment, its all-reduce) merged before it
    for t in range(1, args.steps + 1):
        for p, mean in pending.pop(t, []):
            merged = outer[p].step(mean.wait())
            local = w.vector()
            local[slices[p]] = args.alpha * local[slices[p]] + (1 - args.alpha) * merged
            w.load(local)
        w.train_step(t)
        local = w.vector()
        for p in due.get(t, []):
            mean = Mean(outer[p].params - local[slices[p]], args.exchange, group=groups[p], async_op=True)
            pending.setdefault(t + args.overlap + 1, []).append((p, mean))
        w.done(t)
    for merges in pending.values():  # all-reduces due after the last step still end
        for _, mean in merges:
            mean.wait()
    w.write_log()


if __name__ == "__main__":
    main()

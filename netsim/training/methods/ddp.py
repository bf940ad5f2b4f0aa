"""DDP: every step, each rank's gradient is averaged over all ranks (one all-reduce of the flat gradient in the
exchange format), then every rank takes the same optimiser step."""

import torch.distributed as dist
from torch.nn.utils import parameters_to_vector

from netsim.training.worker import Mean, Worker, parser


def main() -> None:
    args = parser(__doc__).parse_args()
    dist.init_process_group("gloo")
    w = Worker(args)
    for t in range(1, args.steps + 1):
        w.train_step(t, optimizer_step=False)
        grads = Mean(parameters_to_vector(p.grad for p in w.params), args.exchange).wait()
        offset = 0
        for p in w.params:
            p.grad = grads[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        w.opt.step()
        w.done(t)
    w.write_log()


if __name__ == "__main__":
    main()

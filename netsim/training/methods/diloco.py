"""DiLoCo: H local steps, then the outer gradient (global - local parameters) is averaged over all ranks
and drives an outer SGD step with Nesterov momentum of the global parameters, which every rank loads."""

import torch.distributed as dist

from netsim.training.outer import OuterNesterov
from netsim.training.worker import Mean, Worker, parser


def main() -> None:
    args = parser(__doc__).parse_args()
    dist.init_process_group("gloo")
    w = Worker(args)
    outer = OuterNesterov(w.vector(), args.outer_lr, args.outer_momentum, nesterov=args.outer_momentum > 0)
    for t in range(1, args.steps + 1):
        w.train_step(t)
        if t % args.inner_steps == 0:
            w.load(outer.step(Mean(outer.params - w.vector(), args.exchange).wait()))
        w.done(t)
    w.write_log()


if __name__ == "__main__":
    main()

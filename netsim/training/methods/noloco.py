"""NoLoCo: every H steps, random pairs (a fresh matching each round, from the seed) swap their outer
gradients (slow - local) and slow weights; each rank takes its own Nesterov step on the pair's mean outer
gradient and pulls its slow weights toward the pair's mean. No all-reduce, no barrier."""

import numpy as np
import torch
import torch.distributed as dist

from netsim.training.worker import Exchange, Worker, parser
from netsim.training.quantize import quantize
from netsim.workloads.gossip import neighbours


def main() -> None:
    args = parser(__doc__).parse_args()
    dist.init_process_group("gloo")
    w = Worker(args)
    rounds = -(-args.steps // args.inner_steps) + 1
    pairings = neighbours("random", w.world, rounds, np.random.default_rng(args.seed))
    slow = w.vector().clone()
    momentum = torch.zeros_like(slow)
    exchanges = []
    for t in range(1, args.steps + 1):
        w.train_step(t)
        if t % args.inner_steps == 0:
            r = t // args.inner_steps
            mine = [slow - w.vector(), slow]
            peer = pairings[r - 1][w.rank]  # (a list: empty for the one sitting out an odd count)
            exchanges.append(Exchange(mine, args.exchange, peer, peer, tag=r))
            mine = [quantize(v, args.exchange) for v in mine]  # what the peer decodes of them
            if peer:
                their = exchanges[-1].wait()[0]
                delta, pair_slow = (mine[0] + their[0]) / 2, (mine[1] + their[1]) / 2
            else:
                delta, pair_slow = mine
            momentum = args.outer_momentum * momentum + delta
            update = delta + args.outer_momentum * momentum
            slow = slow - args.outer_lr * update - args.pull * (slow - pair_slow)
            w.load(slow)
        w.done(t)
    for ex in exchanges:
        ex.finish()
    w.write_log()


if __name__ == "__main__":
    main()

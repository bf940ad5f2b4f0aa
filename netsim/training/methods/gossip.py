"""D-SGD (gossip): every H steps each rank averages its parameters with what its neighbours of the round
send it (ring: both neighbours; exponential: one peer 2^k ahead; random: a fresh random matching). With
--final-merge, one all-reduce of the parameters at the end, and every rank evaluates the merged model."""

import numpy as np
import torch
import torch.distributed as dist

from netsim.training.outer import average
from netsim.training.worker import Exchange, Mean, Worker, parser
from netsim.workloads.gossip import neighbours


def main() -> None:
    args = parser(__doc__).parse_args()
    dist.init_process_group("gloo")
    w = Worker(args)
    rounds = -(-args.steps // args.inner_steps) + 1
    plan = neighbours(args.graph, w.world, rounds, np.random.default_rng(args.seed))
    exchanges = []
    for t in range(1, args.steps + 1):
        w.train_step(t)
        if t % args.inner_steps == 0:
            r = t // args.inner_steps - 1
            senders = [s for s in range(w.world) if w.rank in plan[r][s]]
            local = w.vector()
            exchanges.append(Exchange([local], args.exchange, plan[r][w.rank], senders, tag=r))
            received = [vectors[0] for vectors in exchanges[-1].wait()]
            if senders:
                w.load(average([local] + received))
        w.done(t)
    if args.final_merge:
        w.load(Mean(w.vector(), args.exchange).wait())
        with torch.no_grad():
            w.done(args.steps + 1, float(w.model.loss(w.shard.next()).item()))
    for ex in exchanges:
        ex.finish()
    w.write_log()


if __name__ == "__main__":
    main()

"""Recovery without checkpoints (CheckFree) against checkpoints in storage and in memory, under frequent faults.

CheckFree (Blagoev et al., "All is Not Lost: LLM Recovery without Checkpoints", 2025) rebuilds a failed
pipeline stage from the average of its two neighbouring stages' weights instead of rolling the whole job
back to a checkpoint; training then pays some steps to win back the loss the averaged stage costs. The
paper reports that at low and medium failure rates it beats checkpointing and redundant computation in
wall-clock convergence by over 12%, and more under frequent stage faults.

Two parts:

1. The convergence cost, measured with real PyTorch: netsim's byte-level TinyLM (8 blocks, width 64,
   AdamW 3e-3, batch 16 of 64 bytes of the shipped corpus) is trained for 400 steps; then, in a copy, the
   middle block is replaced by the average of its two neighbours (its optimizer state reset) and both
   copies train on with the same batches. The cost is how many more steps the rebuilt copy needs to
   reach the held-out loss the intact one had at the failure: the iterations CheckFree pays per
   recovery (`checkfree_iterations`), in place of a rollback. Averaged over 3 seeds and 2 failure points.
2. The policies on the same fault stream (`netsim.faults.production`, with the detector): a pipeline job
   of 4 replicas x 8 stages (32 GPUs, 1 s per iteration), GPU faults at an MTBF of 100 hours per GPU
   (about 8 faults a day in the job: churn as on preemptible machines, which CheckFree targets), 7 days:
   checkpoints to storage (every 30 min, written in 60 s, read back in 120 s), in memory (every 5 min,
   5 s, 10 s), and CheckFree (no rollback for the 6 middle stages; a fault in the first or last stage,
   which has a neighbour on one side only, rolls back to the storage checkpoints, which it keeps).

Writes checkfree.txt into results_dir(); exits 1 when a check misses.
Run: python validation/checkfree.py [--quick]     (about 5 minutes on 2 cores; --quick: 1 seed, 2 days)
"""

from __future__ import annotations

import sys
import time

from text_report import publish_checks  # noqa: E402  (a sibling: validation/ is on the path)


def convergence_cost(seed: int, fail_at: int, steps_after: int = 400) -> tuple[int, float, float]:
    """(extra steps, loss of the intact model at the failure, loss of the rebuilt one right after it)."""
    import copy

    import torch

    from netsim.training.data import Shard, corpus_bytes
    from netsim.training.model import ModelConfig, TinyLM

    torch.manual_seed(seed)
    cfg = ModelConfig(layers=8, width=64, heads=4, context=64)
    data = corpus_bytes()
    model = TinyLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train = Shard(data, 0, 2, cfg.context, 16, seed)
    held = Shard(data, 1, 2, cfg.context, 64, seed)
    evaluation = [held.next() for _ in range(4)]

    def loss_of(m) -> float:
        with torch.no_grad():
            return float(sum(m.loss(b) for b in evaluation) / len(evaluation))

    def step(m, o, batch) -> None:
        o.zero_grad()
        m.loss(batch).backward()
        o.step()

    for _ in range(fail_at):
        step(model, opt, train.next())
    target = loss_of(model)
    rebuilt = copy.deepcopy(model)
    mid = cfg.layers // 2
    with torch.no_grad():  # CheckFree: the lost stage <- the average of its neighbours
        for p, a, b in zip(rebuilt.blocks[mid].parameters(), rebuilt.blocks[mid - 1].parameters(),
                           rebuilt.blocks[mid + 1].parameters()):
            p.copy_((a + b) / 2)
    opt2 = torch.optim.AdamW(rebuilt.parameters(), lr=3e-3)
    opt2.load_state_dict(opt.state_dict())
    for p in rebuilt.blocks[mid].parameters():  # the rebuilt stage starts its optimizer afresh
        opt2.state[p] = {}
    hit = loss_of(rebuilt)
    for s in range(1, steps_after + 1):
        step(rebuilt, opt2, train.next())
        if loss_of(rebuilt) <= target:
            return s, target, hit
    return steps_after, target, hit


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    t0 = time.perf_counter()
    lines = ["CheckFree: rebuilding a failed stage from its neighbours against checkpoint restarts", "",
             "1. Convergence cost of a rebuilt middle stage (TinyLM, 8 blocks, real PyTorch):"]
    costs = []
    for seed in range(1 if quick else 3):
        for fail_at in (200, 400):
            extra, target, hit = convergence_cost(seed, fail_at)
            costs.append(extra)
            lines.append(f"   seed {seed}, failure at step {fail_at}: held-out loss {target:.3f} -> {hit:.3f} right "
                         f"after the rebuild; back to {target:.3f} after {extra} steps")
    cost = round(sum(costs) / len(costs))
    lines.append(f"   mean: {cost} steps per recovery (checkfree_iterations)")

    from netsim.faults.iteration import IterationCache, State
    from netsim.faults.production import fault_sources, production_study
    from netsim.faults.spec import JobSpec, RecoveryConfig
    from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

    topo = leaf_spine(LeafSpineSpec(leaves=4, spines=2, hosts_per_leaf=8, spine_bandwidth=50e9, spine_latency=1e-6,
                                    host=HostSpec(nic_bandwidth=50e9, nic_latency=1e-6)))
    job = JobSpec(replicas=4, tp=1, compute_s=1.0, dp_bytes=2 * 10**9, pp=8, pp_bytes=32 * 2**20, microbatches=8,
                  checkpoint_every=1)
    days = 2.0 if quick else 7.0
    t_iter = IterationCache(topo, job)(State(tuple(range(job.replicas)))).time

    def every(seconds: float) -> int:  # a checkpoint interval in iterations
        return max(1, round(seconds / t_iter))

    storage = dict(restart_s=120.0, checkpoint_write_s=60.0, checkpoint_load_s=120.0, checkpoint_every=every(1800))
    variants = {"storage": RecoveryConfig(policy="restart", **storage),
                "memory": RecoveryConfig(policy="restart", restart_s=120.0, checkpoint_write_s=5.0, checkpoint_load_s=10.0,
                                         checkpoint_every=every(300)),
                "checkfree": RecoveryConfig(policy="checkfree", checkfree_iterations=cost, **storage)}
    result = production_study(topo, job, days, seed=1, modes=(), variants=variants,
                              sources=fault_sources({"gpu": 100.0}, scale=1.0))
    lines += ["", f"2. A pipeline job of 4 replicas x 8 stages (iteration {t_iter:.3f} s), {days:g} days of training, "
              "GPU MTBF 100 h (and the other production sources):",
              f"   {'policy':<10}{'faults':>7}{'wall-clock':>12}{'error-induced':>15}{'checkpoint writes':>19}"
              f"{'lost work':>11}{'restart':>9}"]
    wall = {}
    for row in result.downtime.iter_rows(named=True):
        mode = row["mode"]
        struck = int(result.runs.filter(result.runs["mode"] == mode)["faults"].sum())
        wall[mode] = row["wall_s"]
        lines.append(f"   {mode:<10}{struck:>7}{row['wall_s'] / 86400:>10.2f} d{100 * row['downtime_share']:>14.2f}%"
                     f"{100 * row['checkpoint_share']:>18.2f}%{100 * row['lost_work_share']:>10.2f}%"
                     f"{100 * row['restart_share']:>8.2f}%")
    speedup = wall["storage"] / wall["checkfree"]
    lines.append(f"   CheckFree finishes the same training {100 * (speedup - 1):.1f}% sooner than storage checkpoints, "
                 f"{100 * (wall['memory'] / wall['checkfree'] - 1):.1f}% sooner than in-memory ones")
    checks = [(f"a rebuilt stage costs steps, fewer than the 400 run after it ({cost})", 0 < cost < 400),
              (f"CheckFree beats storage checkpoints under frequent faults ({speedup:.3f}x)", speedup > 1.0)]
    return publish_checks("checkfree" + ("_quick" if quick else ""), lines, checks, t0)


if __name__ == "__main__":
    raise SystemExit(main())

"""Context-parallel attention computed with real tensors by following a schedule's messages.

`attend(schedule, q, k, v)` runs an `AttentionSchedule` (netsim.workloads.attention) on real torch
tensors: every rank starts with the Q, K, V chunks it owns, a `Send` copies data items from one rank to
another, a `Compute` may only use items its rank holds (otherwise the schedule is wrong and this raises),
each block returns its partial output O and log-sum-exp (fp32), and every query chunk's owner merges the
partials it received, in the order they arrived:

    lse = log(exp(lse_a) + exp(lse_b));   O = exp(lse_a - lse) O_a + exp(lse_b - lse) O_b

The merged output must equal full attention (`torch.nn.functional.scaled_dot_product_attention`): the
test that the message pattern the timing model simulates is one that computes attention.
"""

from __future__ import annotations

import math

import torch

from netsim.workloads.attention import DIAGONAL, AttentionSchedule, Compute, Send


def block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, diagonal: bool
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of query chunk q (b, s, H, d) to key/value chunk k, v (b, s, H_kv, d): the output
    (b, s, H, d) and the log-sum-exp of the scores (b, H, s), fp32. `diagonal`: the two chunks are the
    same tokens and each query sees the keys up to itself."""
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), k.float()) / math.sqrt(q.shape[-1])
    if diagonal:
        s = q.shape[1]
        mask = torch.ones(s, s, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.einsum("bhqk,bkhd->bqhd", torch.exp(scores - lse.unsqueeze(-1)), v.float())
    return out, lse


def merge(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two partial outputs of the same queries over disjoint keys, merged by their log-sum-exp (fp32)."""
    (oa, la), (ob, lb) = a, b
    lse = torch.logaddexp(la, lb)
    wa = torch.exp(la - lse).transpose(1, 2).unsqueeze(-1)  # (b, s, H, 1)
    wb = torch.exp(lb - lse).transpose(1, 2).unsqueeze(-1)
    return wa * oa + wb * ob, lse


def attend(sched: AttentionSchedule, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Full-sequence attention output (b, S, H, d) computed the way `sched` moves the data: its forward
    tasks (build the schedule without `backward`; the backward's items are not tensors here)."""
    t = sched.chunk_tokens
    chunks = len(sched.owner)
    if q.shape[1] != t * chunks:
        raise ValueError(f"the schedule covers {t * chunks} tokens, the tensors {q.shape[1]}")
    held: list[dict] = [{} for _ in range(sched.ranks)]
    for c, r in enumerate(sched.owner):
        held[r][("q", c)] = q[:, c * t:(c + 1) * t]
        held[r][("kv", c)] = (k[:, c * t:(c + 1) * t], v[:, c * t:(c + 1) * t])
    result: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    merged: set = set()

    def arrive(rank: int, item: tuple, value) -> None:
        held[rank][item] = value
        if item[0] == "o" and sched.owner[item[1]] == rank and item not in merged:
            merged.add(item)
            c = item[1]
            result[c] = value if c not in result else merge(result[c], value)

    for i, task in enumerate(sched.tasks):
        if isinstance(task, Compute):
            if task.phase != "forward":
                continue
            mine = held[task.rank]
            for qc, kc, mask in task.pairs:
                if ("q", qc) not in mine or ("kv", kc) not in mine:
                    raise ValueError(f"{sched.scheme}: task {i} at rank {task.rank} uses chunk data it does not hold")
                kk, vv = mine[("kv", kc)]
                arrive(task.rank, ("o", qc, kc, "f"), block_attention(mine[("q", qc)], kk, vv, mask == DIAGONAL))
        elif isinstance(task, Send) and task.kind in ("q", "kv", "out"):
            for item in task.items:
                if item not in held[task.src]:
                    raise ValueError(f"{sched.scheme}: task {i} sends {item} that rank {task.src} does not hold")
                arrive(task.dst, item, held[task.src][item])
    missing = [c for c in range(chunks) if c not in result]
    if missing:
        raise ValueError(f"{sched.scheme}: no output reached the owner of chunks {missing}")
    return torch.cat([result[c][0] for c in range(chunks)], dim=1)

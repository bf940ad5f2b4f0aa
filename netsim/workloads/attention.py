"""Context-parallel attention: one attention layer's sequence split over N GPUs, and the messages each
scheme needs — Ring Attention (basic and zigzag), TokenRing (non-causal and zigzag causal), Ulysses.

The sequence of S tokens is cut into equal chunks (N for the basic layout, 2N for zigzag: rank r holds
chunks r and 2N-1-r, so every rank has the same causal work). A schedule is a list of tasks per rank
and loop step, as data flow:

- `Compute`: attention of some query chunks against some key/value chunks at one rank (pairs (q, k)
  with a mask: full, or causal within the diagonal chunk), making one partial output per pair
  (output O and log-sum-exp, merged at the query's owner); FLOPs 4 b H s_q s_k d (half on the
  diagonal), x 2.5 for the backward;
- `Send`: data items (a query chunk, a key/value chunk, partial outputs, gradients) from one rank to
  another, with their exact bytes.

Each task needs data items and makes or moves some; `dependencies()` derives, from the order of the
list, which task produced every item a task needs — so the same description drives the timing on the
simulated network (`attention_program` builds a `netsim.program.Program` from it, and `run_attention`
runs that: one compute stream per rank, sends as soon as their data exists, concurrent on the fabric) and the numerical check with real tensors (`netsim.training.attention`,
which computes attention by following the schedule's messages and merges, and must equal full
attention).

Ring Attention (basic, non-causal, N = 4): K and V travel one hop forward per step, Q stays::

    step 0      step 1      step 2      step 3
    r0: Q0.KV0  Q0.KV3      Q0.KV2      Q0.KV1        send KV(held) -> r+1 after each step but the last
    r1: Q1.KV1  Q1.KV0      Q1.KV3      Q1.KV2        (one direction of every ring link)

TokenRing (non-causal): Q travels forward, each block's partial output returns straight to its owner::

    step j:  r holds Q(r-j) -> computes Q(r-j).KV(r) -> sends Q(r-j) to r+1 and, one step later,
             the partial O, lse of Q(r-j) back to r-j (distance j); the last ones after the loop.

Ulysses: all-to-all of Q, K, V (re-sharded from sequence to heads), full attention over S for H/N heads
per rank, all-to-all of the output back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from netsim.errors import ConfigError
from netsim.program import Node, Program, run_program
from netsim.workloads.limits import integer, number

DTYPES = {"bf16": 2, "fp16": 2, "fp32": 4}
LSE_BYTES = 4  # log-sum-exp (and softmax statistics) are kept in fp32
BACKWARD_FLOPS = 2.5  # backward FLOPs per forward FLOP (recompute of the scores, then dQ, dK, dV)
FULL, DIAGONAL = "full", "diagonal"


@dataclass(frozen=True)
class AttentionShape:
    """One attention layer: `batch` sequences of `seq` tokens, `heads` query heads, `kv_heads` key/value
    heads (GQA / MQA when fewer), `head_dim`, values in `dtype`, causal or not."""

    seq: int
    heads: int
    head_dim: int
    kv_heads: int | None = None
    batch: int = 1
    dtype: str = "bf16"
    causal: bool = False

    def __post_init__(self) -> None:
        for name in ("seq", "heads", "head_dim", "batch"):
            integer(getattr(self, name), name, lo=1)
        if self.kv_heads is None:
            object.__setattr__(self, "kv_heads", self.heads)
        integer(self.kv_heads, "kv_heads", lo=1)
        if self.heads % self.kv_heads:
            raise ConfigError(f"query heads ({self.heads}) must be a multiple of the key/value heads "
                              f"({self.kv_heads})", field="kv_heads")
        if self.dtype not in DTYPES:
            raise ConfigError(f"expected one of {', '.join(DTYPES)}, got {self.dtype!r}", field="dtype")

    @property
    def element(self) -> int:
        return DTYPES[self.dtype]

    def q_bytes(self, tokens: int) -> int:
        """Queries (or outputs, or their gradients) of `tokens` tokens: b x tokens x H x d elements."""
        return self.batch * tokens * self.heads * self.head_dim * self.element

    def kv_bytes(self, tokens: int) -> int:
        """Keys and values of `tokens` tokens: 2 x b x tokens x H_kv x d elements."""
        return 2 * self.batch * tokens * self.kv_heads * self.head_dim * self.element

    def lse_bytes(self, tokens: int) -> int:
        """Log-sum-exp of `tokens` query tokens: b x H x tokens in fp32."""
        return self.batch * self.heads * tokens * LSE_BYTES

    def out_bytes(self, tokens: int) -> int:
        """A partial output and its log-sum-exp."""
        return self.q_bytes(tokens) + self.lse_bytes(tokens)

    def flops(self, q_tokens: int, kv_tokens: int, diagonal: bool = False) -> float:
        """Forward FLOPs of one block: Q K^T and P V, 2 x 2 b H s_q s_k d (half of it on a causal diagonal)."""
        full = 4.0 * self.batch * self.heads * q_tokens * kv_tokens * self.head_dim
        return full / 2 if diagonal else full


@dataclass(frozen=True)
class Device:
    """Compute speed: a block of F FLOPs takes F / (tflops x 1e12 x efficiency) seconds."""

    tflops: float = 125.0  # A10 class, dense bf16
    efficiency: float = 0.5

    def __post_init__(self) -> None:
        number(self.tflops, "tflops", lo=0, lo_open=True, hi=1e6)
        number(self.efficiency, "efficiency", lo=0, lo_open=True, hi=1)

    def seconds(self, flops: float) -> float:
        return flops / (self.tflops * 1e12 * self.efficiency)


Item = tuple  # a data item: ("q", chunk), ("kv", chunk), ("o", q chunk, k chunk), ...


@dataclass(frozen=True)
class Compute:
    """Attention of the pairs (q chunk, k chunk, mask) at `rank`, at loop step `step`."""

    rank: int
    step: int
    pairs: tuple[tuple[int, int, str], ...]
    needs: tuple[Item, ...]
    makes: tuple[Item, ...]
    flops: float
    phase: str = "forward"


@dataclass(frozen=True)
class Send:
    """`items` from `src` to `dst` (`kind` names the lane: q, kv, out, ...), `nbytes` on the wire."""

    src: int
    dst: int
    step: int
    kind: str
    items: tuple[Item, ...]
    nbytes: int


@dataclass(frozen=True)
class AttentionSchedule:
    """The tasks of one scheme in order; `owner[c]` is the rank holding chunk c's Q, K and V at the start
    (`chunk_tokens` tokens each); `initial` lists other items a rank holds at the start."""

    scheme: str
    ranks: int
    shape: AttentionShape
    owner: tuple[int, ...]
    chunk_tokens: int
    tasks: tuple[Compute | Send, ...]
    steps: int
    initial: dict[int, tuple[Item, ...]] = field(default_factory=dict)

    def held_at_start(self, rank: int) -> set[Item]:
        items = {("q", c) for c, r in enumerate(self.owner) if r == rank}
        items |= {("kv", c) for c, r in enumerate(self.owner) if r == rank}
        return items | set(self.initial.get(rank, ()))

    def sends(self) -> list[Send]:
        return [t for t in self.tasks if isinstance(t, Send)]

    def computes(self) -> list[Compute]:
        return [t for t in self.tasks if isinstance(t, Compute)]

    def dependencies(self) -> list[list[int]]:
        """For each task, the tasks it waits for.

        Data: the tasks that produced the items it needs at its rank (in list order: an item a task needs
        must be held at the start, made by an earlier compute there, or delivered by an earlier send); a
        schedule that uses an item its rank never gets is a ValueError.
        Steps: implementations run a loop per rank — post the step's sends and receives, compute, wait
        for all of them — so a rank enters step s once everything it took part in at its previous step
        (its blocks, its sends, the sends to it) is done; a block waits for its rank to enter its step,
        and a send for both its sender and its receiver (a send completes only against a posted
        receive)."""
        producer: dict[tuple[int, Item], int | None] = {}
        for r in range(self.ranks):
            for item in self.held_at_start(r):
                producer[(r, item)] = None
        deps: list[list[int]] = []
        for i, task in enumerate(self.tasks):
            rank = task.rank if isinstance(task, Compute) else task.src
            needed = task.needs if isinstance(task, Compute) else task.items
            mine = []
            for item in needed:
                if (rank, item) not in producer:
                    raise ValueError(f"{self.scheme}: task {i} at rank {rank} needs {item} it never receives")
                p = producer[(rank, item)]
                if p is not None and p not in mine:
                    mine.append(p)
            deps.append(mine)
            if isinstance(task, Compute):
                for item in task.makes:
                    producer[(task.rank, item)] = i
            else:
                for item in task.items:
                    producer[(task.dst, item)] = i
        by_rank_step: dict[tuple[int, int], list[int]] = {}
        for i, task in enumerate(self.tasks):
            for r in _ranks_of(task):
                by_rank_step.setdefault((r, task.step), []).append(i)
        steps_of: dict[int, list[int]] = {}
        for r, step in sorted(by_rank_step):
            steps_of.setdefault(r, []).append(step)
        previous = {(r, steps[k]): steps[k - 1] for r, steps in steps_of.items() for k in range(1, len(steps))}
        for i, task in enumerate(self.tasks):
            mine = set(deps[i])
            for r in _ranks_of(task):
                before = previous.get((r, task.step))
                if before is not None:
                    for j in by_rank_step[(r, before)]:
                        if j not in mine:
                            mine.add(j)
                            deps[i].append(j)
        return deps


def _ranks_of(task: Compute | Send) -> tuple[int, ...]:
    return (task.rank,) if isinstance(task, Compute) else (task.src, task.dst)


# ---- schemes ----------------------------------------------------------------------------------------


def _pairs(shape: AttentionShape, q_chunks, k_chunks, order: Callable[[int], int]) -> list[tuple[int, int, str]]:
    """The (q, k, mask) pairs a block must compute: all of them non-causal; causal: k before q in the
    sequence (full) or k == q (diagonal); `order` maps a chunk to its position in the sequence."""
    out = []
    for q in q_chunks:
        for k in k_chunks:
            if not shape.causal or order(k) < order(q):
                out.append((q, k, FULL))
            elif k == q:
                out.append((q, k, DIAGONAL))
    return out


def _compute(shape: AttentionShape, rank: int, step: int, pairs, tokens: int, phase: str = "forward") -> Compute:
    flops = sum(shape.flops(tokens, tokens, m == DIAGONAL) for _, _, m in pairs)
    if phase == "backward":
        flops *= BACKWARD_FLOPS
    needs = tuple(dict.fromkeys([("q", q) for q, _, _ in pairs] + [("kv", k) for _, k, _ in pairs]))
    makes = tuple(("o", q, k, "f") for q, k, _ in pairs)
    return Compute(rank, step, tuple(pairs), needs, makes, flops, phase)


def _layout(n: int, zigzag: bool) -> tuple[list[list[int]], tuple[int, ...]]:
    """Chunks per rank and the owner of each chunk: rank r holds chunk r, or chunks r and 2N-1-r."""
    if not zigzag:
        return [[r] for r in range(n)], tuple(range(n))
    chunks = [[r, 2 * n - 1 - r] for r in range(n)]
    owner = [0] * (2 * n)
    for r, cs in enumerate(chunks):
        for c in cs:
            owner[c] = r
    return chunks, tuple(owner)


def _outputs_home(shape: AttentionShape, chunks: list[list[int]], rank: int) -> tuple[Item, ...]:
    """Every partial output of `rank`'s query chunks (what its forward result is merged from)."""
    return tuple(("o", q, k, "f") for q in chunks[rank] for k in range(len(chunks) * len(chunks[0]))
                 if _pairs(shape, [q], [k], lambda c: c))


def _begin_backward(shape: AttentionShape, chunks: list[list[int]], rank: int, step: int, makes) -> Compute:
    """A zero-cost node: rank's backward starts once its forward output is complete (and its compute
    stream has run the forward blocks); it makes the items the backward starts from."""
    return Compute(rank, step, (), _outputs_home(shape, chunks, rank), tuple(makes), 0.0, "backward")


def ring_attention(shape: AttentionShape, n: int, *, zigzag: bool = False, backward: bool = False
                   ) -> AttentionSchedule:
    """Ring Attention: rank r's K, V go one hop forward (to r + 1) each step, N - 1 sends; at step j rank
    r attends its queries to the K, V of rank r - j. Causal with the basic layout, blocks above the
    diagonal are skipped (rank 0 idles while rank N - 1 works); zigzag balances them. With `backward`,
    the backward pass follows: K, V travel the ring again, with their gradient accumulators dK, dV on a
    second ring (N sends: the last brings them home)."""
    chunks, owner = _layout(n, zigzag)
    tokens = shape.seq // len(owner)
    tasks: list = []
    holds = [list(chunks[r]) for r in range(n)]  # the K, V chunks each rank holds at this step
    for j in range(n):
        for r in range(n):
            pairs = _pairs(shape, chunks[r], holds[r], lambda c: c)
            if pairs:
                tasks.append(_compute(shape, r, j, pairs, tokens))
        if j < n - 1:
            for r in range(n):
                items = tuple(("kv", c) for c in holds[r])
                tasks.append(Send(r, (r + 1) % n, j, "kv", items, shape.kv_bytes(tokens * len(items))))
            holds = [holds[(r - 1) % n] for r in range(n)]
    steps = n
    if backward:
        for r in range(n):
            tasks.append(_begin_backward(shape, chunks, r, n, [("kvb", c) for c in chunks[r]] +
                                         [("dkv", c, -1) for c in chunks[r]]))
        holds = [list(chunks[r]) for r in range(n)]
        for j in range(n):
            for r in range(n):
                pairs = _pairs(shape, chunks[r], holds[r], lambda c: c)
                flops = sum(shape.flops(tokens, tokens, m == DIAGONAL) for _, _, m in pairs) * BACKWARD_FLOPS
                needs = tuple(("kvb", k) for k in holds[r]) + tuple(("dkv", k, j - 1) for k in holds[r])
                tasks.append(Compute(r, n + j, tuple(pairs), needs, tuple(("dkv", k, j) for k in holds[r]), flops,
                                     "backward"))
            for r in range(n):
                if j < n - 1:
                    kv = tuple(("kvb", c) for c in holds[r])
                    tasks.append(Send(r, (r + 1) % n, n + j, "kv", kv, shape.kv_bytes(tokens * len(kv))))
                dkv = tuple(("dkv", c, j) for c in holds[r])
                tasks.append(Send(r, (r + 1) % n, n + j, "dkv", dkv, shape.kv_bytes(tokens * len(dkv))))
            holds = [holds[(r - 1) % n] for r in range(n)]
        steps = 2 * n
    return AttentionSchedule("zigzag_ring" if zigzag else "ring", n, shape, owner, tokens, tuple(tasks), steps)


def tokenring(shape: AttentionShape, n: int, *, backward: bool = False) -> AttentionSchedule:
    """TokenRing: queries travel one hop per step and K, V never move; each block's partial output (O and
    its fp32 log-sum-exp) returns directly to the queries' owner one step later.

    - Non-causal (basic layout): Q goes to r + 1, so at step j rank r holds Q(r - j); the output of step
      j - 1 goes back to r - j + 1 (distance j - 1, opposite to Q); after the loop the outputs of the
      last step go one hop forward to r + 1.
    - Causal (zigzag layout, rank r holds chunks r and 2N-1-r of 2N): Q goes to r - 1, so at step j rank
      r holds Q of rank o = r + j. If o > r the whole Q (2 chunks) attends to r's first K, V chunk; if it
      wrapped (o < r) only Q's late chunk attends to both: each step is 2 chunk-blocks on every rank.
      A rank forwards only the Q chunks later holders still need (the late chunk alone once Q has
      wrapped; rank 0 sends only its late chunk), and returns full or half outputs to match.

    With `backward`, the mirror image: Q with dO and the softmax statistics (lse and D = rowsum(dO * O),
    fp32) travel as Q did, each block's partial dQ returns to its owner as the outputs did, and each rank
    accumulates dK, dV of its own K, V locally. (The public TokenRing code has the forward only; this is
    the pattern its forward implies: K, V stay put, everything on the query side moves.)"""
    chunks, owner = _layout(n, shape.causal)
    tokens = shape.seq // len(owner)
    d = -1 if shape.causal else 1  # the direction Q travels
    tasks: list = []
    phases = [("forward", 0, "q", "o")] + ([("backward", n + 1, "qg", "dq")] if backward else [])
    for phase, base, q_kind, made in phases:
        holder_pairs = {}  # (holder, owner of Q) -> pairs
        for o in range(n):
            for r in range(n):
                holder_pairs[(r, o)] = _pairs(shape, chunks[o], chunks[r], lambda c: c)
        if phase == "backward":
            for r in range(n):
                tasks.append(_begin_backward(shape, chunks, r, base, [("qg", c) for c in chunks[r]]))
        factor = BACKWARD_FLOPS if phase == "backward" else 1.0
        for j in range(n + 1):
            for r in range(n):
                o = (r - d * j) % n  # whose Q rank r holds at step j
                if j < n:
                    pairs = holder_pairs[(r, o)]
                    if pairs:
                        flops = sum(shape.flops(tokens, tokens, m == DIAGONAL) for _, _, m in pairs) * factor
                        needs = tuple(dict.fromkeys([(q_kind, q) for q, _, _ in pairs] + [("kv", k) for _, k, _ in pairs]))
                        tasks.append(Compute(r, base + j, tuple(pairs), needs,
                                             tuple((made, q, k, phase[0]) for q, k, _ in pairs), flops, phase))
                if j < n - 1:  # forward the Q chunks later holders need
                    later = {q for k in range(j + 1, n) for q, _, _ in holder_pairs[((r + d * (k - j)) % n, o)]}
                    qs = tuple(c for c in chunks[o] if c in later)
                    if qs:
                        per = (shape.q_bytes(tokens) if phase == "forward"
                               else 2 * shape.q_bytes(tokens) + 2 * shape.lse_bytes(tokens))  # Q, dO, lse, D
                        tasks.append(Send(r, (r + d) % n, base + j, q_kind, tuple((q_kind, q) for q in qs),
                                          per * len(qs)))
                if j >= 1:  # the output of step j - 1 back to its owner
                    prev = (r - d * (j - 1)) % n
                    pairs = holder_pairs[(r, prev)]
                    if prev != r and pairs:
                        qs = sorted({q for q, _, _ in pairs})
                        per = shape.out_bytes(tokens) if phase == "forward" else shape.q_bytes(tokens)
                        tasks.append(Send(r, prev, base + j, "out", tuple((made, q, k, phase[0]) for q, k, _ in pairs),
                                          per * len(qs)))
    steps = (n + 1) * len(phases)
    return AttentionSchedule("tokenring", n, shape, owner, tokens, tuple(tasks), steps)


def ulysses(shape: AttentionShape, n: int, *, backward: bool = False) -> AttentionSchedule:
    """Ulysses (DeepSpeed sequence parallelism): an all-to-all turns sequence shards into head shards —
    rank r sends rank p its S/N tokens of p's H/N query heads and of the key/value heads those query heads
    use (H_kv/N when N divides H_kv, else the heads their group spans; one when they share a head) — then each rank attends over the whole sequence
    for its heads, and a second all-to-all returns the outputs. `backward`: dO, Q, K, V, O (and lse) in,
    a backward block, dQ, dK, dV out."""
    if shape.heads % n:
        raise ConfigError(f"Ulysses splits the {shape.heads} query heads over {n} GPUs: needs a multiple",
                          field="heads")
    tokens = shape.seq // n
    group = shape.heads // shape.kv_heads  # query heads per KV head
    q_per_rank = shape.heads // n
    kv_heads = -(-q_per_rank // group) if q_per_rank >= group else 1  # the KV heads its query heads span
    piece_q = shape.batch * tokens * (shape.heads // n) * shape.head_dim * shape.element
    piece_kv = 2 * shape.batch * tokens * kv_heads * shape.head_dim * shape.element
    piece_lse = shape.batch * (shape.heads // n) * tokens * LSE_BYTES
    flops = shape.flops(shape.seq, shape.seq) * (0.5 if shape.causal else 1.0) / n
    tasks: list = []
    phases = [("forward", 0, piece_q + piece_kv, piece_q)]
    if backward:  # in: Q, K, V, O, dO and lse; out: dQ, dK, dV
        phases.append(("backward", 3, 3 * piece_q + piece_kv + piece_lse, piece_q + piece_kv))
    for phase, base, inbound, outbound in phases:
        tag = phase[0]
        if phase == "backward":  # a rank's backward starts from its complete forward output
            for r in range(n):
                tasks.append(Compute(r, base, (), tuple(("outf", p, r) for p in range(n)),
                                     tuple(("inb", r, p) for p in range(n)), 0.0, phase))
        for r in range(n):
            for p in range(n):
                if p != r:
                    tasks.append(Send(r, p, base, "a2a", ((f"in{tag}", r, p),), inbound))
        for p in range(n):
            needs = tuple((f"in{tag}", r, p) for r in range(n))
            work = flops * (BACKWARD_FLOPS if phase == "backward" else 1.0)
            tasks.append(Compute(p, base + 1, (), needs, tuple((f"out{tag}", p, r) for r in range(n)), work, phase))
        for p in range(n):
            for r in range(n):
                if p != r:
                    tasks.append(Send(p, r, base + 2, "a2a", ((f"out{tag}", p, r),), outbound))
    initial = {r: tuple(("inf", r, p) for p in range(n)) for r in range(n)}
    return AttentionSchedule("ulysses", n, shape, tuple(range(n)), tokens, tuple(tasks), 3 * len(phases), initial)


@dataclass(frozen=True)
class Scheme:
    name: str
    help: str
    build: Callable[..., AttentionSchedule]


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("ring", "Ring Attention, basic layout: K, V one hop forward per step (causal: unbalanced)",
           lambda shape, n, backward=False: ring_attention(shape, n, backward=backward)),
    Scheme("zigzag_ring", "Ring Attention, zigzag layout (rank r holds chunks r and 2N-1-r): balanced causal work",
           lambda shape, n, backward=False: ring_attention(shape, n, zigzag=True, backward=backward)),
    Scheme("tokenring", "TokenRing: Q one hop forward, partial outputs straight back to their owner (both "
                        "directions busy)", lambda shape, n, backward=False: tokenring(shape, n, backward=backward)),
    Scheme("ulysses", "Ulysses: all-to-all from sequence to head shards, local attention, all-to-all back",
           lambda shape, n, backward=False: ulysses(shape, n, backward=backward)),
)}
"""The one registry of attention schemes: name, one line of help, builder(shape, n, backward=...)."""


def schedule(scheme: str, shape: AttentionShape, n: int, *, backward: bool = False) -> AttentionSchedule:
    """The schedule of `scheme` for `shape` on `n` GPUs (checks that the sequence splits evenly)."""
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})", field="schemes")
    integer(n, "gpus", lo=2, hi=1024)
    pieces = 2 * n if scheme == "zigzag_ring" or (scheme == "tokenring" and shape.causal) else n
    if shape.seq % pieces:
        raise ConfigError(f"{scheme} on {n} GPUs cuts the sequence into {pieces} equal chunks: {shape.seq} "
                          f"tokens do not divide", field="seq")
    return SCHEMES[scheme].build(shape, n, backward=backward)


# ---- timing on the simulated network -----------------------------------------------------------------


@dataclass(frozen=True)
class TaskRecord:
    rank: int  # the computing rank, or the sender
    lane: str  # "compute" or "send-<kind>"
    step: int
    start: float
    end: float
    nbytes: int
    peer: int  # the receiver of a send (-1 for compute)


@dataclass(frozen=True)
class AttentionRun:
    """One schedule on the simulated network: makespan, per-rank compute, every task's interval."""

    scheme: str
    ranks: int
    steps: int
    time_s: float
    compute_s: tuple[float, ...]
    records: tuple[TaskRecord, ...]

    @property
    def exposed_comm_s(self) -> float:
        """Time the slowest-computing rank is not computing: makespan - its compute."""
        return self.time_s - max(self.compute_s)

    @property
    def bytes_sent(self) -> int:
        return sum(r.nbytes for r in self.records if r.lane != "compute")

    def step_spans(self) -> tuple[float, ...]:
        """Per loop step, from its first task's start to its last task's end over all ranks (seconds): what a
        profiler timeline shows as the step's round, its blocks and the messages they wait for."""
        spans: dict[int, tuple[float, float]] = {}
        for r in self.records:
            a, b = spans.get(r.step, (r.start, r.end))
            spans[r.step] = (min(a, r.start), max(b, r.end))
        return tuple(b - a for _, (a, b) in sorted(spans.items()))


def attention_program(sched: AttentionSchedule, device: Device) -> Program:
    """The schedule as a `Program` of its ranks: each `Compute` a compute node (its FLOPs on `device`)
    after the rank's previous block (one compute stream per rank, in schedule order); each `Send` a send at
    its sender (on a stream per kind and receiver: Q and outputs travel on separate streams) and the
    matching receive at its receiver; every task waits for the tasks `AttentionSchedule.dependencies`
    names, each at the ranks it shares with them. Run with rendezvous sends (a send completes only against
    a posted receive). Node names are ``phase@step`` (compute) and ``kind@step`` (send, receive); the tag
    of a message is its kind's index in `send_kinds(sched)`."""
    deps = sched.dependencies()
    kinds = send_kinds(sched)
    nodes: dict[int, list[Node]] = {r: [] for r in range(sched.ranks)}
    node_of: dict[tuple[int, int], int] = {}  # (task, rank) -> that rank's node for the task
    previous: dict[int, int] = {}

    def add(rank: int, task: int, **kw) -> None:
        node_of[(task, rank)] = len(nodes[rank])
        nodes[rank].append(Node(rank, len(nodes[rank]), **kw))

    for i, t in enumerate(sched.tasks):
        if isinstance(t, Compute):
            mine = [node_of[(j, t.rank)] for j in deps[i]]
            if t.rank in previous and previous[t.rank] not in mine:
                mine.append(previous[t.rank])
            add(t.rank, i, kind="compute", name=f"{t.phase}@{t.step}", duration=device.seconds(t.flops),
                deps=tuple(mine))
            previous[t.rank] = node_of[(i, t.rank)]
        else:
            at = {r: tuple(node_of[(j, r)] for j in deps[i] if (j, r) in node_of) for r in (t.src, t.dst)}
            add(t.src, i, kind="send", name=f"{t.kind}@{t.step}", nbytes=t.nbytes, peer=t.dst, tag=kinds[t.kind],
                deps=at[t.src], stream=f"send-{t.kind}:{t.dst}")
            add(t.dst, i, kind="recv", name=f"{t.kind}@{t.step}", nbytes=t.nbytes, peer=t.src, tag=kinds[t.kind],
                deps=at[t.dst])
    return Program({r: tuple(v) for r, v in nodes.items()}, {}, source=sched.scheme, format="attention")


def send_kinds(sched: AttentionSchedule) -> dict[str, int]:
    """Each send kind of the schedule (q, kv, out, ...) and its message tag."""
    return {kind: i for i, kind in enumerate(sorted({t.kind for t in sched.sends()}))}


def run_attention(sim, nodes, sched: AttentionSchedule, device: Device, *, key: tuple = ("attention",)
                  ) -> Callable[[], AttentionRun]:
    """Start `sched` on `sim` (rank r on node `nodes[r]`) as its `attention_program`, with the program
    executor: each rank has one compute stream running its blocks in schedule order, each as soon as its
    inputs have arrived and its rank entered the block's step; a send leaves once its data exists and both
    ranks entered its step (see `AttentionSchedule.dependencies`); sends of different kinds or receivers run
    concurrently, sharing the fabric (those of one kind to one receiver one after another, on their
    stream), each kind hashing as its own connection (`key + (kind,)`). Returns a function giving the
    `AttentionRun` once the simulation has run.

    >>> from netsim.sim import Simulation
    >>> from netsim.topology import full_mesh
    >>> shape = AttentionShape(seq=4096, heads=8, head_dim=128)
    >>> topo = full_mesh(4, 25e9, 0.0)
    >>> sim = Simulation(topo)
    >>> result = run_attention(sim, topo.gpus, schedule("ring", shape, 4), Device(100, 0.5))
    >>> _ = sim.run()
    >>> round(result().time_s * 1e6, 1)  # 3 K, V hops of 168 us (each longer than a block), the last block
    589.2
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    if len(nodes) != sched.ranks:
        raise ConfigError(f"{sched.ranks} ranks need {sched.ranks} GPUs, got {len(nodes)}", field="gpus")
    program = attention_program(sched, device)
    run = run_program(sim, program, dict(enumerate(nodes.tolist())), sends="rendezvous",
                      tag_keys={tag: key + (kind,) for kind, tag in send_kinds(sched).items()})

    def result() -> AttentionRun:
        if not run.done.triggered:
            raise RuntimeError(f"{sched.scheme}: the schedule did not finish (a task waits on data that never came)")
        rows = run.result().nodes.filter(pl.col("kind") != "recv")
        records = [TaskRecord(r["rank"], "compute" if r["kind"] == "compute" else f"send-{r['name'].split('@')[0]}",
                              int(r["name"].rsplit("@", 1)[1]), r["start_s"] + run.t0, r["end_s"] + run.t0,
                              r["size_B"] if r["kind"] == "send" else 0,
                              -1 if r["kind"] == "compute" else program.nodes[r["rank"]][r["node"]].peer)
                   for r in rows.iter_rows(named=True)]
        compute = rows.filter(pl.col("kind") == "compute").group_by("rank").agg((pl.col("end_s") - pl.col("start_s")).sum())
        per_rank = dict(zip(compute["rank"].to_list(), compute["end_s"].to_list()))
        end = max((r.end for r in records), default=0.0)
        return AttentionRun(sched.scheme, sched.ranks, sched.steps, end,
                            tuple(per_rank.get(r, 0.0) for r in range(sched.ranks)),
                            tuple(sorted(records, key=lambda r: (r.start, r.rank, r.lane))))

    return result

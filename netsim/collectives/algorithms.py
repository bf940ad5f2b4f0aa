"""The collectives (`OPS`), the algorithm registry (op -> name -> `Algorithm`: schedule builder and
one line of help) and `auto`, the NCCL-like choice.

`auto` predicts each candidate's time with the alpha-beta forms below, alpha and B measured
on the communicator (the slowest latency and the narrowest bottleneck between ring
neighbours, plus the network's per-transfer overhead), and picks the fastest, the way
NCCL's tuner compares its algorithms' latency + size / bandwidth models:
  ring all-reduce        2(n-1)(a + S/(nB)); rings (one per NIC rail, c rails): 2(n-1)(a + S/(ncB))
  double binary tree     (2H + C - 1)(a + 2S/(CB)), H = tree height, C chunks in 1..64
                         (per pipeline slot a rank's NIC carries about 2S/C: two children and
                         a parent in the tree where it is interior, a parent in the other)
  ring reduce-scatter / all-gather (n-1)(a + S/(nB)); direct all-to-all a + (n-1)/n S/B
  chain broadcast / reduce (n + C - 2)(a + S/(CB)); tree (H + C - 1)(a + 2S/(CB))
So latency-bound sizes go to the tree (log n hops) and bandwidth-bound sizes to the ring.
A choice is named after the algorithm and, when it runs in C > 1 chunks, C: `treex16` is the
double tree pipelined in 16 chunks, `ringx8` (broadcast, reduce) the chain in 8 (`netsim bench`
shows this name in its `algo` column; result tables keep `algo` and `chunks` apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from netsim.collectives.direct import direct, dissemination
from netsim.collectives.halving_doubling import halving_doubling
from netsim.collectives.hierarchical import hierarchical
from netsim.collectives.request import Request
from netsim.collectives.ring import chain, channel_orders, ring, ring_bidirectional, ring_channels, ring_rounds
from netsim.collectives.collnet import collnet, collnet_count
from netsim.collectives.nvls import nvls, nvls_count
from netsim.collectives.schedule import Schedule
from netsim.collectives.tree import binary_tree, nccl_tree, nccl_tree_count, tree
from netsim.topology import PathCache

Builder = Callable[[Request], Schedule]


Counter = Callable[[Request], int]


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: what builds its step schedule for a call, one line of help, and optionally
    `count`: the transfers of its schedule with one chunk, in closed form (what the work estimate uses
    instead of building the schedule — for thousands of ranks, the schedule itself takes gigabytes; the
    tests check every count against the schedule built). A count refuses what the builder refuses.
    `repeats`: its schedule may hold long runs of one step (rings), which compression cuts
    (`netsim.collectives.repeats`): the work estimate builds it to count what a compressed run creates."""

    build: Builder
    help: str
    count: Counter | None = None
    repeats: bool = False

    def transfers(self, req: Request) -> int:
        """The transfers of the schedule for `req` with one chunk: counted, or built and counted."""
        if self.count is not None:
            return int(self.count(req))
        return sum(len(step.src) for step in self.build(req).steps)


_OPS = {  # the collectives, with one line of help each; a Communicator method per op
    "all_reduce": "every rank ends with the element-wise sum of all ranks' buffers",
    "reduce_scatter": "every rank ends with its 1/n block of the sum of all ranks' buffers",
    "all_gather": "every rank ends with every rank's block (the buffer is the gathered result)",
    "broadcast": "the root's buffer is copied to every rank",
    "reduce": "the root ends with the sum of all ranks' buffers",
    "all_to_all": "rank i sends block j of its buffer to rank j",
    "barrier": "no rank leaves before every rank has entered (empty messages)",
}
OPS = tuple(_OPS)

ALGORITHMS: dict[str, dict[str, Algorithm]] = {op: {} for op in OPS}


def register_algorithm(op: str, algo: str, builder: Builder, help: str, count: Counter | None = None, *,
                       repeats: bool = False) -> None:
    """Make `algo` available for collective `op` (one of `OPS`); `help` is its line in `--help`; `count` the
    closed form of its transfer count, `repeats` whether its steps may repeat (see `Algorithm`)."""
    if op not in ALGORITHMS:
        raise ValueError(f"unknown collective {op!r} (known: {', '.join(OPS)})")
    if algo == "auto":
        raise ValueError("'auto' is the automatic choice, not an algorithm")
    ALGORITHMS[op][algo] = Algorithm(builder, help, count, repeats)


def _ring_count(op: str, channels: Callable[[Request], int] = lambda req: 1) -> Counter:
    """Rounds x ranks per ring, for each of `channels(req)` rings."""
    return lambda req: channels(req) * ring_rounds(op, req.n) * req.n if req.n > 1 else 0


def _rails(req: Request) -> int:
    """How many rings `rings` builds: the most NIC rails among one server's ranks."""
    rails = req.rail()
    return max(len(np.unique(rails[h])) for h in req.hosts())


def _hierarchical_count(req: Request) -> int:
    hosts = req.hosts()
    g = len(hosts[0])
    req.require(all(len(h) == g for h in hosts), "hierarchical", "every server needs the same number of ranks")
    return 2 * (g - 1) * req.n + (2 * (len(hosts) - 1) * req.n if len(hosts) > 1 else 0)


_DIRECT_COUNT = {"all_to_all": lambda n: n * (n - 1), "reduce_scatter": lambda n: n * (n - 1),
                 "all_gather": lambda n: n * (n - 1), "all_reduce": lambda n: 2 * n * (n - 1),
                 "broadcast": lambda n: n - 1, "reduce": lambda n: n - 1}


def _direct_count(op: str) -> Counter:
    return lambda req: _DIRECT_COUNT[op](req.n) if req.n > 1 else 0


for _op in ("all_reduce", "reduce_scatter", "all_gather"):
    _steps = "2(n-1)" if _op == "all_reduce" else "n-1"
    register_algorithm(_op, "ring", ring(_op), f"one ring: {_steps} steps, each rank sending 1/n of the buffer per step",
                       _ring_count(_op), repeats=True)
    register_algorithm(_op, "ring_bidir", ring_bidirectional(_op),
                       "half the buffer around the ring each way: both directions of every link",
                       _ring_count(_op, lambda req: 2), repeats=True)
    register_algorithm(_op, "rings", ring_channels(_op),
                       "NCCL-like rings, one per NIC rail, the buffer split evenly across them", _ring_count(_op, _rails),
                       repeats=True)
register_algorithm("all_reduce", "tree", tree("all_reduce"),
                   "NCCL's double binary tree, pipelined in chunks: 2 log n hops, for latency-bound sizes")
register_algorithm("all_reduce", "halving_doubling", halving_doubling("all_reduce"),
                   "recursive halving then doubling (Rabenseifner): 2 log2 n steps; other n fold the extra ranks in")
register_algorithm("reduce_scatter", "halving_doubling", halving_doubling("reduce_scatter"),
                   "recursive halving: log2 n steps (a power-of-two number of ranks)")
register_algorithm("all_gather", "halving_doubling", halving_doubling("all_gather"),
                   "recursive doubling: log2 n steps (a power-of-two number of ranks)")
register_algorithm("all_reduce", "hierarchical", hierarchical("all_reduce"),
                   "ring reduce-scatter inside each server, ring all-reduce across servers per rail, ring "
                   "all-gather inside", _hierarchical_count, repeats=True)
register_algorithm("all_reduce", "direct", direct("all_reduce"),
                   "two all-to-all steps: block j of every rank to rank j, then the sums to everyone",
                   _direct_count("all_reduce"))
register_algorithm("reduce_scatter", "direct", direct("reduce_scatter"),
                   "one step: block j of every rank straight to rank j", _direct_count("reduce_scatter"))
register_algorithm("all_gather", "direct", direct("all_gather"), "one step: every rank's block straight to all",
                   _direct_count("all_gather"))
for _op, _way in (("broadcast", "from"), ("reduce", "to")):
    register_algorithm(_op, "ring", chain(_op), f"pipelined chain {_way} the root through every rank: n-1 hops, "
                                                f"in chunks")
    register_algorithm(_op, "tree", tree(_op), f"pipelined binary tree {_way} the root: log n hops, in chunks")
register_algorithm("broadcast", "direct", direct("broadcast"), "the root sends the whole buffer to every rank at once",
                   _direct_count("broadcast"))
register_algorithm("reduce", "direct", direct("reduce"), "every rank sends its whole buffer to the root at once",
                   _direct_count("reduce"))
register_algorithm("all_to_all", "direct", direct("all_to_all"), "one step: block j of every rank straight to rank j",
                   _direct_count("all_to_all"))
register_algorithm("all_reduce", "nccl_tree", nccl_tree, "NCCL's tree: per channel (local rank), a chain inside each "
                   "server and a double binary tree across servers, pipelined in chunks", nccl_tree_count)
register_algorithm("all_reduce", "nvls", nvls, "summed inside the NVSwitch (NVLink SHARP): every GPU's buffer up, "
                   "the sum down to all, pipelined in chunks; one server's GPUs", nvls_count)
register_algorithm("all_reduce", "collnet", collnet, "summed inside the network's switches (SHARP), per rail: ring "
                   "reduce-scatter inside each server, shards up to the rail's switch and the sum down, ring all-gather",
                   collnet_count)
register_algorithm("barrier", "dissemination", dissemination,
                   "ceil(log2 n) rounds; in round i rank r signals rank r + 2^i")


def algorithms(op: str) -> list[str]:
    """The algorithm names for `op`, sorted, then `auto`; [] for an unknown op."""
    return sorted(ALGORITHMS.get(op, {})) + (["auto"] if op in ALGORITHMS else [])


def op_help() -> dict[str, str]:
    """Collective op -> one line of help, in `OPS` order."""
    return dict(_OPS)


def algorithm_help(op: str) -> dict[str, str]:
    """Algorithm name -> one line of help for `op`, in `algorithms(op)` order, `auto` included."""
    algos = ALGORITHMS[op]
    return {name: algos[name].help if name != "auto" else auto_help(op) for name in algorithms(op)}


def auto_help(op: str) -> str:
    """What `auto` does for `op`, and how the choice it made is named (`treex16`)."""
    candidates = AUTO_CANDIDATES[op]
    if len(candidates) == 1:
        return f"{candidates[0]}, the one candidate"
    text = f"the fastest of {', '.join(candidates)} by an alpha-beta prediction, as NCCL's tuner picks"
    pipelined = "both" if op in ("broadcast", "reduce") else "the tree" if "tree" in candidates else None
    if pipelined:
        example = "treex16: the tree in 16 chunks" if pipelined == "the tree" else "ringx8: the chain in 8 chunks"
        text += (f"; {pipelined} in the best of {PIPELINE_CHUNKS[0]}..{PIPELINE_CHUNKS[-1]} chunks, "
                 f"the choice named algorithm x chunks ({example})")
    return text


def alpha_beta(req: Request, overhead: float = 0.0) -> tuple[float, float]:
    """(alpha, B): the slowest path latency (+ overhead) and narrowest bottleneck between ring neighbours."""
    topo = req.topology
    cache = PathCache(topo)
    alpha, bw = 0.0, math.inf
    for a, b in zip(req.nodes.tolist(), np.roll(req.nodes, -1).tolist()):
        if a == b:
            continue
        path = cache.paths(a, b)[0]
        alpha = max(alpha, float(topo.latency[list(path)].sum()))
        bw = min(bw, float(topo.capacity[list(path)].min()))
    return alpha + overhead, bw


def predicted_time(op: str, algo: str, n: int, size: float, alpha: float, bw: float, chunks: int = 1,
                   rails: int = 1) -> float:
    """The alpha-beta prediction `auto` compares (see the module docstring)."""
    if n < 2:
        return 0.0
    t = binary_tree(n)
    h = int(t.height()[t.root])
    if op == "all_reduce" and algo in ("ring", "rings"):
        return 2 * (n - 1) * (alpha + size / (n * bw * (rails if algo == "rings" else 1)))
    if op == "all_reduce" and algo == "tree":
        return (2 * h + chunks - 1) * (alpha + 2 * size / (chunks * bw))
    if op in ("reduce_scatter", "all_gather") and algo in ("ring", "rings"):
        return (n - 1) * (alpha + size / (n * bw * (rails if algo == "rings" else 1)))
    if op in ("broadcast", "reduce") and algo == "ring":
        return (n - 1 + chunks - 1) * (alpha + size / (chunks * bw))
    if op in ("broadcast", "reduce") and algo == "tree":
        return (h + chunks - 1) * (alpha + 2 * size / (chunks * bw))
    if op == "all_to_all":
        return alpha + (n - 1) / n * size / bw
    if op == "barrier":
        return math.ceil(math.log2(n)) * alpha
    raise ValueError(f"no prediction for {op}/{algo}")


AUTO_CANDIDATES = {
    "all_reduce": ("ring", "rings", "tree"), "reduce_scatter": ("ring", "rings"), "all_gather": ("ring", "rings"),
    "broadcast": ("ring", "tree"), "reduce": ("ring", "tree"), "all_to_all": ("direct",),
    "barrier": ("dissemination",),
}
PIPELINE_CHUNKS = (1, 2, 4, 8, 16, 32, 64)


def choose(op: str, req: Request, overhead: float = 0.0, measured: tuple[float, float] | None = None
           ) -> tuple[str, int]:
    """`auto`: the (algorithm, chunks) with the smallest predicted time (`measured`: `alpha_beta(req)` of these
    ranks without the overhead, when the caller has it already)."""
    if req.n < 2:
        return AUTO_CANDIDATES[op][0], 1
    alpha, bw = measured if measured is not None else alpha_beta(req)
    alpha += overhead
    rails = len(channel_orders(req))
    best = None
    for algo in AUTO_CANDIDATES[op]:
        if algo == "rings" and rails == 1:
            continue  # the same as one ring
        pipelined = algo == "tree" or (op in ("broadcast", "reduce") and algo == "ring")
        for c in PIPELINE_CHUNKS if pipelined else (req.chunks,):
            t = predicted_time(op, algo, req.n, req.nbytes, alpha, bw, c, rails)
            if best is None or t < best[0]:
                best = (t, algo, c)
    return best[1], best[2]

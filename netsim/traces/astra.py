"""ASTRA-sim / SimAI text workloads: one training iteration described per layer, expanded to N ranks.

Line 1 names the parallelism (DATA, MODEL, MICRO, HYBRID_TRANSFORMER, HYBRID_TRANSFORMER_FWD_IN_BCKWD)
and, for the transformer kinds, ``model_parallel_NPU_group: T`` (and in SimAI files ``ep:``, ``pp:``,
``all_gpus: W``...); line 2 the number of layers; then one line per layer of 12 columns:

    name  reserved  fwd-compute fwd-comm fwd-bytes  ig-compute ig-comm ig-bytes  wg-compute wg-comm wg-bytes  update

Compute times are cycles of 1 ns (ASTRA-sim's clock); sizes are bytes; comm types ALLREDUCE,
ALLGATHER, REDUCESCATTER, ALLTOALL (NONE or anything else: none). Groups: DATA and MICRO all-reduce
weight gradients over every rank (MICRO: layer 0 only); MODEL puts the forward and input-gradient
collectives over every rank; the transformer kinds put forward and input-gradient collectives in the
model-parallel group (T consecutive ranks) and weight-gradient ones in the data-parallel group (ranks
equal modulo T). Per rank: the forward of layers 0..L-1 (compute, then its collective), then the
backward from layer L-1 down (input-gradient compute and collective, weight-gradient compute and
collective); a layer's input-gradient compute waits for the previous layer's input-gradient collective,
weight-gradient collectives overlap what follows. Not modelled (counted as skipped): the update column,
a communication of a type netsim does not replay (BROADCAST, ...) or of 0 bytes; refused: pipeline stages
(pp > 1).

Expert parallelism (SimAI/AICB, MoE or dense): a comm type's suffix picks its group, whatever the pass.
With T model-parallel ranks, D = N / T data-parallel ranks per model-parallel index j (ranks j, j + T, ...,
the k-th at k T + j) and ``ep: E`` (default 1; E divides D):

- ``_EP`` (token dispatch and combine): the expert-parallel group, E consecutive data-parallel ranks
  (k // E equal); with E = 1 a group of one rank, nothing moves (counted as skipped);
- ``_DP_EP`` (expert gradients): the expert-data-parallel group, the D / E data-parallel ranks with the
  same k mod E — with E = 1, the data-parallel group itself;
- ``_DP`` the data-parallel group, ``_TP`` the model-parallel group.

Every field is checked where it is read, and a bad one is a one-line `TraceError` naming the file, the
line and the column: sizes whole bytes, 0 to 2^53 (a negative size is an error, never a dropped
communication); compute times whole cycles, 0 to 1e15 (1e6 s); the rank count (``all_gpus:`` or `npus`)
1 to 131,072, and the nodes the expansion builds at most 5 million.
"""

from __future__ import annotations

import re
from pathlib import Path

from netsim.program.budget import MAX_NODES
from netsim.traces.model import MAX_BYTES, MAX_DURATION, MAX_RANKS, Trace, TraceError, TraceNode, shown

KEYWORDS = ("DATA", "MODEL", "MICRO", "HYBRID_TRANSFORMER", "HYBRID_TRANSFORMER_FWD_IN_BCKWD")
OTHER_KEYWORDS = ("HYBRID_DATA_MODEL", "HYBRID_MODEL_DATA", "HYBRID_DLRM", "HYBRID_DLRM_ENHANCED",
                  "HYBRID_CUSTOMIZED", "DISTRIBUTED_INFERENCE")
COMM = {"ALLREDUCE": "all_reduce", "ALLGATHER": "all_gather", "REDUCESCATTER": "reduce_scatter",
        "ALLTOALL": "all_to_all", "ALLREDUCEALLTOALL": "all_reduce"}
SCOPES = ("EP", "DP_EP", "DP", "TP")  # comm-type suffixes: the group a collective runs on
TICK = 1e-9  # seconds per cycle
COLUMNS = ("name", "reserved", "fwd-compute", "fwd-comm", "fwd-bytes", "ig-compute", "ig-comm", "ig-bytes",
           "wg-compute", "wg-comm", "wg-bytes", "update")
_WHOLE = re.compile(r"[+-]?[0-9]+")


def looks_like(path: Path) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            first = f.readline().split()
    except OSError:
        return False
    return bool(first) and first[0] in KEYWORDS + OTHER_KEYWORDS


def _header_value(tokens: list[str], key: str) -> int | None:
    for i, t in enumerate(tokens):
        if t.rstrip(":") == key and i + 1 < len(tokens):
            value = tokens[i + 1]
            return int(value) if _WHOLE.fullmatch(value) and len(value) < 20 else None
    return None


def read(path: str | Path, npus: int | None = None) -> Trace:
    """The workload at `path` on `npus` ranks (default: the header's all_gpus)."""
    path = Path(path)
    source = str(path)
    try:
        lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read the workload ({exc})", source=source) from None
    if len(lines) < 2:
        raise TraceError("expected a parallelism line and a layer count", source=source)
    head = lines[0].split()
    kind = head[0]
    if kind in OTHER_KEYWORDS:
        raise TraceError(f"parallelism {kind} is not supported (supported: {', '.join(KEYWORDS)})", source=source,
                         field="line 1")
    if kind not in KEYWORDS:
        raise TraceError(f"expected a parallelism keyword ({', '.join(KEYWORDS)}), got {shown(kind)}",
                         source=source, field="line 1")
    count = lines[1].split()[0]
    if not _WHOLE.fullmatch(count) or len(count) > 12:
        raise TraceError(f"expected the number of layers, got {shown(lines[1])}", source=source, field="line 2")
    layers = int(count)
    rows = [l.split() for l in lines[2:]]
    if len(rows) != layers:
        raise TraceError(f"line 2 announces {layers} layers, the file has {len(rows)}", source=source, field="line 2")
    for i, r in enumerate(rows):
        if len(r) < 12:
            raise TraceError(f"expected 12 columns, got {len(r)}", source=source, field=f"line {i + 3}")
    pp = _header_value(head, "pp")
    if pp not in (None, 1):
        raise TraceError(f"pipeline parallelism (pp: {pp}) is not supported", source=source, field="pp")
    n = npus or _header_value(head, "all_gpus")
    if not n or n < 1:
        raise TraceError("the workload does not say how many ranks run it (no all_gpus:); give the rank count "
                         "with --npus", source=source, field="all_gpus")
    if n > MAX_RANKS:
        raise TraceError(f"{n:,} ranks: expected at most {MAX_RANKS:,}", source=source,
                         field="all_gpus" if not npus else "npus")
    tp = _header_value(head, "model_parallel_NPU_group") if kind.startswith("HYBRID") else None
    if kind.startswith("HYBRID"):
        if not tp or tp < 1 or n % tp:
            raise TraceError(f"{n} ranks do not split into model-parallel groups of {tp}", source=source,
                             field="model_parallel_NPU_group")
    per_rank = 7 * layers  # at most, per rank and layer: fwd compute, collective, wait; ig and wg compute, collective
    if n * per_rank > MAX_NODES:
        raise TraceError(f"{n:,} ranks x {layers:,} layers would build about {n * per_rank:,} nodes, more than "
                         f"the {MAX_NODES:,} netsim replays; give fewer ranks", source=source,
                         field="all_gpus" if not npus else "npus")
    ep = _header_value(head, "ep") or 1
    t = tp or 1  # (the non-transformer kinds: one data-parallel group of every rank)
    d = n // t
    if ep < 1 or d % ep:
        raise TraceError(f"ep: {ep} does not divide the {d} data-parallel ranks ({n} ranks, model-parallel groups "
                         f"of {t})", source=source, field="ep")
    groups: dict[str, tuple[int, ...]] = {"world": tuple(range(n))}
    for g in range(n // t):
        groups[f"tp{g}"] = tuple(range(g * t, (g + 1) * t))
    for j in range(t):
        groups[f"dp{j}"] = tuple(range(j, n, t))
        for b in range(d // ep):
            groups[f"ep{j}.{b}"] = tuple((b * ep + k) * t + j for k in range(ep))
        for c in range(ep):
            groups[f"dpep{j}.{c}"] = tuple(k * t + j for k in range(c, d, ep))

    def group_of(rank: int, pass_: str, scope: str | None) -> str:
        j, k = rank % t, rank // t
        if scope == "EP":
            return f"ep{j}.{k // ep}"
        if scope == "DP_EP":
            return f"dpep{j}.{k % ep}"
        if scope == "DP":
            return f"dp{j}"
        if scope == "TP":
            return f"tp{rank // t}"
        if kind in ("DATA", "MICRO", "MODEL"):
            return "world"
        return f"tp{rank // tp}" if pass_ in ("fwd", "ig") else f"dp{rank % tp}"

    def where(line: int, column: int) -> str:
        return f"line {line} column {column + 1} ({COLUMNS[column]})"

    # every field checked once per line, before any rank is expanded
    def comm(tok: str, size: str, line: int, column: int) -> tuple[str | None, int, str | None, str | None]:
        """(op or None, bytes, why a communication is not replayed or None, its group scope or None)."""
        base, _, scope = tok.partition("_")
        op = COMM.get(base)
        if scope and scope not in SCOPES:
            op = None
        if not _WHOLE.fullmatch(size) or len(size) > 40 or not 0 <= int(size) <= MAX_BYTES:
            raise TraceError(f"expected a size in whole bytes, 0 to 2^53 (8 PiB), got {shown(size)}", source=source,
                             field=where(line, column))
        nbytes = int(size)
        if op is not None and nbytes == 0:
            return None, 0, f"{tok[:40]} of 0 bytes (nothing to send)", None
        if op is None and tok != "NONE" and nbytes > 0:
            return None, nbytes, f"communication type {tok[:40]!r} (not one netsim replays)", None
        if op is not None and scope == "EP" and ep == 1:
            return None, nbytes, f"{tok[:40]} with ep: 1 (a group of one rank: nothing moves)", None
        return op, nbytes, None, scope or None

    def ticks(tok: str, line: int, column: int) -> float:
        if not _WHOLE.fullmatch(tok) or len(tok) > 40 or not 0 <= int(tok) <= MAX_DURATION / TICK:
            raise TraceError(f"expected a compute time in whole cycles, 0 to {MAX_DURATION / TICK:g}, got "
                             f"{shown(tok)}", source=source, field=where(line, column))
        return int(tok) * TICK

    parsed = []  # per layer: name, then (compute s, (op, bytes, not-replayed reason)) per pass
    for l, r in enumerate(rows):
        line = l + 3
        parsed.append((r[0], {"fwd": (ticks(r[2], line, 2), comm(r[3], r[4], line, 4)),
                              "ig": (ticks(r[5], line, 5), comm(r[6], r[7], line, 7)),
                              "wg": (ticks(r[8], line, 8), comm(r[9], r[10], line, 10))}))

    active = {"fwd": kind == "MODEL" or kind.startswith("HYBRID"), "ig": kind == "MODEL" or kind.startswith("HYBRID"),
              "wg": kind != "MODEL"}

    def used(pass_: str, layer: int, scope: str | None = None) -> bool:
        """Whether this pass's collective runs: the parallelism's own rules, or always for a scoped one."""
        if scope:
            return True
        return active[pass_] and (kind != "MICRO" or (pass_ == "wg" and layer == 0))

    nodes: dict[int, tuple[TraceNode, ...]] = {}
    skipped = {"update-time column (not modelled)": layers * n}
    for l, (_, passes) in enumerate(parsed):
        for pass_, (_, (_, _, why, _)) in passes.items():
            if why and used(pass_, l):
                skipped[why] = skipped.get(why, 0) + n
    for rank in range(n):
        out: list[TraceNode] = []
        last_compute: int | None = None

        def add(kind_: str, deps: list[int | None], **kw) -> int:
            out.append(TraceNode(rank, len(out), kind_, deps=tuple(d for d in deps if d is not None), **kw))
            return len(out) - 1

        for l, (name, passes) in enumerate(parsed):  # forward
            seconds, (op, size, _, scope) = passes["fwd"]
            last_compute = add("compute", [last_compute], name=f"{name}:fwd", duration=seconds)
            if op and used("fwd", l, scope):
                c = add("collective", [last_compute], name=f"{name}:fwd", op=op, nbytes=size,
                        group=group_of(rank, "fwd", scope))
                last_compute = add("compute", [c], name=f"{name}:fwd wait", duration=0.0)
        ig_comm: int | None = None
        for l in range(layers - 1, -1, -1):  # backward
            name, passes = parsed[l]
            seconds, (op, size, _, scope) = passes["ig"]
            last_compute = add("compute", [last_compute, ig_comm], name=f"{name}:ig", duration=seconds)
            ig_comm = None
            if op and used("ig", l, scope):
                ig_comm = add("collective", [last_compute], name=f"{name}:ig", op=op, nbytes=size,
                              group=group_of(rank, "ig", scope))
            seconds, (op, size, _, scope) = passes["wg"]
            last_compute = add("compute", [last_compute], name=f"{name}:wg", duration=seconds)
            if op and used("wg", l, scope):
                add("collective", [last_compute], name=f"{name}:wg", op=op, nbytes=size,
                    group=group_of(rank, "wg", scope))
        nodes[rank] = tuple(out)
    return Trace(nodes, groups, source, "astra", skipped)

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
pipeline stages (pp > 1 is refused), expert-parallel groups (``_EP`` suffixes are refused).
"""

from __future__ import annotations

from pathlib import Path

from netsim.traces.model import Trace, TraceError, TraceNode

KEYWORDS = ("DATA", "MODEL", "MICRO", "HYBRID_TRANSFORMER", "HYBRID_TRANSFORMER_FWD_IN_BCKWD")
OTHER_KEYWORDS = ("HYBRID_DATA_MODEL", "HYBRID_MODEL_DATA", "HYBRID_DLRM", "HYBRID_DLRM_ENHANCED",
                  "HYBRID_CUSTOMIZED", "DISTRIBUTED_INFERENCE")
COMM = {"ALLREDUCE": "all_reduce", "ALLGATHER": "all_gather", "REDUCESCATTER": "reduce_scatter",
        "ALLTOALL": "all_to_all", "ALLREDUCEALLTOALL": "all_reduce"}
TICK = 1e-9  # seconds per cycle


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
            try:
                return int(tokens[i + 1])
            except ValueError:
                return None
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
        raise TraceError(f"parallelism {kind} is not supported (supported: {', '.join(KEYWORDS)})", source=source)
    if kind not in KEYWORDS:
        raise TraceError(f"line 1: expected a parallelism keyword ({', '.join(KEYWORDS)}), got {kind!r}",
                         source=source)
    try:
        layers = int(lines[1].split()[0])
    except (ValueError, IndexError):
        raise TraceError(f"line 2: expected the number of layers, got {lines[1]!r}", source=source) from None
    rows = [l.split() for l in lines[2:]]
    if len(rows) != layers:
        raise TraceError(f"line 2 announces {layers} layers, the file has {len(rows)}", source=source)
    for i, r in enumerate(rows):
        if len(r) < 12:
            raise TraceError(f"line {i + 3}: expected 12 columns, got {len(r)}", source=source)
    pp = _header_value(head, "pp")
    if pp not in (None, 1):
        raise TraceError(f"pipeline parallelism (pp: {pp}) is not supported", source=source)
    n = npus or _header_value(head, "all_gpus")
    if not n or n < 1:
        raise TraceError("the workload does not say how many ranks run it (no all_gpus:); give the rank count",
                         source=source)
    tp = _header_value(head, "model_parallel_NPU_group") if kind.startswith("HYBRID") else None
    if kind.startswith("HYBRID"):
        if not tp or n % tp:
            raise TraceError(f"{n} ranks do not split into model-parallel groups of {tp}", source=source)
    groups: dict[str, tuple[int, ...]] = {"world": tuple(range(n))}
    if tp:
        for g in range(n // tp):
            groups[f"tp{g}"] = tuple(range(g * tp, (g + 1) * tp))
        for j in range(tp):
            groups[f"dp{j}"] = tuple(range(j, n, tp))

    def group_of(rank: int, pass_: str) -> str:
        if kind in ("DATA", "MICRO"):
            return "world"
        if kind == "MODEL":
            return "world"
        return f"tp{rank // tp}" if pass_ in ("fwd", "ig") else f"dp{rank % tp}"

    def comm(tok: str, size: str, line: int) -> tuple[str | None, int]:
        if "_EP" in tok:
            raise TraceError(f"line {line}: expert-parallel collectives ({tok}) are not supported", source=source)
        op = COMM.get(tok.split("_")[0])
        try:
            nbytes = int(size)
        except ValueError:
            raise TraceError(f"line {line}: expected a size in bytes, got {size!r}", source=source) from None
        return (op if nbytes > 0 else None), nbytes

    def ticks(tok: str, line: int) -> float:
        try:
            value = int(tok)
        except ValueError:
            raise TraceError(f"line {line}: expected a compute time in cycles, got {tok!r}", source=source) from None
        if value < 0:
            raise TraceError(f"line {line}: negative compute time", source=source)
        return value * TICK

    active = {"fwd": kind == "MODEL" or kind.startswith("HYBRID"), "ig": kind == "MODEL" or kind.startswith("HYBRID"),
              "wg": kind != "MODEL"}
    nodes: dict[int, tuple[TraceNode, ...]] = {}
    skipped = {"update-time column (not modelled)": layers * n}
    for rank in range(n):
        out: list[TraceNode] = []
        last_compute: int | None = None

        def add(kind_: str, deps: list[int | None], **kw) -> int:
            out.append(TraceNode(rank, len(out), kind_, deps=tuple(d for d in deps if d is not None), **kw))
            return len(out) - 1

        for l, r in enumerate(rows):  # forward
            line = l + 3
            last_compute = add("compute", [last_compute], name=f"{r[0]}:fwd", duration=ticks(r[2], line))
            op, size = comm(r[3], r[4], line)
            if op and active["fwd"] and kind != "MICRO":
                c = add("collective", [last_compute], name=f"{r[0]}:fwd", op=op, nbytes=size,
                        group=group_of(rank, "fwd"))
                last_compute = add("compute", [c], name=f"{r[0]}:fwd wait", duration=0.0)
        ig_comm: int | None = None
        for l in range(layers - 1, -1, -1):  # backward
            r, line = rows[l], l + 3
            last_compute = add("compute", [last_compute, ig_comm], name=f"{r[0]}:ig", duration=ticks(r[5], line))
            op, size = comm(r[6], r[7], line)
            ig_comm = None
            if op and active["ig"] and kind != "MICRO":
                ig_comm = add("collective", [last_compute], name=f"{r[0]}:ig", op=op, nbytes=size,
                              group=group_of(rank, "ig"))
            last_compute = add("compute", [last_compute], name=f"{r[0]}:wg", duration=ticks(r[8], line))
            op, size = comm(r[9], r[10], line)
            if op and active["wg"] and (kind != "MICRO" or l == 0):
                add("collective", [last_compute], name=f"{r[0]}:wg", op=op, nbytes=size, group=group_of(rank, "wg"))
        nodes[rank] = tuple(out)
    return Trace(nodes, groups, source, "astra", skipped)

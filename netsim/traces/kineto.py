"""PyTorch profiler (Kineto) traces: Chrome-trace JSON per rank, plain or gzipped, merged by rank.

Each file holds ``traceEvents`` (complete events ``ph: "X"`` with ``ts`` / ``dur`` in microseconds) and
``distributedInfo`` (rank, world size, process groups with their ranks). Communication comes from:

- NCCL: GPU kernels ``ncclKernel_*`` / ``ncclDevKernel_*`` and, where there are none, the CPU op
  ``record_param_comms``, with args "Collective name", "In msg nelems", "Out msg nelems", "dtype",
  "Process Group Name" / "Process Group Ranks" (and, for point to point, the peer in "Rank"... the
  global rank of the other side where the trace gives it). When both are present the kernels are kept
  and the CPU records skipped (counted), so nothing is counted twice;
- gloo (CPU): the work itself as ``gloo:<op>`` events (dtype and shape in "Input type" / "Input Dims"),
  and the call as ``c10d::<op>`` (which gives a send's destination and a receive's source in "Concrete
  Inputs"); calls whose work is recorded are skipped (counted).

Compute is what lies between (see `_build`): the main thread's time from one issued communication to
the next. Kineto records no dependencies, so they are inferred from the timestamps: a communication
follows the compute before its issue; one the main thread waited for (gloo calls made nothing else
start before its work ended; NCCL work is taken as waited for) blocks what follows; one it did not wait
for (DDP's buckets, reduced while the backward goes on) runs beside it, and the first compute that
started after it ended depends on it. Collectives run over their process group (gloo events name none:
the default group, refused when the trace defines others); sizes are bytes in netsim's convention.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

from netsim.traces.model import Trace, TraceError, TraceNode

DTYPE_BYTES = {"float": 4, "float32": 4, "Float": 4, "double": 8, "float64": 8, "Double": 8, "half": 2, "Half": 2,
               "float16": 2, "bfloat16": 2, "BFloat16": 2, "c10::BFloat16": 2, "c10::Half": 2, "int": 4, "int32": 4,
               "Int": 4, "long": 8, "int64": 8, "Long": 8, "long int": 8, "char": 1, "int8": 1, "Char": 1,
               "unsigned char": 1, "uint8": 1, "Byte": 1, "bool": 1, "Bool": 1}
GLOO_OPS = {"all_reduce": "all_reduce", "allreduce": "all_reduce", "broadcast": "broadcast", "reduce": "reduce",
            "all_gather": "all_gather", "allgather": "all_gather", "reduce_scatter": "reduce_scatter",
            "all_to_all": "all_to_all", "alltoall": "all_to_all", "barrier": "barrier", "send": "send", "recv": "recv"}
NCCL_OPS = {"allreduce": "all_reduce", "all_reduce": "all_reduce", "allgather": "all_gather",
            "all_gather": "all_gather", "_allgather_base": "all_gather", "allgather_into_tensor_coalesced": "all_gather",
            "reduce_scatter": "reduce_scatter", "_reduce_scatter_base": "reduce_scatter",
            "reduce_scatter_tensor_coalesced": "reduce_scatter", "all_to_all": "all_to_all",
            "alltoall": "all_to_all", "alltoall_base": "all_to_all", "all_to_allv": "all_to_all",
            "broadcast": "broadcast", "reduce": "reduce", "barrier": "barrier", "send": "send", "recv": "recv"}


def _load(path: Path) -> dict:
    raw = path.read_bytes()
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise TraceError(f"not a profiler trace: {str(exc).splitlines()[0][:100]}", source=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise TraceError("not a profiler trace (no traceEvents list)", source=str(path))
    return data


def rank_files(path: str | Path) -> list[Path]:
    """A directory (its *.json / *.json.gz), a single file, or a prefix P of files P<anything>.json[.gz]."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if re.search(r"\.json(\.gz)?$", p.name))
    elif path.is_file():
        files = [path] if re.search(r"\.json(\.gz)?$", path.name) else []
    else:
        files = sorted(p for p in path.parent.glob(path.name + "*") if re.search(r"\.json(\.gz)?$", p.name))
    if not files:
        raise TraceError("no profiler trace files (*.json, *.json.gz) found", source=str(path))
    return files


def read(path: str | Path) -> Trace:
    files = rank_files(path)
    per_rank: dict[int, tuple[TraceNode, ...]] = {}
    groups: dict[str, tuple[int, ...]] = {}
    skipped: dict[str, int] = {}
    world = None
    scan = Path(path).is_dir()  # a folder may hold other JSON (execution traces, notes): those are skipped
    for f in files:
        try:
            data = _load(f)
        except TraceError:
            if not scan:
                raise
            _count(skipped, "JSON file in the folder that is not a profiler trace")
            continue
        info = data.get("distributedInfo") or {}
        rank = info.get("rank", 0 if len(files) == 1 else None)
        if not isinstance(rank, int):
            raise TraceError("no distributedInfo.rank: cannot tell which rank recorded it", source=str(f))
        if rank in per_rank:
            raise TraceError(f"rank {rank} recorded twice", source=str(f))
        size = info.get("world_size", len(files))
        if world is not None and size != world:
            raise TraceError(f"world size {size}, other files say {world}", source=str(f))
        world = size
        for pg in info.get("pg_config") or []:
            name, ranks = str(pg.get("pg_name")), tuple(int(r) for r in pg.get("ranks") or range(size))
            if groups.get(name, ranks) != ranks:
                raise TraceError(f"process group {name!r} has ranks {list(ranks)} here, {list(groups[name])} "
                                 "elsewhere", source=str(f))
            groups[name] = ranks
        per_rank[rank] = _rank_nodes(rank, data["traceEvents"], groups, size, skipped, str(f))
    if not per_rank:
        raise TraceError("no profiler trace among the files", source=str(path))
    missing = sorted(set(range(world or 0)) - set(per_rank))
    if missing:
        raise TraceError(f"the world has {world} ranks but files for ranks {missing} are missing",
                         source=str(path))
    return Trace(per_rank, groups, str(path), "kineto", skipped)


def _count(skipped: dict, reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


def _bytes_of(dims, dtype: str, source: str, name: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise TraceError(f"{name}: unknown dtype {dtype!r}", source=source)
    if dims and isinstance(dims[0], list):
        dims = dims[0]
    return math.prod(int(d) for d in dims) * DTYPE_BYTES[dtype] if dims else DTYPE_BYTES[dtype]


def _default_group(groups: dict, size: int) -> str:
    world = tuple(range(size))
    for name, ranks in groups.items():
        if ranks == world:
            return name
    groups["world"] = world
    return "world"


def _rank_nodes(rank: int, events: list, groups: dict, size: int, skipped: dict, source: str):
    complete = [e for e in events if isinstance(e, dict) and e.get("ph") == "X" and "ts" in e and "dur" in e]
    kernels = [e for e in complete if str(e.get("name", "")).startswith(("ncclKernel", "ncclDevKernel"))]
    comms = []  # (work start us, end us, name, node fields[, issued us])
    nccl = kernels or [e for e in complete if e.get("name") == "record_param_comms"]
    if kernels:
        for e in complete:
            if e.get("name") == "record_param_comms":
                _count(skipped, "record_param_comms CPU op (its GPU kernel is kept)")
    for e in nccl:
        args = e.get("args") or {}
        name = str(args.get("Collective name", "")).lower()
        op = NCCL_OPS.get(name)
        if op is None:
            _count(skipped, f"NCCL event without a known collective name ({name or 'none'})")
            continue
        dtype = str(args.get("dtype", "Float"))
        elem = DTYPE_BYTES.get(dtype)
        if elem is None:
            raise TraceError(f"rank {rank}: unknown dtype {dtype!r} in {e.get('name')}", source=source)
        inn, out = int(args.get("In msg nelems", 0)) * elem, int(args.get("Out msg nelems", 0)) * elem
        group = str(args.get("Process Group Name", "")) or _default_group(groups, size)
        ranks_text = args.get("Process Group Ranks")
        if ranks_text and group not in groups:
            groups[group] = tuple(json.loads(ranks_text) if isinstance(ranks_text, str) else ranks_text)
        if op in ("send", "recv"):
            peer = args.get("Rank") if args.get("Rank") != rank else args.get("Peer")
            if not isinstance(peer, int):
                _count(skipped, f"NCCL {op} without its peer rank")
                continue
            fields = {"kind": op, "nbytes": inn if op == "send" else out or inn, "peer": peer}
        else:
            nbytes = out if op == "all_gather" else inn
            fields = {"kind": "collective", "op": op, "nbytes": nbytes, "group": group}
        comms.append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e.get("name", op), fields))
    # gloo: the work (gloo:*) with its dtype and shape; the calls (c10d::*) give when the main thread issued
    # it and point-to-point peers. The k-th call of a kind goes with the k-th work of that kind.
    calls = sorted((e for e in complete if str(e.get("name", "")).startswith("c10d::")), key=lambda e: e["ts"])
    work = sorted((e for e in complete if str(e.get("name", "")).startswith("gloo:")), key=lambda e: e["ts"])
    main_tid = max({e["tid"] for e in calls}, key=lambda t: sum(e["tid"] == t for e in calls)) if calls else None
    calls_of: dict[str, list] = {}
    for e in calls:
        calls_of.setdefault(GLOO_OPS.get(e["name"][6:].rstrip("_"), "?"), []).append(e)
    taken: dict[str, int] = {}
    for e in work:
        kind = e["name"].split(":", 1)[1]
        op = GLOO_OPS.get(kind)
        if op is None:
            _count(skipped, f"gloo event {e['name']} (not a collective netsim replays)")
            continue
        k = taken.get(op, 0)
        taken[op] = k + 1
        call = calls_of.get(op, [])[k] if k < len(calls_of.get(op, [])) else None
        if call is not None:
            _count(skipped, "c10d:: call record (the node is its gloo work, issued at the call)")
        args = e.get("args") or {}
        types = args.get("Input type") or ["float"]
        nbytes = _bytes_of((args.get("Input Dims") or [[1]])[0], str(types[0]), source, e["name"])
        if op in ("send", "recv"):
            concrete = ((call or {}).get("args") or {}).get("Concrete Inputs") or []
            try:
                peer, tag = int(concrete[2]), int(concrete[3] or 0)
            except (IndexError, ValueError):
                raise TraceError(f"rank {rank}: {e['name']} without its c10d:: call naming the peer",
                                 source=source) from None
            fields = {"kind": op, "nbytes": nbytes, "peer": peer, "tag": tag}
        else:
            if len(groups) > 1:
                raise TraceError(f"rank {rank}: gloo events name no process group and the trace defines "
                                 f"{len(groups)}", source=source)
            if op == "all_gather":
                nbytes *= size  # the gathered output
            fields = {"kind": "collective", "op": op, "nbytes": nbytes, "group": _default_group(groups, size)}
        issued = float(call["ts"]) if call is not None else float(e["ts"])
        comms.append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"], fields, issued))
    for op, items in calls_of.items():
        for _ in items[taken.get(op, 0):]:
            _count(skipped, "c10d:: call without a recorded gloo work")
    main = sorted(float(e["ts"]) for e in complete if e.get("tid") == main_tid and not
                  str(e.get("name", "")).startswith(("c10d::", "gloo:"))) if main_tid is not None else []
    return _build(rank, comms, complete, main)


def _build(rank: int, comms: list, complete: list, main: list[float]) -> tuple[TraceNode, ...]:
    """Nodes from the communication records (work start, end, name, fields[, issued]) and the main thread.

    Per rank, in the order communication was issued: a compute node for the main thread's time up to each
    issue, then the communication node (after that compute). A communication the main thread waited for
    (it started nothing until the work ended) blocks what follows; one it did not wait for runs beside the
    main thread, and the first compute that started after it ended in the recording depends on it."""
    comms = sorted(comms, key=lambda c: (c[4] if len(c) > 4 else c[0], c[0]))
    first = min((float(e["ts"]) for e in complete), default=0.0)
    last = max((float(e["ts"]) + float(e["dur"]) for e in complete), default=0.0)
    nodes: list[TraceNode] = []
    chain: int | None = None  # the node the next compute follows
    waiting: list[tuple[float, int]] = []  # (recorded end, node) of communication not waited for yet
    cursor = first

    def compute(until: float) -> None:
        nonlocal chain, cursor
        if until <= cursor:
            return
        deps = [chain] if chain is not None else []
        for end, i in list(waiting):
            if end <= cursor:
                deps.append(i)
                waiting.remove((end, i))
        nodes.append(TraceNode(rank, len(nodes), "compute", "compute", duration=(until - cursor) * 1e-6,
                               start=(cursor - first) * 1e-6, deps=tuple(sorted(deps))))
        chain, cursor = len(nodes) - 1, until

    for record in comms:
        start, end, name, fields = record[:4]
        issued = record[4] if len(record) > 4 else start
        compute(issued)
        deps = (chain,) if chain is not None else ()
        nodes.append(TraceNode(rank, len(nodes), name=name, duration=(end - start) * 1e-6,
                               start=(start - first) * 1e-6, deps=deps, **fields))
        i = len(nodes) - 1
        blocked = len(record) <= 4 or not any(issued < t < end for t in main)
        if blocked:  # the main thread waited for it: what follows starts after it
            chain, cursor = i, max(cursor, end)
        else:
            waiting.append((end, i))
    compute(last)
    if waiting:  # the trace ends after everything it issued
        nodes.append(TraceNode(rank, len(nodes), "compute", "end", duration=0.0, start=(last - first) * 1e-6,
                               deps=tuple(sorted({chain} - {None} | {i for _, i in waiting}))))
    return tuple(nodes)

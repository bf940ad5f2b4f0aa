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

Compute is what lies between: per rank, the communication intervals in start order, and a compute node
for each gap from the end of everything before to the next start (and from the first event to the first
communication, and after the last). Collectives run over their process group (gloo events name none:
the default group, refused when the trace defines others); sizes are bytes in netsim's convention.
Nodes are chained in recorded order (Kineto has no dependencies).
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

from netsim.traces.model import Trace, TraceError, TraceNode, chained

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
        files = [path]
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
    for f in files:
        data = _load(f)
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
    comms = []  # (start us, end us, node fields)
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
    # gloo: the work (gloo:*) with its dtype and shape; the calls (c10d::*) give point-to-point peers
    calls = sorted((e for e in complete if str(e.get("name", "")).startswith("c10d::")), key=lambda e: e["ts"])
    peers = [e for e in calls if e["name"] in ("c10d::send", "c10d::recv_", "c10d::recv")]
    for e in calls:
        if e not in peers:
            _count(skipped, "c10d:: call record (the gloo work is recorded as gloo:*)")
    work = sorted((e for e in complete if str(e.get("name", "")).startswith("gloo:")), key=lambda e: e["ts"])
    p2p_calls = {"send": [e for e in peers if e["name"] == "c10d::send"],
                 "recv": [e for e in peers if e["name"] != "c10d::send"]}
    for e in work:
        kind = e["name"].split(":", 1)[1]
        op = GLOO_OPS.get(kind)
        if op is None:
            _count(skipped, f"gloo event {e['name']} (not a collective netsim replays)")
            continue
        args = e.get("args") or {}
        types = args.get("Input type") or ["float"]
        nbytes = _bytes_of((args.get("Input Dims") or [[1]])[0], str(types[0]), source, e["name"])
        if op in ("send", "recv"):
            if not p2p_calls[op]:
                raise TraceError(f"rank {rank}: {e['name']} without its c10d:: call (peer unknown)", source=source)
            call = p2p_calls[op].pop(0)
            concrete = (call.get("args") or {}).get("Concrete Inputs") or []
            try:
                peer, tag = int(concrete[2]), int(concrete[3] or 0)
            except (IndexError, ValueError):
                raise TraceError(f"rank {rank}: {call['name']} without a peer rank", source=source) from None
            fields = {"kind": op, "nbytes": nbytes, "peer": peer, "tag": tag}
        else:
            if len(groups) > 1:
                raise TraceError(f"rank {rank}: gloo events name no process group and the trace defines "
                                 f"{len(groups)}", source=source)
            n = size if op in ("all_gather", "reduce_scatter") else 1
            if op == "all_gather":
                nbytes *= n  # the gathered output
            fields = {"kind": "collective", "op": op, "nbytes": nbytes, "group": _default_group(groups, size)}
        comms.append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"], fields))
    comms.sort(key=lambda c: c[0])
    first = min((float(e["ts"]) for e in complete), default=0.0)
    last = max((float(e["ts"]) + float(e["dur"]) for e in complete), default=0.0)
    nodes: list[TraceNode] = []
    done = first
    for start, end, name, fields in comms:
        if start > done:
            nodes.append(TraceNode(rank, len(nodes), "compute", "compute", duration=(start - done) * 1e-6,
                                   start=(done - first) * 1e-6))
        nodes.append(TraceNode(rank, len(nodes), name=name, duration=(end - start) * 1e-6,
                               start=(start - first) * 1e-6, **fields))
        done = max(done, end)
    if last > done:
        nodes.append(TraceNode(rank, len(nodes), "compute", "compute", duration=(last - done) * 1e-6,
                               start=(done - first) * 1e-6))
    return tuple(chained(nodes))

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

What each field must hold (a one-line `TraceError` naming the file and the field, as
``traceEvents[i].args.In msg nelems``, otherwise; see `netsim.traces.model` for the limits):

- ``ts`` and ``dur``: finite microseconds >= 0 (``dur`` at most 1e6 s, the recording's whole span too). An
  event without them is left out and counted in `Trace.skipped` — unless it is communication (NCCL kernel,
  ``record_param_comms``, ``gloo:``, ``c10d::``), which cannot be placed without them: an error;
- a file without one complete event is an error (nothing was recorded), as is a trace with no GPU
  kernel and no communication at all (a CPU-only capture of a GPU job: the message says so);
- sizes: element counts ("In msg nelems", "Out msg nelems", "Input Dims") whole and >= 0, bytes at most
  2^53. A collective whose size is not in its args is an error — never a guessed size — except a gloo
  barrier, which moves no data (4 B, one float, as gloo's own); a missing "dtype" / "Input type" too;
- an NCCL event without "Collective name" is an error (the collective cannot be known); a name netsim does
  not replay is skipped (counted), as is a send / recv without its peer;
- ``distributedInfo``: ``rank`` and ``world_size`` whole numbers (at most 131,072 ranks), ranks of process
  groups distinct ranks of the world; the JSON nested at most 64 levels.
"""

from __future__ import annotations

import glob
import gzip
import math
import re
import zlib
from pathlib import Path

from netsim.traces.model import (MAX_BYTES, MAX_DURATION, MAX_RANKS, MAX_START, TAG_RANGE, Trace, TraceError,
                                 TraceNode, parse_json, shown, whole)

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


US = 1e-6  # seconds per microsecond (the format's unit)
MAX_DUR_US = MAX_DURATION / US
MAX_TS_US = MAX_START / US
COMM_PREFIXES = ("ncclKernel", "ncclDevKernel", "c10d::", "gloo:")
GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation")
NO_TIME = "complete event (ph X) without ts or dur (not communication: left out)"


def _load(path: Path) -> dict:
    source = str(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise TraceError(f"not a profiler trace: {str(exc).splitlines()[0][:100] if str(exc) else exc!r}",
                         source=source) from None
    data = parse_json(raw, source, bad="not a profiler trace")
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise TraceError("not a profiler trace (no traceEvents list)", source=source, field="traceEvents")
    return data


def rank_files(path: str | Path) -> list[Path]:
    """A directory (its *.json / *.json.gz), a single file, or a prefix P of files P<anything>.json[.gz]."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if re.search(r"\.json(\.gz)?$", p.name) and p.is_file())
    elif path.is_file():
        files = [path] if re.search(r"\.json(\.gz)?$", path.name) else []
    else:
        files = sorted(p for p in path.parent.glob(glob.escape(path.name) + "*")
                       if re.search(r"\.json(\.gz)?$", p.name) and p.is_file())
    if not files:
        raise TraceError("no profiler trace files (*.json, *.json.gz) found", source=str(path))
    return files


def read(path: str | Path) -> Trace:
    files = rank_files(path)
    per_rank: dict[int, tuple[TraceNode, ...]] = {}
    groups: dict[str, tuple[int, ...]] = {}
    skipped: dict[str, int] = {}
    world = None
    gpu = False  # any GPU-side event (kernel, copy) in any file
    scan = Path(path).is_dir()  # a folder may hold other JSON (execution traces, notes): those are skipped
    for f in files:
        try:
            data = _load(f)
        except TraceError:
            if not scan:
                raise
            _count(skipped, "JSON file in the folder that is not a profiler trace")
            continue
        source = str(f)
        info = data.get("distributedInfo")
        if info is None:
            info = {}
        if not isinstance(info, dict):
            raise TraceError(f"expected an object, got {shown(info)}", source=source, field="distributedInfo")
        rank = info.get("rank", 0 if len(files) == 1 else None)
        if not whole(rank):
            raise TraceError("no distributedInfo.rank: cannot tell which rank recorded it", source=source,
                             field="distributedInfo.rank")
        size = info.get("world_size", len(files))
        if not whole(size) or not 1 <= size <= MAX_RANKS:
            raise TraceError(f"expected a number of ranks, 1 to {MAX_RANKS:,}, got {shown(size)}", source=source,
                             field="distributedInfo.world_size")
        if not 0 <= rank < size:
            raise TraceError(f"rank {rank} is not one of the world's {size} ranks (0..{size - 1})", source=source,
                             field="distributedInfo.rank")
        if rank in per_rank:
            raise TraceError(f"rank {rank} recorded twice", source=source, field="distributedInfo.rank")
        if world is not None and size != world:
            raise TraceError(f"world size {size}, other files say {world}", source=source,
                             field="distributedInfo.world_size")
        world = size
        pgs = info.get("pg_config") or []
        if not isinstance(pgs, list):
            raise TraceError(f"expected a list of process groups, got {shown(pgs)}", source=source,
                             field="distributedInfo.pg_config")
        for k, pg in enumerate(pgs):
            field = f"distributedInfo.pg_config[{k}]"
            if not isinstance(pg, dict):
                raise TraceError(f"expected an object, got {shown(pg)}", source=source, field=field)
            name = str(pg.get("pg_name"))
            ranks = _ranks(pg.get("ranks") or list(range(size)), size, source, field + ".ranks")
            if groups.get(name, ranks) != ranks:
                raise TraceError(f"process group {name!r} has ranks {list(ranks)} here, {list(groups[name])} "
                                 "elsewhere", source=source, field=field)
            groups[name] = ranks
        events, seen_gpu = _events(data["traceEvents"], skipped, source)
        gpu = gpu or seen_gpu
        per_rank[rank] = _rank_nodes(rank, events, groups, size, skipped, source)
    if not per_rank:
        raise TraceError("no profiler trace among the files", source=str(path))
    missing = sorted(set(range(world or 0)) - set(per_rank))
    if missing:
        shown_missing = ", ".join(map(str, missing[:8])) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise TraceError(f"the world has {world} ranks but files for ranks {shown_missing} are missing",
                         source=str(path))
    if not gpu and not any(n.kind != "compute" for nodes in per_rank.values() for n in nodes):
        raise TraceError("no GPU kernels or collectives: was the profiler run with CUDA activities "
                         "(ProfilerActivity.CUDA), and the job's communication inside the profiled steps?",
                         source=str(path), field="traceEvents")
    return Trace(per_rank, groups, str(path), "kineto", skipped)


def _count(skipped: dict, reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


def _ranks(value, size: int, source: str, field: str) -> tuple[int, ...]:
    """A process group's ranks: a list (or its JSON text) of distinct ranks of the world."""
    if isinstance(value, str):
        value = parse_json(value, source, bad="expected a JSON list of ranks", field=field)
    if not isinstance(value, list) or not value or not all(whole(r) and 0 <= r < size for r in value) \
            or len(set(value)) != len(value):
        raise TraceError(f"expected a list of distinct ranks 0..{size - 1}, got {shown(value)}", source=source,
                         field=field)
    return tuple(value)


def _time(value, field: str, source: str, ceiling: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number) and 0 <= number <= ceiling:
            return number
    raise TraceError(f"expected finite microseconds, 0 to {ceiling:g}, got {shown(value)}", source=source, field=field)


def _events(events: list, skipped: dict, source: str) -> tuple[list[dict], bool]:
    """The complete events (``ph: "X"``), each as {i (its index), name, ts, dur (us), tid, args, cat}, and
    whether any is GPU-side. A missing ts or dur leaves a communication event unplaceable (an error) and
    any other event out (counted); a value that is not finite microseconds in range is an error."""
    out = []
    gpu = False
    for i, e in enumerate(events):
        if not isinstance(e, dict) or e.get("ph") != "X":
            continue
        name = e.get("name", "")
        name = name if isinstance(name, str) else shown(name, 80)
        comm = name.startswith(COMM_PREFIXES) or name == "record_param_comms"
        absent = [k for k in ("ts", "dur") if e.get(k) is None]
        if absent:
            if comm:
                raise TraceError(f"{name} has no {absent[0]}: a communication event cannot be placed without it",
                                 source=source, field=f"traceEvents[{i}].{absent[0]}")
            _count(skipped, NO_TIME)
            continue
        ts = _time(e["ts"], f"traceEvents[{i}].ts", source, MAX_TS_US)
        dur = _time(e["dur"], f"traceEvents[{i}].dur", source, MAX_DUR_US)
        tid = e.get("tid")
        tid = tid if isinstance(tid, (int, str)) else shown(tid)
        args = e.get("args")
        cat = e.get("cat")
        gpu = gpu or cat in GPU_CATEGORIES or name.startswith(("ncclKernel", "ncclDevKernel"))
        out.append({"i": i, "name": name, "ts": ts, "dur": dur, "tid": tid, "args": args if isinstance(args, dict)
                    else {}, "cat": cat})
    if not out:
        note = f" ({skipped[NO_TIME]:,} without ts or dur)" if skipped.get(NO_TIME) else ""
        raise TraceError(f"no complete events (ph \"X\" with ts and dur){note}: nothing was recorded", source=source,
                         field="traceEvents")
    first = min(e["ts"] for e in out)
    last = max(e["ts"] + e["dur"] for e in out)
    if (last - first) * US > MAX_DURATION:
        raise TraceError(f"the events span {(last - first) * US:.6g} s (ts {first:.17g} to {last:.17g} us), more than "
                         f"the {MAX_DURATION:g} s a recording may last", source=source, field="traceEvents[].ts")
    return out, gpu


def _size(count, elem: int, source: str, field: str, what: str) -> int:
    """Bytes of `count` elements of `elem` bytes: a whole count >= 0, the product at most 2^53."""
    if not whole(count) or count < 0:
        raise TraceError(f"{what}: expected a whole number of elements >= 0, got {shown(count)}", source=source,
                         field=field)
    if count * elem > MAX_BYTES:
        raise TraceError(f"{what}: {count:.4g} elements of {elem} B is beyond the largest size netsim represents "
                         "(2^53 bytes = 8 PiB)", source=source, field=field)
    return count * elem


def _gloo_bytes(args: dict, op: str, source: str, where: str, name: str) -> int:
    """A gloo work's bytes from its "Input Dims" (shape of the first input) and "Input type" (dtype)."""
    dims, types = args.get("Input Dims"), args.get("Input type")
    if dims is None or types is None:
        if op == "barrier":
            return 4  # a barrier moves no data: one float, as gloo's own barrier does
        key = "Input Dims" if dims is None else "Input type"
        raise TraceError(f"{name}: no {key!r} in its args, so its size cannot be known (record the trace with "
                         "record_shapes=True)", source=source, field=f"{where}.args.{key}")
    if not isinstance(types, list) or not types or not isinstance(types[0], str):
        raise TraceError(f"{name}: expected a list of input types, got {shown(types)}", source=source,
                         field=f"{where}.args.Input type")
    dtype = types[0]
    if dtype not in DTYPE_BYTES:
        raise TraceError(f"{name}: unknown dtype {dtype!r}", source=source, field=f"{where}.args.Input type")
    shape = dims[0] if isinstance(dims, list) and dims else None
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        shape = shape[0]
    if not isinstance(shape, list) or not all(whole(d) and d >= 0 for d in shape):
        raise TraceError(f"{name}: expected the input's shape (whole numbers >= 0), got {shown(dims)}", source=source,
                         field=f"{where}.args.Input Dims")
    count = 1
    for d in shape:
        count *= d
        if count > MAX_BYTES:
            break
    return _size(count, DTYPE_BYTES[dtype], source, f"{where}.args.Input Dims", name)


def _default_group(groups: dict, size: int) -> str:
    world = tuple(range(size))
    for name, ranks in groups.items():
        if ranks == world:
            return name
    groups["world"] = world
    return "world"


def _rank_nodes(rank: int, complete: list, groups: dict, size: int, skipped: dict, source: str):
    kernels = [e for e in complete if e["name"].startswith(("ncclKernel", "ncclDevKernel"))]
    comms = []  # (work start us, end us, name, node fields[, issued us])
    nccl = kernels or [e for e in complete if e["name"] == "record_param_comms"]
    if kernels:
        for e in complete:
            if e["name"] == "record_param_comms":
                _count(skipped, "record_param_comms CPU op (its GPU kernel is kept)")
    for e in nccl:
        args, where = e["args"], f"traceEvents[{e['i']}]"
        raw_name = args.get("Collective name")
        if raw_name is None:
            raise TraceError(f"{e['name']}: no 'Collective name' in its args, so the collective and its size cannot "
                             "be known (PyTorch records them from 2.1 on)", source=source,
                             field=f"{where}.args.Collective name")
        name = str(raw_name).lower()
        op = NCCL_OPS.get(name)
        if op is None:
            _count(skipped, f"NCCL event without a known collective name ({name[:40] or 'none'})")
            continue
        counts = {k: args.get(k) for k in ("In msg nelems", "Out msg nelems")}
        needed = {"all_gather": ["Out msg nelems"], "recv": ["Out msg nelems", "In msg nelems"], "barrier": []}.get(
            op, ["In msg nelems"])
        if needed and all(counts[k] is None for k in needed):
            raise TraceError(f"{e['name']} ({name}): no {needed[0]!r} in its args, so its size cannot be known",
                             source=source, field=f"{where}.args.{needed[0]}")
        dtype = args.get("dtype")
        if dtype is None and needed:
            raise TraceError(f"{e['name']} ({name}): no 'dtype' in its args, so its size cannot be known",
                             source=source, field=f"{where}.args.dtype")
        elem = DTYPE_BYTES.get(str(dtype), 0 if dtype is None else None)
        if elem is None:
            raise TraceError(f"rank {rank}: unknown dtype {shown(dtype)} in {e['name']}", source=source,
                             field=f"{where}.args.dtype")
        nbytes = {k: 0 if v is None else _size(v, elem, source, f"{where}.args.{k}", e["name"])
                  for k, v in counts.items()}
        inn, out = nbytes["In msg nelems"], nbytes["Out msg nelems"]
        group = str(args.get("Process Group Name", "")) or _default_group(groups, size)
        ranks_text = args.get("Process Group Ranks")
        if ranks_text and group not in groups:
            groups[group] = _ranks(ranks_text, size, source, f"{where}.args.Process Group Ranks")
        if op in ("send", "recv"):
            peer = args.get("Rank") if args.get("Rank") != rank else args.get("Peer")
            if not whole(peer):
                _count(skipped, f"NCCL {op} without its peer rank")
                continue
            fields = {"kind": op, "nbytes": inn if op == "send" else out or inn, "peer": peer}
        else:
            fields = {"kind": "collective", "op": op, "nbytes": out if op == "all_gather" else inn, "group": group}
        comms.append((e["ts"], e["ts"] + e["dur"], e["name"], fields))
    # gloo: the work (gloo:*) with its dtype and shape; the calls (c10d::*) give when the main thread issued
    # it and point-to-point peers. The k-th call of a kind goes with the k-th work of that kind.
    calls = sorted((e for e in complete if e["name"].startswith("c10d::")), key=lambda e: e["ts"])
    work = sorted((e for e in complete if e["name"].startswith("gloo:")), key=lambda e: e["ts"])
    main_tid = max({e["tid"] for e in calls}, key=lambda t: (sum(e["tid"] == t for e in calls), str(t))) \
        if calls else None
    calls_of: dict[str, list] = {}
    for e in calls:
        calls_of.setdefault(GLOO_OPS.get(e["name"][6:].rstrip("_"), "?"), []).append(e)
    taken: dict[str, int] = {}
    for e in work:
        kind = e["name"].split(":", 1)[1]
        op = GLOO_OPS.get(kind)
        if op is None:
            _count(skipped, f"gloo event {e['name'][:60]} (not a collective netsim replays)")
            continue
        k = taken.get(op, 0)
        taken[op] = k + 1
        call = calls_of.get(op, [])[k] if k < len(calls_of.get(op, [])) else None
        if call is not None:
            _count(skipped, "c10d:: call record (the node is its gloo work, issued at the call)")
        where = f"traceEvents[{e['i']}]"
        nbytes = _gloo_bytes(e["args"], op, source, where, e["name"])
        if op in ("send", "recv"):
            concrete = (call or {}).get("args", {}).get("Concrete Inputs")
            try:
                peer, tag = int(concrete[2]), int(concrete[3] or 0)
            except (IndexError, ValueError, TypeError, KeyError, OverflowError):
                raise TraceError(f"rank {rank}: {e['name']} without its c10d:: call naming the peer",
                                 source=source, field=f"{where}" if call is None else
                                 f"traceEvents[{call['i']}].args.Concrete Inputs") from None
            if not TAG_RANGE[0] <= tag <= TAG_RANGE[1]:
                raise TraceError(f"tag {tag}: expected a whole number that fits 32 bits", source=source,
                                 field=f"traceEvents[{call['i']}].args.Concrete Inputs")
            fields = {"kind": op, "nbytes": nbytes, "peer": peer, "tag": tag}
        else:
            if len(groups) > 1:
                raise TraceError(f"rank {rank}: gloo events name no process group and the trace defines "
                                 f"{len(groups)}", source=source, field=where)
            if op == "all_gather":
                nbytes = _size(nbytes * size, 1, source, f"{where}.args.Input Dims", e["name"])  # the gathered output
            fields = {"kind": "collective", "op": op, "nbytes": nbytes, "group": _default_group(groups, size)}
        issued = call["ts"] if call is not None else e["ts"]
        comms.append((e["ts"], e["ts"] + e["dur"], e["name"], fields, issued))
    for op, items in calls_of.items():
        for _ in items[taken.get(op, 0):]:
            _count(skipped, "c10d:: call without a recorded gloo work")
    main = sorted(e["ts"] for e in complete if e["tid"] == main_tid and not
                  e["name"].startswith(("c10d::", "gloo:"))) if main_tid is not None else []
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

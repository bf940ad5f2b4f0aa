"""MLCommons Chakra execution traces (ET): reader and writer, built on the `protobuf` package from the
format's published field numbers (the schema is declared here in code; no generated module, no vendored
.proto, no `mlc-chakra`).

A rank's file ``PREFIX.RANK.et`` (plain or gzipped) is a stream of messages, each preceded by its
length as a varint: first ``GlobalMetadata`` (version = 1, attr = 2), then one ``Node`` per message
(id 1, name 2, type 3, ctrl_deps 4, data_deps 5, start_time_micros 6, duration_micros 7, inputs 8,
outputs 9, attr 10); an ``AttributeProto`` is a name (1) and one typed value (int64 9, uint64 13,
int32 7, bool 27, string 29, double 3, lists as sub-messages). Node types: COMP 4, COMM_SEND 5, COMM_RECV
6, COMM_COLL 7 (METADATA 1, MEM_LOAD 2, MEM_STORE 3 carry no work). Collective types in ``comm_type``:
ALL_REDUCE 0, REDUCE 1, ALL_GATHER 2, GATHER 3, SCATTER 4, BROADCAST 5, ALL_TO_ALL 6, REDUCE_SCATTER 7,
REDUCE_SCATTER_BLOCK 8, BARRIER 9.

What real files hold, and what the reader does with it:
- CPU-side records of collectives (``c10d::...``, type 7 with ``is_cpu_op`` and no ``comm_type``) beside
  the GPU kernels that carry the size: skipped (counted in `Trace.skipped`), as are CPU compute ops;
- ``comm_size`` as int64 or uint64 (or int32): any integer value is read;
- send / recv nodes whose ``comm_type`` holds a node type (5 or 6): the node's own type decides;
- a zero-length message ends the stream (as Chakra's own reader does); a truncated one is an error;
- ``pg_name`` names the process group; a METADATA node whose inputs hold ``{"pg_name": ..., "ranks": ...}``
  (or none: "0" / empty means every rank) defines it.
Dependencies: ``data_deps`` and ``ctrl_deps`` both count; ones pointing at skipped nodes are followed
through to what those depended on.

Fields are held to `netsim.traces.model`'s limits where they are read (a one-line `TraceError` naming the
file and ``node ID.field``): ``comm_size`` 0 to 2^53 bytes, ``duration_micros`` at most 1e6 s,
``start_time_micros`` at most 1e10 s, ``comm_tag`` what an int32 holds; process-group ranks distinct
ranks of the trace; at most 131,072 rank files. A capture whose every node was skipped as CPU-side (no
GPU kernel, no collective with its type) is refused with its likely cause: the profiler ran without CUDA
activities.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from functools import lru_cache
from pathlib import Path

from netsim.traces.model import (MAX_BYTES, MAX_DURATION, MAX_RANKS, MAX_START, TAG_RANGE, Trace, TraceError,
                                 TraceNode, parse_json, shown, whole)

COMP, SEND, RECV, COLL, METADATA = 4, 5, 6, 7, 1
COMM_TYPES = {0: "all_reduce", 1: "reduce", 2: "all_gather", 5: "broadcast", 6: "all_to_all", 7: "reduce_scatter",
              8: "reduce_scatter", 9: "barrier"}
OP_TYPES = {"all_reduce": 0, "reduce": 1, "all_gather": 2, "broadcast": 5, "all_to_all": 6, "reduce_scatter": 7,
            "barrier": 9}
VERSION = "0.0.4"
WORLD = "world"
INT_FIELDS = ("int64_val", "uint64_val", "int32_val", "uint32_val", "sint32_val", "sint64_val", "fixed32_val",
              "fixed64_val", "sfixed32_val", "sfixed64_val")


@lru_cache(maxsize=1)
def _classes():
    """The message classes, from a schema declared in code (field numbers as published)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="netsim_chakra_et.proto", package="netsim_chakra", syntax="proto3")

    def message(name: str, fields: list[tuple], oneof: str | None = None):
        m = fd.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for fname, number, ftype, label, type_name, in_oneof in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".netsim_chakra.{type_name}"
            if in_oneof:
                f.oneof_index = 0
        return m

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    scalars = [("double", F.TYPE_DOUBLE), ("float", F.TYPE_FLOAT), ("int32", F.TYPE_INT32), ("int64", F.TYPE_INT64),
               ("uint32", F.TYPE_UINT32), ("uint64", F.TYPE_UINT64), ("sint32", F.TYPE_SINT32),
               ("sint64", F.TYPE_SINT64), ("fixed32", F.TYPE_FIXED32), ("fixed64", F.TYPE_FIXED64),
               ("sfixed32", F.TYPE_SFIXED32), ("sfixed64", F.TYPE_SFIXED64), ("bool", F.TYPE_BOOL),
               ("string", F.TYPE_STRING), ("bytes", F.TYPE_BYTES)]
    attr_fields = [("name", 1, F.TYPE_STRING, opt, None, False), ("doc_string", 2, F.TYPE_STRING, opt, None, False)]
    for k, (kind, ftype) in enumerate(scalars):
        list_name = kind.capitalize() + "List"
        message(list_name, [("values", 1, ftype, rep, None, False)])
        attr_fields.append((f"{kind}_val", 3 + 2 * k, ftype, opt, None, True))
        attr_fields.append((f"{kind}_list", 4 + 2 * k, F.TYPE_MESSAGE, opt, list_name, True))
    message("AttributeProto", attr_fields, oneof="value")
    message("IOInfo", [("values", 1, F.TYPE_STRING, opt, None, False), ("shapes", 2, F.TYPE_STRING, opt, None, False),
                       ("types", 3, F.TYPE_STRING, opt, None, False)])
    message("GlobalMetadata", [("version", 1, F.TYPE_STRING, opt, None, False),
                               ("attr", 2, F.TYPE_MESSAGE, rep, "AttributeProto", False)])
    message("Node", [("id", 1, F.TYPE_UINT64, opt, None, False), ("name", 2, F.TYPE_STRING, opt, None, False),
                     ("type", 3, F.TYPE_INT32, opt, None, False),  # an enum on the wire: the same varint
                     ("ctrl_deps", 4, F.TYPE_UINT64, rep, None, False),
                     ("data_deps", 5, F.TYPE_UINT64, rep, None, False),
                     ("start_time_micros", 6, F.TYPE_UINT64, opt, None, False),
                     ("duration_micros", 7, F.TYPE_UINT64, opt, None, False),
                     ("inputs", 8, F.TYPE_MESSAGE, opt, "IOInfo", False),
                     ("outputs", 9, F.TYPE_MESSAGE, opt, "IOInfo", False),
                     ("attr", 10, F.TYPE_MESSAGE, rep, "AttributeProto", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("netsim_chakra.GlobalMetadata")),
            get(pool.FindMessageTypeByName("netsim_chakra.Node")),
            get(pool.FindMessageTypeByName("netsim_chakra.AttributeProto")))


def _varint(data: bytes, pos: int, source: str) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise TraceError(f"truncated length prefix at byte {pos}", source=source)
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise TraceError(f"bad length prefix at byte {pos}", source=source)


def _messages(data: bytes, source: str):
    pos = 0
    while pos < len(data):
        length, pos = _varint(data, pos, source)
        if length == 0:
            return
        if pos + length > len(data):
            raise TraceError(f"truncated message at byte {pos} ({length} bytes announced, {len(data) - pos} left)",
                             source=source)
        yield data[pos:pos + length]
        pos += length


def _attrs(node) -> dict:
    out = {}
    for a in node.attr:
        which = a.WhichOneof("value")
        if which is None:
            continue
        value = getattr(a, which)
        if which.endswith("_list"):
            value = list(value.values)
        out[a.name] = value
    return out


def _int(attrs: dict, name: str) -> int | None:
    value = attrs.get(name)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value - (1 << 64) if value >= 1 << 63 else value
    return None


def rank_files(prefix: str | Path) -> dict[int, Path]:
    """`PREFIX.R.et` / `PREFIX.R.et.gz` files, by rank; ranks must run 0..N-1 without a gap."""
    prefix = Path(prefix)
    pattern = re.compile(re.escape(prefix.name) + r"\.(\d+)\.et(\.gz)?$")
    found = {}
    if prefix.parent.is_dir():
        for p in prefix.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found[int(m.group(1))] = p
    if not found:
        raise TraceError(f"no Chakra files {prefix.name}.<rank>.et in {prefix.parent}", source=str(prefix))
    if len(found) > MAX_RANKS:
        raise TraceError(f"{len(found):,} rank files: expected at most {MAX_RANKS:,}", source=str(prefix))
    if max(found) >= len(found):  # a gap: name the first few missing ranks (without counting to a huge one)
        missing = [r for r in range(len(found) + 1) if r not in found][:5]
        more = " and more" if max(found) + 1 - len(found) > len(missing) else ""
        raise TraceError(f"rank files missing: {', '.join(f'{prefix.name}.{r}.et' for r in missing)}{more}",
                         source=str(prefix))
    return dict(sorted(found.items()))


def read(prefix: str | Path) -> Trace:
    """All ranks' files of a Chakra ET prefix as one `Trace`."""
    metadata_cls, node_cls, _ = _classes()
    files = rank_files(prefix)
    world = tuple(files)
    nodes: dict[int, tuple[TraceNode, ...]] = {}
    groups: dict[str, tuple[int, ...]] = {WORLD: world}
    skipped: dict[str, int] = {}
    from google.protobuf.message import DecodeError

    for rank, path in files.items():
        source = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise TraceError(f"cannot be read: {exc.strerror or exc}", source=source) from None
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise TraceError(f"broken gzip data ({exc})", source=source) from None
        messages = _messages(raw, source)
        try:
            first = next(messages, None)
            if first is None:
                raise TraceError("empty file (no global metadata)", source=source)
            metadata_cls.FromString(first)
            parsed = [node_cls.FromString(m) for m in messages]
        except (DecodeError, ValueError, RecursionError) as exc:
            detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
            raise TraceError(f"not a Chakra ET stream ({detail})", source=source) from None
        nodes[rank] = _convert(rank, parsed, groups, skipped, source)
    cpu = skipped.get(CPU_OP, 0) + skipped.get(CPU_COLL, 0)
    if not any(nodes.values()) and cpu:
        raise TraceError(f"no GPU kernels or collectives, only {cpu:,} CPU-side records (skipped): was the profiler "
                         "run with CUDA activities?", source=str(prefix))
    for name, members in groups.items():
        if not set(members) <= set(world):
            raise TraceError(f"process group {name!r} names ranks {sorted(set(members) - set(world))[:8]} that have "
                             f"no file (ranks 0..{len(world) - 1})", source=str(prefix), field="pg_name")
    return Trace(nodes, groups, str(prefix), "chakra", skipped)


CPU_OP = "CPU-side operator (its GPU work is recorded separately)"
CPU_COLL = "CPU-side record of a collective without comm_type (the GPU kernel carries the size)"


def _micros(node, name: str, ceiling: float, source: str) -> float | None:
    """`node`'s `name` (start_time_micros, duration_micros) in seconds, None when 0 or absent."""
    value = getattr(node, name)
    if value > ceiling / 1e-6:
        raise TraceError(f"{value:,} us: expected at most {ceiling:g} s", source=source, field=f"node {node.id}.{name}")
    return value * 1e-6 if value else None


def _convert(rank: int, parsed, groups: dict, skipped: dict, source: str) -> tuple[TraceNode, ...]:
    kept: dict[int, TraceNode] = {}
    deps_of: dict[int, list[int]] = {}
    order: list[int] = []
    for node in parsed:
        attrs = _attrs(node)
        deps_of[node.id] = list(node.data_deps) + [d for d in node.ctrl_deps if d not in node.data_deps]
        kind = None
        kw: dict = {}
        if node.type == METADATA:
            _metadata_group(node, groups, source)
        elif node.type == COMP:
            if attrs.get("is_cpu_op") is True:
                skipped[CPU_OP] = skipped.get(CPU_OP, 0) + 1
            else:
                kind, kw = "compute", {"duration": _micros(node, "duration_micros", MAX_DURATION, source) or 0.0}
        elif node.type == COLL:
            comm = _int(attrs, "comm_type")
            if comm is None:
                skipped[CPU_COLL] = skipped.get(CPU_COLL, 0) + 1
            elif comm not in COMM_TYPES:
                raise TraceError(f"rank {rank} node {node.id}: collective type {comm} (gather / scatter) is not "
                                 "supported", source=source)
            else:
                size = _size(attrs, node, source)
                pg = attrs.get("pg_name") or WORLD
                pg = WORLD if pg in ("0", "") and pg not in groups else pg
                kind, kw = "collective", {"op": COMM_TYPES[comm], "nbytes": size, "group": str(pg),
                                          "duration": _micros(node, "duration_micros", MAX_DURATION, source)}
        elif node.type in (SEND, RECV):
            size = _int(attrs, "comm_size")
            peer = _int(attrs, "comm_dst" if node.type == SEND else "comm_src")
            if size is None or peer is None:
                raise TraceError(f"rank {rank} node {node.id}: {'send' if node.type == SEND else 'recv'} without "
                                 f"comm_size and {'comm_dst' if node.type == SEND else 'comm_src'}", source=source)
            size = _size(attrs, node, source)
            tag = _int(attrs, "comm_tag") or 0
            if not TAG_RANGE[0] <= tag <= TAG_RANGE[1]:
                raise TraceError(f"expected a tag that fits 32 bits, got {tag}", source=source,
                                 field=f"node {node.id}.comm_tag")
            kind, kw = ("send" if node.type == SEND else "recv"), {
                "nbytes": size, "peer": peer, "tag": tag,
                "duration": _micros(node, "duration_micros", MAX_DURATION, source)}
        else:
            reason = f"node type {node.type} (metadata / memory: no work to replay)"
            skipped[reason] = skipped.get(reason, 0) + 1
        if kind is not None:
            if node.id in kept:
                raise TraceError(f"rank {rank}: node id {node.id} appears twice", source=source)
            kept[node.id] = TraceNode(rank, node.id, kind, node.name,
                                      start=_micros(node, "start_time_micros", MAX_START, source), **kw)
            order.append(node.id)
    memo: dict[int, frozenset] = {}  # skipped node -> the kept nodes it stands for

    def through(d: int) -> frozenset:
        """The kept nodes a skipped node's dependencies lead to (iteratively, each node resolved once)."""
        stack, seen = [d], set()
        while stack:
            x = stack[-1]
            if x in memo:
                stack.pop()
                continue
            pending = [y for y in deps_of.get(x, ()) if y not in kept and y in deps_of and y not in memo
                       and y not in seen]
            if pending:
                seen.update(pending)
                stack.extend(pending)
                continue
            out = set()
            for y in deps_of.get(x, ()):
                if y in kept:
                    out.add(y)
                elif y in memo:
                    out |= memo[y]
            memo[x] = frozenset(out)
            stack.pop()
        return memo[d]

    resolved: dict[int, tuple[int, ...]] = {}
    for i in order:
        out = set()
        for d in deps_of.get(i, ()):
            if d in kept:
                out.add(d)
            elif d in deps_of:
                out |= through(d)
        resolved[i] = tuple(sorted(out - {i}))
    return tuple(TraceNode(**{**kept[i].__dict__, "deps": resolved[i]}) for i in order)


def _size(attrs: dict, node, source: str) -> int:
    size = _int(attrs, "comm_size")
    if size is None or not 0 <= size <= MAX_BYTES:
        raise TraceError(f"expected a size in whole bytes, 0 to 2^53 (8 PiB), got {shown(attrs.get('comm_size'))}",
                         source=source, field=f"node {node.id}.comm_size")
    return size


def _metadata_group(node, groups: dict, source: str) -> None:
    """A process group from a METADATA node's inputs (JSON text that is not a group definition: ignored)."""
    text = node.inputs.values if node.HasField("inputs") else ""
    try:
        value = parse_json(text, source, field=f"node {node.id}.inputs") if text else None
    except TraceError as exc:
        if exc.detail.startswith("nested deeper"):
            raise
        return
    entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    for entry in entries:
        if isinstance(entry, dict) and "pg_name" in entry and isinstance(entry.get("ranks"), list):
            ranks = entry["ranks"]
            if not ranks or not all(whole(r) and 0 <= r < MAX_RANKS for r in ranks) or len(set(ranks)) != len(ranks):
                raise TraceError(f"process group {shown(entry['pg_name'])}: expected distinct ranks, got "
                                 f"{shown(ranks)}", source=source, field=f"node {node.id}.inputs")
            groups[str(entry["pg_name"])] = tuple(ranks)


def write(trace: Trace, prefix: str | Path) -> list[Path]:
    """One `PREFIX.R.et` file per rank: metadata, a METADATA node per non-world process group, then the
    nodes (collectives with comm_type, comm_size as int64 and pg_name; sends and receives with comm_src,
    comm_dst, comm_tag; dependencies in data_deps). A ``send_recv`` collective, which Chakra has no type
    for, is written as a send on the group's rank 0 and a receive on its rank 1, tagged after the group."""
    metadata_cls, node_cls, attr_cls = _classes()
    prefix = Path(prefix)
    written = []

    def attr(name: str, **value):
        return attr_cls(name=name, **value)

    for rank in trace.ranks:
        parts = [metadata_cls(version=VERSION, attr=[attr("schema", string_val="netsim")]).SerializeToString()]
        next_id = max((n.id for n in trace.nodes[rank]), default=-1) + 1
        for name, members in sorted(trace.groups.items()):
            if name != WORLD:
                meta = node_cls(id=next_id, name=f"process_group:init {name}", type=METADATA)
                meta.inputs.values = json.dumps({"pg_name": name, "ranks": list(members)})
                parts.append(meta.SerializeToString())
                next_id += 1
        for n in trace.nodes[rank]:
            node = node_cls(id=n.id, name=n.name, data_deps=list(n.deps))
            if n.start is not None:
                node.start_time_micros = int(round(n.start * 1e6))
            if n.duration is not None:
                node.duration_micros = int(round(n.duration * 1e6))
            if n.kind == "compute":
                node.type = COMP
                node.attr.append(attr("is_cpu_op", bool_val=False))
            elif n.kind == "collective" and n.op == "send_recv":  # Chakra has none: the group's rank 0 sends
                first, second = trace.groups[n.group][:2]
                node.type = SEND if rank == first else RECV
                node.attr.extend([attr("is_cpu_op", bool_val=False), attr("comm_size", int64_val=n.nbytes),
                                  attr("comm_src", int32_val=first), attr("comm_dst", int32_val=second),
                                  attr("comm_tag", int32_val=zlib.crc32(n.group.encode()) & 0x3FFFFFFF)])
            elif n.kind == "collective":
                node.type = COLL
                node.attr.extend([attr("is_cpu_op", bool_val=False), attr("comm_type", int64_val=OP_TYPES[n.op]),
                                  attr("comm_size", int64_val=n.nbytes), attr("pg_name", string_val=n.group)])
            else:
                node.type = SEND if n.kind == "send" else RECV
                src, dst = (rank, n.peer) if n.kind == "send" else (n.peer, rank)
                node.attr.extend([attr("is_cpu_op", bool_val=False), attr("comm_size", int64_val=n.nbytes),
                                  attr("comm_src", int32_val=src), attr("comm_dst", int32_val=dst),
                                  attr("comm_tag", int32_val=n.tag)])
            parts.append(node.SerializeToString())
        path = prefix.parent / f"{prefix.name}.{rank}.et"
        with path.open("wb") as f:
            for p in parts:
                f.write(_encode_varint(len(p)) + p)
        written.append(path)
    return written


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

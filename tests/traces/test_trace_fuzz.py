"""Fuzzing the trace readers: generated profiler JSON, ASTRA-sim text, Chakra ET and netsim JSON Lines /
Parquet documents, valid and subtly invalid (a field replaced by junk or removed, bytes flipped or cut,
nesting past the limit). The property, for every input: reading gives a program that validates, or a
`TraceError` whose one-line message starts with the file it names (the path given, or one of the rank
files under it) — never another exception; and `netsim trace show` exits 0 (and says "valid") or 2 (one
line on stderr), never a traceback.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings, strategies as st

from netsim.cli import main
from netsim.errors import ConfigError
from netsim.traces import Trace, TraceError, TraceNode, chakra, load_trace, own

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

JUNK = st.sampled_from([-1, -5700, 0, 1e300, -1e-9, float("nan"), float("inf"), float("-inf"), 10**27, 2**53 + 1,
                        2**64, "", "12", "abc", True, False, None, [], {}, [[1]], [[-3]], [[10**27]], {"a": 1},
                        "x" * 70])


def holds(target: Path, *, npus: int | None = None, format: str = "auto") -> None:
    """The property, for the reader and for the CLI."""
    try:
        trace = load_trace(target, npus=npus, format=format)
    except TraceError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert exc.source and exc.source.startswith(str(target)) and message.startswith(exc.source), message
    else:
        assert isinstance(trace, Trace)
        trace.validate()
        assert any(n.kind != "compute" or n.duration for n in trace.all_nodes())
    out, err = io.StringIO(), io.StringIO()
    argv = ["trace", "show", str(target)] + (["--npus", str(npus)] if npus else []) + \
        (["--format", format] if format != "auto" else [])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code in (0, 2), (code, err.getvalue())
    if code == 0:
        assert "— valid" in out.getvalue() and not err.getvalue()
    else:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"netsim: error: {target}"), err.getvalue()
        assert "valid" not in out.getvalue()


def _paths(doc) -> list[tuple]:
    """Every path (keys / indices) into a JSON document, containers included."""
    out, stack = [], [((), doc)]
    while stack:
        path, value = stack.pop()
        out.append(path)
        if isinstance(value, dict):
            stack.extend((path + (k,), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((path + (i,), v) for i, v in enumerate(value))
    return sorted(out, key=repr)


@st.composite
def mutated(draw, doc):
    """`doc`, or `doc` with one field replaced by junk, removed, or nested too deep."""
    how = draw(st.sampled_from(["keep", "junk", "junk", "junk", "drop", "deep"]))
    if how == "keep":
        return doc
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if how == "drop":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    elif how == "deep":
        value = []
        for _ in range(draw(st.sampled_from([63, 66, 300]))):
            value = [value]
        parent[path[-1]] = value
    else:
        parent[path[-1]] = draw(JUNK)
    return doc


# --- PyTorch profiler (Kineto) JSON ------------------------------------------------------------------------

def _event(name, ts, dur, tid=1, cat="cpu_op", args=None):
    e = {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid, "cat": cat}
    if args is not None:
        e["args"] = args
    return e


@st.composite
def profiler_docs(draw, rank: int, world: int, flavour: str, n: int, message: bool):
    info = {"backend": flavour, "rank": rank, "world_size": world,
            "pg_config": [{"pg_name": "0", "ranks": list(range(world))}]}
    events, t = [_event("aten::mm", 0, 50)], 50
    for k in range(n):
        op = ["allreduce", "_allgather_base", "broadcast"][k % 3] if flavour == "nccl" else "all_reduce"
        if flavour == "nccl":
            args = {"Collective name": op, "In msg nelems": 1000, "Out msg nelems": 1000 * (1 + (op[1] == "a")),
                    "dtype": "Float", "Process Group Name": "0", "Process Group Ranks": json.dumps(list(range(world)))}
            events.append(_event("record_param_comms", t, 5, args=dict(args)))
            events.append(_event("ncclDevKernel_Generic", t + 10, 40, tid=7, cat="kernel", args=args))
        else:
            events.append(_event("c10d::allreduce_", t, 5))
            events.append(_event("gloo:all_reduce", t + 5, 40, tid=2, args={"Input Dims": [[1000]],
                                                                             "Input type": ["float"]}))
        events.append(_event("aten::relu", t + 60, 30))
        t += 100
    if world == 2 and message:  # a message from rank 0 to rank 1
        kind = "send" if rank == 0 else "recv"
        if flavour == "nccl":
            args = {"Collective name": kind, "In msg nelems": 256, "Out msg nelems": 256, "dtype": "Half",
                    "Rank": rank, "Peer": 1 - rank}
            events.append(_event("ncclDevKernel_SendRecv", t, 20, tid=7, cat="kernel", args=args))
        else:
            events.append(_event(f"c10d::{kind}" + ("_" if kind == "recv" else ""), t, 5,
                                 args={"Concrete Inputs": ["", "", str(1 - rank), "5"]}))
            events.append(_event(f"gloo:{kind}", t + 5, 20, tid=2, args={"Input Dims": [[16, 16]],
                                                                          "Input type": ["c10::Half"]}))
        events.append(_event("aten::relu", t + 30, 10))
    return draw(mutated({"traceEvents": events, "distributedInfo": info}))


@FUZZ
@given(data=st.data())
def test_profiler_json(data):
    world = data.draw(st.sampled_from([1, 2]))
    flavour = data.draw(st.sampled_from(["nccl", "gloo"]))
    n = data.draw(st.integers(0, 3))
    message = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as tmp:
        for rank in range(world):
            doc = data.draw(profiler_docs(rank, world, flavour, n, message))
            text = json.dumps(doc).encode()
            cut = data.draw(st.sampled_from([None, None, None, "truncate", "gzip", "flip"]))
            if cut == "truncate":
                text = text[: data.draw(st.integers(0, len(text)))]
            elif cut == "gzip":
                text = gzip.compress(text)
            elif cut == "flip":
                i = data.draw(st.integers(0, len(text) - 1))
                text = text[:i] + bytes([text[i] ^ 0x5A]) + text[i + 1:]
            (Path(tmp) / f"k.{rank}.json").write_bytes(text)
        holds(Path(tmp) / "k.")


# --- ASTRA-sim / SimAI text -----------------------------------------------------------------------------------

TOKENS = st.sampled_from(["0", "1", "-1", "-5", "1000", "1e3", "abc", "", "1000000000000000000000000",
                          "2000000000000000", "ALLREDUCE", "NONE", "BROADCAST", "ALLTOALL_EP", "9007199254740993"])


@FUZZ
@given(data=st.data())
def test_astra_text(data):
    kind = data.draw(st.sampled_from(["DATA", "MODEL", "MICRO", "HYBRID_TRANSFORMER", "HYBRID_DLRM", "GARBAGE"]))
    head = [kind]
    if kind.startswith("HYBRID"):
        head += ["model_parallel_NPU_group:", data.draw(st.sampled_from(["2", "0", "-2", "3", "x"]))]
    if data.draw(st.booleans()):
        head += ["all_gpus:", data.draw(st.sampled_from(["4", "0", "-4", "1000000000", "4.5"]))]
    layers = data.draw(st.integers(0, 3))
    lines = [" ".join(head), str(layers if data.draw(st.integers(0, 5)) else data.draw(TOKENS))]
    comm = st.sampled_from(["ALLREDUCE", "ALLGATHER", "REDUCESCATTER", "ALLTOALL", "NONE"])
    for l in range(layers):
        row = [f"layer{l}", "-1"]
        for _ in range(3):
            row += [str(data.draw(st.integers(0, 10**6))), data.draw(comm), str(data.draw(st.integers(0, 2**20)))]
        row.append("10")
        if data.draw(st.integers(0, 3)) == 0:  # subtly invalid: one token replaced, or the line cut short
            if data.draw(st.booleans()):
                row[data.draw(st.integers(0, 11))] = data.draw(TOKENS) or "0"
            else:
                row = row[: data.draw(st.integers(1, 11))]
        lines.append(" ".join(row))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.txt"
        path.write_text("\n".join(lines) + "\n")
        holds(path, npus=data.draw(st.sampled_from([None, None, 2, 4])))


# --- Chakra ET --------------------------------------------------------------------------------------------

def _program(n: int, size: int, duration: float) -> Trace:
    nodes = {}
    for r in (0, 1):
        seq = [TraceNode(r, 0, "compute", "fwd", duration=duration, start=0.0)]
        for k in range(n):
            seq.append(TraceNode(r, len(seq), "collective", op="all_reduce", nbytes=size, group="world",
                                 deps=(len(seq) - 1,)))
        seq.append(TraceNode(r, len(seq), "send" if r == 0 else "recv", nbytes=size, peer=1 - r, tag=3,
                             deps=(len(seq) - 1,)))
        nodes[r] = tuple(seq)
    return Trace(nodes, {"world": (0, 1), "pair": (0, 1)}, "fuzz")


@FUZZ
@given(data=st.data())
def test_chakra_et(data):
    trace = _program(data.draw(st.integers(0, 3)), data.draw(st.sampled_from([0, 1, 4096, 2**53])),
                     data.draw(st.sampled_from([0.0, 1e-3])))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "c"
        files = chakra.write(trace, prefix)
        victim = data.draw(st.sampled_from(files))
        raw = victim.read_bytes()
        how = data.draw(st.sampled_from(["keep", "flip", "truncate", "insert", "node", "gzip", "gap"]))
        if how == "flip":
            for _ in range(data.draw(st.integers(1, 4))):
                i = data.draw(st.integers(0, len(raw) - 1))
                raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1:]
        elif how == "truncate":
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
        elif how == "insert":
            i = data.draw(st.integers(0, len(raw)))
            raw = raw[:i] + data.draw(st.binary(min_size=1, max_size=12)) + raw[i:]
        elif how == "node":  # a well-formed node with fields out of range
            _, node_cls, attr_cls = chakra._classes()
            node = node_cls(id=data.draw(st.sampled_from([0, 99, 2**64 - 1])), name="odd",
                            type=data.draw(st.sampled_from([4, 5, 6, 7, 1, 2, 99])),
                            duration_micros=data.draw(st.sampled_from([0, 10, 2**63, 2**64 - 1])),
                            start_time_micros=data.draw(st.sampled_from([0, 2**63])),
                            data_deps=data.draw(st.sampled_from([[], [0], [12345]])))
            for name in data.draw(st.lists(st.sampled_from(["comm_type", "comm_size", "comm_src", "comm_dst",
                                                            "comm_tag", "is_cpu_op", "pg_name"]), max_size=4)):
                value = data.draw(st.sampled_from([0, 1, 7, 42, -1, 2**53 + 1, 2**62]))
                node.attr.append(attr_cls(name=name, **({"string_val": str(value)} if name == "pg_name" else
                                                         {"bool_val": bool(value)} if name == "is_cpu_op" else
                                                         {"int64_val": value})))
            if data.draw(st.booleans()):
                node.inputs.values = data.draw(st.sampled_from(['{"pg_name": "g", "ranks": [0, 7]}', "[" * 200,
                                                                "[" * 70 + "]" * 70, '{"pg_name": "g", "ranks": []}']))
            body = node.SerializeToString()
            raw = raw + chakra._encode_varint(len(body)) + body
        elif how == "gzip":
            raw = gzip.compress(raw)[: data.draw(st.sampled_from([None, 20]))]
        elif how == "gap":
            victim.rename(prefix.parent / "c.7.et")
        if how != "gap":
            victim.write_bytes(raw)
        holds(prefix)


# --- netsim's own format: JSON Lines and Parquet ----------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_netsim_jsonl(data):
    trace = _program(data.draw(st.integers(0, 2)), 4096, 1e-3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        own.write(trace, path)
        lines = path.read_text().splitlines()
        docs = [json.loads(line) for line in lines]
        k = data.draw(st.integers(0, len(docs) - 1))
        docs[k] = data.draw(mutated(docs[k]))
        text = "\n".join(json.dumps(d) for d in docs)
        if data.draw(st.integers(0, 5)) == 0:
            text = text[: data.draw(st.integers(0, len(text)))]
        path.write_text(text)
        holds(path)


@FUZZ
@given(data=st.data())
def test_netsim_parquet(data):
    trace = _program(data.draw(st.integers(0, 2)), 4096, 1e-3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        frame = own.to_frame(trace)
        header = data.draw(mutated(own._header(trace)))
        column = data.draw(st.sampled_from([None, "rank", "id", "kind", "size_B", "duration_s", "deps", "tag", "peer",
                                            "group", "op"]))
        if column is not None:
            value = data.draw(st.sampled_from([None, -1, 2**62, 1.5, float("nan"), float("inf"), 1e300, "x", [7]]))
            row = data.draw(st.integers(0, len(frame) - 1))
            values = frame[column].to_list()
            values[row] = value
            try:
                series = pl.Series(column, values, strict=False)
                if series.dtype != pl.Object:  # one Parquet can hold
                    frame = frame.with_columns(series)
            except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
                pass  # polars cannot hold it in any column: keep the frame
        frame.write_parquet(path, metadata={"netsim.trace": json.dumps(header)})
        if data.draw(st.integers(0, 4)) == 0:
            raw = path.read_bytes()
            i = data.draw(st.integers(0, len(raw) - 1))
            path.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
        holds(path)


def test_the_property_is_checked_against_real_errors(tmp_path):
    """The helper itself: an invalid trace passes it only as a TraceError naming the file."""
    (tmp_path / "bad.json").write_text('{"traceEvents": []}')
    try:
        load_trace(tmp_path / "bad.json")
    except ConfigError as exc:
        assert exc.source == str(tmp_path / "bad.json") and exc.field == "traceEvents"
    else:
        raise AssertionError("an empty profiler trace was read")
    holds(tmp_path / "bad.json")


def test_every_single_byte_corruption_of_a_parquet_trace(tmp_path, capfd):
    """Each byte of a small Parquet trace inverted in turn (polars panics on some of these): read, or a
    one-line TraceError naming the file — and nothing printed on stderr by polars' panic handler."""
    good = tmp_path / "good.parquet"
    own.write(_program(1, 4096, 1e-3), good)
    raw = good.read_bytes()
    bad = tmp_path / "t.parquet"
    outcomes = {"read": 0, "refused": 0}
    for i in range(len(raw)):
        bad.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
        try:
            load_trace(bad)
        except TraceError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(bad))
            outcomes["refused"] += 1
        else:
            outcomes["read"] += 1
    assert outcomes["refused"] > len(raw) // 2 and outcomes["read"] > 0
    assert capfd.readouterr().err == ""

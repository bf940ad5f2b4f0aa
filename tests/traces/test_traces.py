"""Trace readers on the shipped recordings, writers' round trips, replay closed forms, rescaling, errors."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from netsim.cli import main
from netsim.collectives import ring_all_reduce_time
from netsim.topology import full_mesh, load_topology
from netsim.traces import Trace, TraceError, TraceNode, chakra, load_trace, own
from netsim.traces.model import summary
from netsim.traces.replay import replay, rescale

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "traces"


def graph(trace):
    """What replay uses, per rank: kind, op, bytes, group, peer, tag, dependencies, duration to 1 us."""
    return {r: [(n.id, n.kind, n.op, n.nbytes, n.group, n.peer, n.tag, n.deps,
                 None if n.duration is None else round(n.duration, 6)) for n in trace.nodes[r]] for r in trace.ranks}


def test_profiler_reader_on_the_ddp_recording():
    t = load_trace(TRACES / "ddp2" / "kineto")
    assert t.format == "kineto" and t.ranks == [0, 1]
    s = summary(t)
    # DDP of 4 Linear(256, 256) layers in 0.25 MB buckets: one bucket per layer, 65,792 fp32 = 263,168 B
    ar = [c for c in s["collectives"] if c["op"] == "all_reduce"]
    assert ar == [{"op": "all_reduce", "group": "0", "ranks": 2, "size_B": 263168, "calls_per_rank": 8}]
    assert s["skipped"]["c10d:: call record (the node is its gloo work, issued at the call)"] == 18
    # the buckets are reduced while the backward goes on: some compute waits on a collective that is not
    # the node just before it
    nodes = t.nodes[0]
    kind = {n.id: n.kind for n in nodes}
    assert any(n.kind == "compute" and any(kind[d] == "collective" and d != n.id - 1 for d in n.deps) for n in nodes)


def test_profiler_reader_on_tensor_and_pipeline_parallel_recordings():
    tp = summary(load_trace(TRACES / "tp2"))
    # column- then row-parallel MLP: all-reduce of the output (128 x 512 fp32) forward, of the input gradient
    # backward, 2 iterations
    assert {"op": "all_reduce", "group": "0", "ranks": 2, "size_B": 128 * 512 * 4, "calls_per_rank": 4} in tp["collectives"]
    pp = load_trace(TRACES / "pp2" / "kineto")
    sends = [n for n in pp.all_nodes() if n.kind == "send"]
    assert len(sends) == 16 and {n.nbytes for n in sends} == {32 * 512 * 4}
    assert sorted({n.tag for n in sends if n.rank == 0}) == [0, 1, 2, 3]  # activations forward
    assert sorted({n.tag for n in sends if n.rank == 1}) == [100, 101, 102, 103]  # gradients back
    assert all(n.peer == 1 - n.rank for n in sends)


@pytest.mark.parametrize("job", ["ddp2", "ddp4", "tp2", "pp2"])
def test_chakra_files_written_by_netsim_read_back_as_the_same_graph(job, tmp_path):
    kineto = load_trace(TRACES / job / "kineto")
    shipped = load_trace(TRACES / job / "chakra")
    assert shipped.format == "chakra" and graph(shipped) == graph(kineto)
    chakra.write(kineto, tmp_path / "again")
    assert graph(load_trace(tmp_path / "again")) == graph(kineto)
    for name in ("t.parquet", "t.jsonl"):
        own.write(kineto, tmp_path / name)
        back = load_trace(tmp_path / name)
        assert graph(back) == graph(kineto) and back.groups == kineto.groups


def _raw_node(node_cls, attr_cls, **kw):
    attrs = kw.pop("attrs", [])
    node = node_cls(**kw)
    for name, field, value in attrs:
        node.attr.append(attr_cls(name=name, **{field: value}))
    return node.SerializeToString()


def test_chakra_reader_handles_what_converted_traces_hold(tmp_path):
    # Like the public converted traces: a CPU-side c10d record of a collective (type 7, is_cpu_op, no
    # comm_type) next to the GPU kernel that carries the size (comm_size as uint64 here), a dependency on
    # the skipped record that must resolve to what it depended on, send/recv nodes with node-type values
    # in comm_type, then a zero-length message that ends the stream.
    meta_cls, node_cls, attr_cls = chakra._classes()
    frames = [meta_cls(version="0.0.4").SerializeToString()]
    for rank in (0, 1):
        nodes = [
            _raw_node(node_cls, attr_cls, id=216, name="aten::mm", type=4, duration_micros=50,
                      attrs=[("is_cpu_op", "bool_val", False)]),
            _raw_node(node_cls, attr_cls, id=432, name="c10d::broadcast_", type=7, data_deps=[216],
                      attrs=[("is_cpu_op", "bool_val", True)]),
            _raw_node(node_cls, attr_cls, id=435, name="ncclKernel_Broadcast", type=7, data_deps=[432],
                      duration_micros=28, attrs=[("is_cpu_op", "bool_val", False), ("comm_type", "int64_val", 5),
                                                 ("comm_size", "uint64_val", 212480)]),
            _raw_node(node_cls, attr_cls, id=436, name="send" if rank == 0 else "recv", type=5 if rank == 0 else 6,
                      data_deps=[435], attrs=[("comm_type", "int64_val", 5 if rank == 0 else 6),
                                              ("comm_size", "int64_val", 4096), ("comm_dst", "int32_val", 1),
                                              ("comm_src", "int32_val", 0), ("comm_tag", "int32_val", 7)]),
        ]
        data = b"".join(chakra._encode_varint(len(f)) + f for f in frames + nodes) + b"\x00" + b"ignored after the end"
        (tmp_path / f"job.{rank}.et").write_bytes(gzip.compress(data) if rank else data)
    t = load_trace(tmp_path / "job")
    n0 = {n.id: n for n in t.nodes[0]}
    assert set(n0) == {216, 435, 436}
    assert n0[435].op == "broadcast" and n0[435].nbytes == 212480 and n0[435].deps == (216,)
    assert n0[436].kind == "send" and n0[436].peer == 1 and n0[436].tag == 7 and n0[436].nbytes == 4096
    assert {n.kind for n in t.nodes[1]} == {"compute", "collective", "recv"}
    assert t.skipped == {"CPU-side record of a collective without comm_type (the GPU kernel carries the size)": 2}


def test_astra_text_workloads(tmp_path):
    data = tmp_path / "resnet.txt"
    data.write_text("DATA\n2\nconv1 -1 13003 NONE 0 12864 NONE 0 32291 ALLREDUCE 37632 3229\n"
                    "fc -1 3456 NONE 0 3648 NONE 0 7488 ALLREDUCE 65536 749\n")
    t = load_trace(data, npus=4)
    s = summary(t)
    assert s["ranks"] == 4 and {c["size_B"] for c in s["collectives"]} == {37632, 65536}
    assert s["compute_s_per_rank"] == pytest.approx((13003 + 12864 + 32291 + 3456 + 3648 + 7488) * 1e-9)
    hybrid = tmp_path / "transformer.txt"
    hybrid.write_text("HYBRID_TRANSFORMER model_parallel_NPU_group: 2\n2\n"
                      "Embedding -1 300 ALLGATHER 8388608 1 NONE 0 1 NONE 0 10\n"
                      "Q1 -1 3145728 NONE 0 2162688 ALLREDUCE 8388608 2228224 ALLREDUCE 33554432 10\n")
    h = load_trace(hybrid, npus=8)
    assert h.groups["tp1"] == (2, 3) and h.groups["dp1"] == (1, 3, 5, 7)
    kinds = {(n.op, n.group[:2]) for n in h.nodes[3] if n.kind == "collective"}
    assert kinds == {("all_gather", "tp"), ("all_reduce", "tp"), ("all_reduce", "dp")}
    with pytest.raises(TraceError, match="how many ranks"):
        load_trace(data)


def test_replay_of_a_two_rank_trace_equals_its_closed_form():
    # rank 0: 1 ms compute, send 1 MB to rank 1, 2 ms compute, all-reduce 8 MB
    # rank 1: receive, 0.5 ms compute, all-reduce 8 MB
    bw, lat = 10e9, 5e-6
    nodes = {0: (TraceNode(0, 0, "compute", duration=1e-3), TraceNode(0, 1, "send", nbytes=10**6, peer=1, deps=(0,)),
                 TraceNode(0, 2, "compute", duration=2e-3, deps=(1,)),
                 TraceNode(0, 3, "collective", op="all_reduce", nbytes=8 * 10**6, group="world", deps=(2,))),
             1: (TraceNode(1, 0, "recv", nbytes=10**6, peer=0), TraceNode(1, 1, "compute", duration=0.5e-3, deps=(0,)),
                 TraceNode(1, 2, "collective", op="all_reduce", nbytes=8 * 10**6, group="world", deps=(1,)))}
    trace = Trace(nodes, {"world": (0, 1)}, "hand-made").validate()
    result = replay(trace, full_mesh(2, bw, lat))
    expected = 1e-3 + 10**6 / bw + lat + 2e-3 + ring_all_reduce_time(2, 8 * 10**6, lat, bw)
    assert result.time_s == pytest.approx(expected, rel=1e-9)
    half = replay(trace, full_mesh(2, bw, lat), scale_compute=0.5)
    assert half.time_s == pytest.approx(expected - 1.5e-3, rel=1e-9)


def test_rescaling_keeps_per_rank_bytes_by_the_rule():
    t = load_trace(TRACES / "ddp2" / "kineto")
    big = rescale(t, 8).validate()
    assert big.ranks == list(range(8)) and big.groups == {"world": tuple(range(8))}
    for r in range(8):
        assert [n.nbytes for n in big.nodes[r] if n.kind == "collective"] == \
            [n.nbytes for n in t.nodes[r % 2] if n.kind == "collective"]
    gather = Trace({r: (TraceNode(r, 0, "collective", op="all_gather", nbytes=4000, group="w"),) for r in (0, 1)},
                   {"w": (0, 1)}).validate()
    assert rescale(gather, 4).nodes[3][0].nbytes == 8000  # 4 blocks of the recorded 2,000-byte block
    with pytest.raises(TraceError, match="point-to-point"):
        rescale(load_trace(TRACES / "pp2"), 4)
    result = replay(big, load_topology(ROOT / "topologies" / "rail64.yaml"))
    assert result.ranks == 8 and len(result.collectives) == 9


def test_inconsistent_traces_are_refused():
    def trace(b1, group=(0, 1)):
        return Trace({0: (TraceNode(0, 0, "collective", op="all_reduce", nbytes=100, group="g"),),
                      1: (TraceNode(1, 0, "collective", op="all_reduce", nbytes=b1, group="g"),)}, {"g": group})

    with pytest.raises(TraceError, match="call 0: rank 0 does all_reduce of 100 B, rank 1 all_reduce of 200 B"):
        trace(200).validate()
    with pytest.raises(TraceError, match="not in the trace"):
        trace(100, (0, 1, 2)).validate()
    cyc = Trace({0: (TraceNode(0, 0, "compute", duration=1.0, deps=(1,)), TraceNode(0, 1, "compute", duration=1.0,
                                                                                       deps=(0,)))}, {})
    with pytest.raises(TraceError, match="cycle"):
        cyc.validate()
    lonely = Trace({0: (TraceNode(0, 0, "send", nbytes=5, peer=1),), 1: ()}, {})
    with pytest.raises(TraceError, match="receives 0"):
        lonely.validate()


def test_trace_show_and_replay_commands(tmp_path, capsys):
    assert main(["trace", "show", str(TRACES / "pp2" / "chakra"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["meta"]  # (rows: the collectives)
    assert shown["ranks"] == 2 and shown["transfers"][0]["sent_B"] == 8 * 65536
    out = tmp_path / "r"
    assert main(["replay", str(TRACES / "ddp4"), "--topology", str(ROOT / "topologies" / "rail64.yaml"),
                 "--rescale", "16", "-o", str(out), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    summary_ = replayed["meta"]
    assert summary_["ranks"] == 16 and summary_["time_s"] > 0 and summary_["command"] == "replay"
    assert len(replayed["rows"]) == summary_["collective_calls"] > 0  # a row per collective call
    assert {"timeline.parquet", "timeline.json", "collectives.parquet", "trace.parquet", "report.html"} <= \
        {p.name for p in out.iterdir()}
    # timeline.json: Chrome trace events, one complete event per node, at the timeline's times
    timeline = pl.read_parquet(out / "timeline.parquet")
    events = json.loads((out / "timeline.json").read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == len(timeline)
    rail = load_topology(ROOT / "topologies" / "rail64.yaml")
    assert {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"} == \
        {f"rank {r} ({rail.node_names[g]})" for r, g in enumerate(rail.gpus[:16].tolist())}
    ends = sorted(round((e["ts"] + e["dur"]) * 1e-6, 12) for e in slices)
    assert ends == sorted(round(t, 12) for t in timeline["end_s"].to_list())
    again = load_trace(out / "trace.parquet")  # the replayed run, in netsim's own format, replays again
    assert len(again.nodes) == 16
    exported = load_trace(out / "chakra")  # ... and as Chakra ET, one file per rank (times to 1 us)
    assert exported.format == "chakra" and graph(exported) == graph(again)
    # ... and gives the same times: compute as simulated, communication simulated again the same way
    first, second = replay(rescale(load_trace(TRACES / "ddp4"), 16).validate(), rail), replay(again, rail)
    assert second.time_s == pytest.approx(first.time_s, rel=1e-9)
    np.testing.assert_allclose(second.timeline.sort("rank", "node")["end_s"].to_numpy(),
                               first.timeline.sort("rank", "node")["end_s"].to_numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("breakage, needle", [
    ("truncate", "truncated"), ("garbage", "not a profiler trace"), ("missing", "missing"),
    ("unknown", "none of the known formats"),
])
def test_bad_traces_are_one_line_errors(tmp_path, capsys, breakage, needle):
    if breakage == "truncate":
        for r in (0, 1):
            data = (TRACES / "ddp2" / f"chakra.{r}.et").read_bytes()
            (tmp_path / f"c.{r}.et").write_bytes(data[: len(data) - 7] if r else data)
        target = tmp_path / "c"
    elif breakage == "garbage":
        (tmp_path / "kineto.0.json").write_text('{"traceEvents": [ oops')
        target = tmp_path / "kineto.0.json"
    elif breakage == "missing":
        shutil.copy(TRACES / "ddp4" / "kineto.0.json.gz", tmp_path / "kineto.0.json.gz")
        shutil.copy(TRACES / "ddp4" / "kineto.2.json.gz", tmp_path / "kineto.2.json.gz")
        target = tmp_path / "kineto"
    else:
        (tmp_path / "notes.bin").write_bytes(b"\x00\x01")
        target = tmp_path / "notes.bin"
    assert main(["trace", "show", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
    assert main(["replay", str(target), "--topology", str(ROOT / "topologies" / "nvlink8.yaml"),
                 "-o", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_profiler_reader_on_nccl_fields(tmp_path):
    # A GPU job's profiler trace as PyTorch writes it for NCCL: record_param_comms CPU ops and the
    # ncclDevKernel GPU kernels, both with the collective's args; the kernels count, the CPU records are
    # skipped. Sizes: all_gather's buffer is the output, reduce_scatter's the input.
    def args(name, inn, out, dtype="BFloat16"):
        return {"Collective name": name, "In msg nelems": inn, "Out msg nelems": out, "dtype": dtype,
                "Group size": 2, "Process Group Name": "0", "Process Group Ranks": "[0, 1]"}

    for rank in (0, 1):
        events = [{"ph": "X", "name": "aten::mm", "ts": 0, "dur": 100, "pid": 1, "tid": 1, "cat": "cpu_op"}]
        t = 100
        for name, inn, out in (("allreduce", 1000, 1000), ("_allgather_base", 500, 1000),
                               ("_reduce_scatter_base", 1000, 500)):
            events.append({"ph": "X", "name": "record_param_comms", "ts": t, "dur": 5, "pid": 1, "tid": 1,
                           "cat": "cpu_op", "args": args(name, inn, out)})
            events.append({"ph": "X", "name": "ncclDevKernel_Generic", "ts": t + 10, "dur": 40, "pid": 0, "tid": 7,
                           "cat": "kernel", "args": args(name, inn, out)})
            t += 100
        data = {"traceEvents": events, "distributedInfo": {"backend": "nccl", "rank": rank, "world_size": 2,
                                                           "pg_config": [{"pg_name": "0", "ranks": [0, 1]}]}}
        (tmp_path / f"gpu.{rank}.json").write_text(json.dumps(data))
    trace = load_trace(tmp_path / "gpu")
    colls = [(n.op, n.nbytes, n.group) for n in trace.nodes[0] if n.kind == "collective"]
    assert colls == [("all_reduce", 2000, "0"), ("all_gather", 2000, "0"), ("reduce_scatter", 2000, "0")]
    assert trace.skipped == {"record_param_comms CPU op (its GPU kernel is kept)": 6}
    assert [round(n.duration * 1e6) for n in trace.nodes[0] if n.kind == "collective"] == [40, 40, 40]


def test_replay_at_scale_is_checked_before_anything_is_built(capsys, tmp_path):
    """--ranks is checked against the topology before the trace is rescaled; the transfers a replay would
    create are counted before it is lowered, and refused past the ceiling with the estimate."""
    rail = str(ROOT / "topologies" / "rail64.yaml")
    assert main(["replay", str(TRACES / "ddp2"), "--topology", rail, "--rescale", "100000"]) == 2
    err = capsys.readouterr().err
    assert "100000 ranks do not fit the topology's 64 GPUs" in err and "--rescale" in err
    assert main(["replay", str(TRACES / "ddp4"), "--topology", rail, "--rescale", "64", "--max-transfers", "1000",
                 "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "program nodes" in err and "--max-transfers 1280" in err
    assert not (tmp_path / "o").exists()
    # 64 ranks x 20 nodes pass the node ceiling; the collectives do not pass a transfer ceiling of 2000
    assert main(["replay", str(TRACES / "ddp4"), "--topology", rail, "--rescale", "64", "--max-transfers", "2000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "transfers (under a second of simulation here), more than the limit of 2,000" in err
    estimate = int(err.rsplit("--max-transfers ", 1)[1].split()[0])
    topo = load_topology(rail)
    trace = rescale(load_trace(TRACES / "ddp4"), 64).validate()
    from netsim.network import FluidNetwork  # the estimate is exact: the run creates that many transfers
    from netsim.program import run_program
    from netsim.sim import Simulation

    sim = Simulation(topo, record_links=False)
    run = run_program(sim, trace, dict(zip(trace.ranks, topo.gpus.tolist())))
    sim.run(run.done)
    assert isinstance(sim.network, FluidNetwork) and sim.network.transfers_started == estimate


def test_a_chakra_trace_listing_kernels_out_of_dependency_order_replays(tmp_path):
    """As converted traces of real PyTorch runs do: a kernel listed before the kernel it depends on (three
    positions later). Replay runs each rank's compute in dependency order, ties by recorded start."""
    nodes = {}
    for r in (0, 1):
        nodes[r] = (TraceNode(r, 10, "compute", "k_late", duration=3e-4, deps=(13,), start=9e-4),
                    TraceNode(r, 11, "compute", "k_a", duration=1e-4, start=0.0),
                    TraceNode(r, 12, "compute", "k_b", duration=2e-4, deps=(11,), start=1e-4),
                    TraceNode(r, 13, "compute", "k_c", duration=4e-4, deps=(12,), start=3e-4),
                    TraceNode(r, 14, "collective", op="all_reduce", nbytes=10**6, group="world", deps=(10,)))
    chakra.write(Trace(nodes, {"world": (0, 1)}, "out-of-order"), tmp_path / "ooo")
    trace = load_trace(tmp_path / "ooo").validate()
    assert [n.id for n in trace.nodes[0]][:2] == [10, 11]  # read in file order
    topo = full_mesh(2, 10e9, 1e-6)
    result = replay(trace, topo)
    compute = 1e-3  # k_a, k_b, k_c, then k_late: one stream, no gap
    assert result.time_s == pytest.approx(compute + ring_all_reduce_time(2, 10**6, 1e-6, 10e9), rel=1e-6)
    order = result.timeline.filter((pl.col("rank") == 0) & (pl.col("kind") == "compute")).sort("start_s")["name"]
    assert order.to_list() == ["k_a", "k_b", "k_c", "k_late"]


# --- bad input: one line naming the file and the field, exit status 2, nothing written ---------------------

NVLINK8 = str(ROOT / "topologies" / "nvlink8.yaml")


def _event(name, ts, dur, tid=1, **kw):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid, "cat": "cpu_op", **kw}


def _gloo_events(dims=(65792,), args=True):
    """A one-rank gloo recording: compute, an all-reduce call and its work (on another thread), compute."""
    work = _event("gloo:all_reduce", 105, 50, tid=2)
    if args:
        work["args"] = {"Input Dims": [list(dims)], "Input type": ["float"]}
    return [_event("aten::mm", 0, 100), _event("c10d::allreduce_", 100, 5), work, _event("aten::mm", 200, 100)]


def _write_kineto(path, events, **extra):
    path.write_text(json.dumps({"traceEvents": events, **extra}))
    return path


def _refused(target, capsys, tmp_path, *needles, npus=None):
    """`trace show` and `replay` both exit 2 with one line naming the file and each needle; nothing written."""
    extra = ["--npus", str(npus)] if npus else []
    assert main(["trace", "show", str(target), *extra]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"netsim: error: {target}"), err
    assert "valid" not in captured.out
    for needle in needles:
        assert needle in err, (needle, err)
    out = tmp_path / "replayed"
    assert main(["replay", str(target), "--topology", NVLINK8, "-o", str(out), *extra]) == 2
    assert capsys.readouterr().err.strip() == err
    assert not out.exists()
    return err


def test_sizes_beyond_2_to_the_53_are_refused_naming_the_field(tmp_path, capsys):
    gloo = _write_kineto(tmp_path / "gloo.json", _gloo_events(dims=(10**27,)))
    err = _refused(gloo, capsys, tmp_path, "traceEvents[2].args.Input Dims", "1e+27 elements", "2^53")
    assert err == (f"netsim: error: {gloo}: traceEvents[2].args.Input Dims: gloo:all_reduce: 1e+27 elements of 4 B "
                   "is beyond the largest size netsim represents (2^53 bytes = 8 PiB)")
    nccl = [_event("aten::mm", 0, 100), _event("ncclDevKernel_AllReduce", 100, 50, tid=7, cat="kernel", args={
        "Collective name": "allreduce", "In msg nelems": 10**27, "Out msg nelems": 10**27, "dtype": "Float"})]
    _refused(_write_kineto(tmp_path / "nccl.json", nccl), capsys, tmp_path, "traceEvents[1].args.In msg nelems",
             "2^53")
    # a size of exactly 2^53 bytes is the largest there is
    ok = _write_kineto(tmp_path / "ok.json", _gloo_events(dims=(2**51,)))
    assert [n.nbytes for n in load_trace(ok).all_nodes() if n.kind == "collective"] == [2**53]
    astra = tmp_path / "big.txt"
    astra.write_text("DATA\n1\nl -1 1 NONE 0 1 NONE 0 1 ALLREDUCE 1000000000000000000000000 1\n")
    err = _refused(astra, capsys, tmp_path, "line 3 column 11 (wg-bytes)", "0 to 2^53", npus=2)
    assert err.endswith("got '1000000000000000000000000'")


def test_json_nested_deeper_than_64_levels_is_refused(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text('{"traceEvents": [' + "[" * 100_000 + "]" * 100_000 + "]}")
    assert _refused(deep, capsys, tmp_path) == f"netsim: error: {deep}: nested deeper than 64 levels"
    # parseable, but deeper than YAML documents may be: the same limit, the same message
    events = _gloo_events()
    events[0]["args"] = {"x": json.loads("[" * 70 + "]" * 70)}
    assert _refused(_write_kineto(tmp_path / "d70.json", events), capsys, tmp_path).endswith(
        "nested deeper than 64 levels")
    ok = _gloo_events()
    ok[0]["args"] = {"x": json.loads("[" * 60 + "]" * 60)}  # 63 levels in all
    assert load_trace(_write_kineto(tmp_path / "d60.json", ok)).format == "kineto"
    own.write(load_trace(_write_kineto(tmp_path / "base.json", _gloo_events())), tmp_path / "t.jsonl")
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    (tmp_path / "deep.jsonl").write_text("\n".join(lines + ['{"rank": ' + "[" * 100_000 + "]" * 100_000 + "}"]))
    assert _refused(tmp_path / "deep.jsonl", capsys, tmp_path).endswith(
        f"line {len(lines) + 1}: nested deeper than 64 levels")


@pytest.mark.parametrize("dur, shown", [(-5700, "-5700"), (float("inf"), "inf"), (1e300, "1e+300"),
                                        (float("nan"), "nan"), ("12", "'12'"), (True, "True")])
def test_profiler_durations_must_be_finite_non_negative_and_sane(tmp_path, capsys, dur, shown):
    events = _gloo_events()
    events[3]["dur"] = dur
    err = _refused(_write_kineto(tmp_path / "t.json", events), capsys, tmp_path)
    assert err.endswith(f"traceEvents[3].dur: expected finite microseconds, 0 to 1e+12, got {shown}")


def test_profiler_events_without_times_are_counted_or_refused(tmp_path, capsys):
    # compute without ts or dur: left out, and counted
    events = _gloo_events() + [{"ph": "X", "name": "aten::add", "ts": 7, "pid": 1, "tid": 1},
                               {"ph": "X", "name": "aten::add", "dur": 7, "pid": 1, "tid": 1}]
    t = load_trace(_write_kineto(tmp_path / "some.json", events))
    assert t.skipped["complete event (ph X) without ts or dur (not communication: left out)"] == 2
    assert summary(t)["compute_s_per_rank"] == pytest.approx(245e-6)  # 0..300 us less the call and its work (100..155)
    # communication without them cannot be placed
    events = _gloo_events()
    del events[2]["dur"]
    _refused(_write_kineto(tmp_path / "comm.json", events), capsys, tmp_path, "traceEvents[2].dur",
             "gloo:all_reduce has no dur")
    # nothing with times at all, or nothing at all: nothing was recorded
    bare = [{k: v for k, v in e.items() if k not in ("ts", "dur")} for e in _gloo_events()[:1]] * 3
    _refused(_write_kineto(tmp_path / "bare.json", bare), capsys, tmp_path,
             'traceEvents: no complete events (ph "X" with ts and dur) (3 without ts or dur)')
    _refused(_write_kineto(tmp_path / "empty.json", []), capsys, tmp_path, "traceEvents: no complete events")
    # a recording that spans more than 1e6 s is a corrupt timestamp
    events = _gloo_events()
    events[3]["ts"] = 2e12
    _refused(_write_kineto(tmp_path / "span.json", events), capsys, tmp_path, "traceEvents[].ts",
             "more than the 1e+06 s a recording may last")


def test_a_collective_whose_size_is_not_recorded_is_refused_not_guessed(tmp_path, capsys):
    # gloo work without args (a profile without record_shapes): not 4 B, an error that says why
    err = _refused(_write_kineto(tmp_path / "noargs.json", _gloo_events(args=False)), capsys, tmp_path,
                   "traceEvents[2].args.Input Dims", "record_shapes=True")
    assert "its size cannot be known" in err
    # the shipped DDP recording with its shapes stripped
    for r in (0, 1):
        data = json.loads(gzip.decompress((TRACES / "ddp2" / f"kineto.{r}.json.gz").read_bytes()))
        for e in data["traceEvents"]:
            if str(e.get("name", "")).startswith("gloo:"):
                e.pop("args", None)
        _write_kineto(tmp_path / f"ddp.{r}.json", data["traceEvents"], distributedInfo=data["distributedInfo"])
    _refused(tmp_path / "ddp.", capsys, tmp_path, "ddp.0.json", "args.Input Dims")
    # NCCL: no collective name, no element count, no dtype
    kernel = {"Collective name": "allreduce", "In msg nelems": 65792, "Out msg nelems": 65792, "dtype": "Float"}
    for drop, field in (("Collective name", "Collective name"), ("In msg nelems", "In msg nelems"),
                        ("dtype", "dtype")):
        args = {k: v for k, v in kernel.items() if k != drop}
        events = [_event("aten::mm", 0, 100), _event("ncclDevKernel_AllReduce", 100, 50, tid=7, cat="kernel",
                                                     args=args)]
        _refused(_write_kineto(tmp_path / f"nccl-{drop[:3]}.json", events), capsys, tmp_path,
                 f"traceEvents[1].args.{field}", "cannot be known")
    events = [_event("aten::mm", 0, 100), _event("ncclDevKernel_AllReduce", 100, 50, tid=7, cat="kernel", args=kernel)]
    t = load_trace(_write_kineto(tmp_path / "nccl.json", events))
    assert [(n.op, n.nbytes) for n in t.all_nodes() if n.kind == "collective"] == [("all_reduce", 263168)]


def test_astra_sizes_and_times_are_checked_and_skips_counted(tmp_path, capsys):
    neg = tmp_path / "neg.txt"
    neg.write_text("DATA\n1\nl -1 1 NONE 0 1 NONE 0 1 ALLREDUCE -5 1\n")
    err = _refused(neg, capsys, tmp_path, npus=2)
    assert err == (f"netsim: error: {neg}: line 3 column 11 (wg-bytes): expected a size in whole bytes, 0 to 2^53 "
                   "(8 PiB), got '-5'")
    slow = tmp_path / "slow.txt"
    slow.write_text("DATA\n1\nl -1 2000000000000000 NONE 0 1 NONE 0 1 ALLREDUCE 5 1\n")
    _refused(slow, capsys, tmp_path, "line 3 column 3 (fwd-compute)", "0 to 1e+15", npus=2)
    many = tmp_path / "many.txt"
    many.write_text("DATA all_gpus: 1000000000\n1\nl -1 1 NONE 0 1 NONE 0 1 ALLREDUCE 5 1\n")
    _refused(many, capsys, tmp_path, "all_gpus: 1,000,000,000 ranks: expected at most 131,072")
    unsized = tmp_path / "unsized.txt"  # a workload that does not say its rank count: the flag to give it
    unsized.write_text("DATA\n1\nl -1 1 NONE 0 1 NONE 0 1 ALLREDUCE 5 1\n")
    _refused(unsized, capsys, tmp_path, "all_gpus: the workload does not say how many ranks", "with --npus")
    # communication netsim does not replay is counted, not dropped silently
    odd = tmp_path / "odd.txt"
    odd.write_text("DATA\n2\na -1 1 NONE 0 1 NONE 0 1 BROADCAST 64 1\nb -1 1 NONE 0 1 NONE 0 1 ALLREDUCE 0 1\n")
    t = load_trace(odd, npus=2)
    assert t.skipped == {"update-time column (not modelled)": 4, "communication type 'BROADCAST' (not one netsim "
                         "replays)": 2, "ALLREDUCE of 0 bytes (nothing to send)": 2}


def test_a_cpu_only_capture_names_the_likely_cause(tmp_path, capsys):
    meta_cls, node_cls, attr_cls = chakra._classes()
    frames = [meta_cls(version="0.0.4").SerializeToString()]
    for rank in (0, 1):
        nodes = [_raw_node(node_cls, attr_cls, id=i, name="aten::mm", type=4, duration_micros=50,
                           attrs=[("is_cpu_op", "bool_val", True)]) for i in range(3)]
        nodes.append(_raw_node(node_cls, attr_cls, id=9, name="c10d::allreduce_", type=7,
                               attrs=[("is_cpu_op", "bool_val", True)]))
        (tmp_path / f"cpu.{rank}.et").write_bytes(b"".join(chakra._encode_varint(len(f)) + f for f in frames + nodes))
    err = _refused(tmp_path / "cpu", capsys, tmp_path)
    assert err == (f"netsim: error: {tmp_path / 'cpu'}: no GPU kernels or collectives, only 8 CPU-side records "
                   "(skipped): was the profiler run with CUDA activities?")
    cpu = [_event("aten::mm", 0, 100), _event("aten::relu", 100, 10)]
    _refused(_write_kineto(tmp_path / "cpu.json", cpu), capsys, tmp_path,
             "traceEvents: no GPU kernels or collectives: was the profiler run with CUDA activities")


def test_valid_is_never_said_of_a_trace_with_nothing_to_replay(tmp_path, capsys):
    zero = Trace({r: (TraceNode(r, 0, "compute", duration=0.0), TraceNode(r, 1, "compute", duration=0.0, deps=(0,)))
                  for r in (0, 1)}, {"world": (0, 1)}, "zero")
    own.write(zero, tmp_path / "zero.jsonl")
    err = _refused(tmp_path / "zero.jsonl", capsys, tmp_path)
    assert err.endswith("nothing to replay: only 4 compute nodes of zero length, no communication")
    # no nodes at all: Chakra files holding only memory records
    meta_cls, node_cls, _ = chakra._classes()
    for rank in (0, 1):
        parts = [meta_cls(version="0.0.4").SerializeToString(), node_cls(id=1, name="ld", type=2).SerializeToString()]
        (tmp_path / f"meta.{rank}.et").write_bytes(b"".join(chakra._encode_varint(len(p)) + p for p in parts))
    _refused(tmp_path / "meta", capsys, tmp_path, "nothing to replay: no nodes; skipped 2 records, most of them (2): "
             "node type 2 (metadata / memory: no work to replay)")
    astra = tmp_path / "zero.txt"
    astra.write_text("DATA\n1\nl -1 0 NONE 0 0 NONE 0 0 NONE 0 0\n")
    _refused(astra, capsys, tmp_path, "nothing to replay", npus=2)


@pytest.mark.parametrize("column, value, needle", [
    ("size_B", 2**60, "size: expected whole bytes, 0 to 2^53 (8 PiB), got 1152921504606846976"),
    ("duration_s", float("inf"), "duration: expected finite seconds, 0 to 1e+06, got inf"),
    ("duration_s", -1.0, "duration: expected finite seconds, 0 to 1e+06, got -1.0"),
    ("rank", 1.5, "line 2.rank: expected a whole number, got 1.5"),
    ("tag", 2**40, "tag: expected a whole number that fits 32 bits"),
])
def test_netsim_traces_are_held_to_the_same_limits(tmp_path, capsys, column, value, needle):
    t = Trace({r: (TraceNode(r, 0, "compute", duration=1e-3),
                   TraceNode(r, 1, "collective", op="all_reduce", nbytes=1024, group="world", deps=(0,)))
               for r in (0, 1)}, {"world": (0, 1)}, "hand-made")
    own.write(t, tmp_path / "t.jsonl")
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    for row in rows:  # the same on both ranks, so that the collectives still match
        if column != "duration" or row["kind"] == "compute":
            row[column] = value
    (tmp_path / "bad.jsonl").write_text("\n".join([lines[0]] + [json.dumps(r) for r in rows]))
    _refused(tmp_path / "bad.jsonl", capsys, tmp_path, needle)


AICB_MOE = """HYBRID_TRANSFORMER_FWD_IN_BCKWD model_parallel_NPU_group: 2 ep: 2 pp: 1 vpp: 1 ga: 1 all_gpus: 8 \
checkpoints: 0 checkpoint_initiates: 0
3
embedding_layer -1 1000 ALLREDUCE 1048576 1000 NONE 0 1000 NONE 0 100
moe_layer -1 2000 ALLTOALL_EP 2097152 2000 ALLTOALL_EP 2097152 2000 ALLREDUCE_DP_EP 4194304 100
grad_sync -1 100 NONE 0 100 NONE 0 100 ALLGATHER_DP_EP 0 100
"""


def test_aicb_expert_parallel_lines_run_on_the_groups_ep_implies(tmp_path, capsys):
    """SimAI/AICB workloads: `_EP` collectives on the expert-parallel groups (E consecutive data-parallel
    ranks), `_DP_EP` on the expert-data-parallel ones; `ep: 1` makes `_DP_EP` the data-parallel group and
    `_EP` a one-rank group (skipped, counted); size-0 entries counted as skipped."""
    moe = tmp_path / "moe.txt"
    moe.write_text(AICB_MOE)
    trace = load_trace(moe).validate()
    groups = {n.name: trace.groups[n.group] for n in trace.nodes[0] if n.kind == "collective"}
    assert groups["moe_layer:fwd"] == (0, 2) and groups["moe_layer:ig"] == (0, 2)  # ep 2: ranks 0, 2 (tp index 0)
    assert groups["moe_layer:wg"] == (0, 4)  # expert data-parallel: k = 0, 2 of ranks 0, 2, 4, 6
    assert groups["embedding_layer:fwd"] == (0, 1)  # plain ALLREDUCE in the forward: the model-parallel group
    rank6 = {n.name: trace.groups[n.group] for n in trace.nodes[6] if n.kind == "collective"}
    assert rank6["moe_layer:fwd"] == (4, 6) and rank6["moe_layer:wg"] == (2, 6)
    assert trace.skipped["ALLGATHER_DP_EP of 0 bytes (nothing to send)"] == 8
    dense = tmp_path / "dense.txt"
    dense.write_text(AICB_MOE.replace("ep: 2", "ep: 1"))
    trace = load_trace(dense).validate()
    groups = {n.name: trace.groups[n.group] for n in trace.nodes[0] if n.kind == "collective"}
    assert "moe_layer:fwd" not in groups and groups["moe_layer:wg"] == (0, 2, 4, 6)
    assert trace.skipped["ALLTOALL_EP with ep: 1 (a group of one rank: nothing moves)"] == 2 * 8
    for path in (moe, dense):
        assert main(["replay", str(path), "--topology", str(ROOT / "topologies" / "rail64.yaml"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["meta"]["time_s"] > 0
    bad = tmp_path / "bad.txt"
    bad.write_text(AICB_MOE.replace("ep: 2", "ep: 3"))
    assert main(["trace", "show", str(bad)]) == 2
    assert "ep: 3 does not divide the 4 data-parallel ranks" in capsys.readouterr().err


def test_version_1_netsim_traces_still_read(tmp_path):
    """Files written before the columns named their units (duration, bytes, start) read as the same trace."""
    t = Trace({r: (TraceNode(r, 0, "compute", duration=1e-3, start=0.0),
                   TraceNode(r, 1, "collective", op="all_reduce", nbytes=1024, group="world", deps=(0,)))
               for r in (0, 1)}, {"world": (0, 1)}, "hand-made")
    new = own.write(t, tmp_path / "v2.jsonl")
    old_names = {v: k for k, v in own.VERSION_1.items()}
    lines = new.read_text().splitlines()
    header = json.loads(lines[0]) | {"netsim_trace": 1}
    rows = [{old_names.get(k, k): v for k, v in json.loads(line).items()} for line in lines[1:]]
    assert "bytes" in rows[1] and "size_B" not in rows[1]
    (tmp_path / "v1.jsonl").write_text("\n".join(json.dumps(x) for x in [header, *rows]) + "\n")
    frame = own.to_frame(own.read(tmp_path / "v1.jsonl"))
    assert frame.equals(own.to_frame(own.read(new))) and frame["size_B"].to_list() == [0, 1024, 0, 1024]
    own.to_frame(t).rename(old_names).write_parquet(tmp_path / "v1.parquet", metadata={"netsim.trace": json.dumps(header)})
    assert own.to_frame(own.read(tmp_path / "v1.parquet")).equals(frame)

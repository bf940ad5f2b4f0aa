"""Recordings of the torch.distributed backend as programs, from hand-written rank files (no torch): the
graph of compute, calls and waits, exact durations, gather / scatter as messages, tags per group, errors."""

import json

import pytest

from netsim.traces import TraceError, load_trace
from netsim.traces.recording import TAG_STRIDE, UNEVEN, program_from_recording, rank_file, write_rank

WORLD = {"0": [0, 1]}


def call(i, t0, t1, op="all_reduce", size=400, group="0", kind="collective", **kw):
    return {"call": i, "t0": t0, "t1": t1, "op": op, "kind": kind, "collective": op if kind == "collective" else None,
            "bytes": size, "dtype": "float32", "group": group, "peer": None, "tag": 0, "where": "train.py:7",
            "done": None, **kw}


def wait(ids, t0, t1, how="work"):
    return {"wait": ids, "t0": t0, "t1": t1, "how": how}


def record(tmp_path, events_of, groups=WORLD, origin=100.0, end=None):
    for rank, events in events_of.items():
        write_rank(tmp_path, {"rank": rank, "world_size": len(events_of), "run": "r1", "origin": origin,
                              "end": end if end is not None else max([origin] + [e["t1"] for e in events]),
                              "default": "0", "groups": {g: m for g, m in groups.items() if rank in m},
                              "events": events})
    return tmp_path


def test_a_blocking_call_splits_compute_and_an_async_one_overlaps_it(tmp_path):
    """Rank: 1 s compute, a blocking all-reduce (waited 0.5 s), 0.25 s compute, an async one, 2 s compute
    beside it, its wait, 0.125 s compute to the end. Blocked time is not compute."""
    events = [call(0, 101.0, 101.0), wait([0], 101.0, 101.5), call(1, 101.75, 101.75), wait([1], 103.75, 104.0)]
    program = program_from_recording(record(tmp_path, {0: events, 1: events}, end=104.125))
    nodes = program.nodes[0]
    kinds = [(n.kind, n.duration) for n in nodes]
    assert kinds == [("compute", 1.0), ("collective", None), ("compute", 0.25), ("collective", None),
                     ("compute", 2.0), ("compute", 0.125)]
    c0, ar0, c1, ar1, c2, c3 = nodes
    assert ar0.deps == (c0.id,) and c1.deps == (c0.id, ar0.id)  # waited: what follows depends on it
    assert ar1.deps == (c1.id,) and c2.deps == (c1.id,)  # the 2 s run beside the async all-reduce
    assert c3.deps == (ar1.id, c2.id)
    assert ar0.name == "all_reduce float32 @ train.py:7" and ar0.start == pytest.approx(1.0)
    assert program.format == "torch" and load_trace(tmp_path).format == "torch"


def test_a_scripts_marks_split_its_compute_and_wait_for_what_it_waited_for(tmp_path):
    """Marks (a script's own instants) are zero-length compute nodes where the rank was then: one inside
    the first second of compute splits it; one after the wait of an async all-reduce depends on that call,
    so its simulated end is when the rank got past the wait."""
    events = [call(0, 101.0, 101.0), wait([0], 102.0, 102.5)]
    marks = {r: [(100.25, "step 1"), (102.75, "step 1 done")] for r in (0, 1)}
    program = program_from_recording(record(tmp_path, {0: events, 1: events}, end=103.0), marks)
    nodes = program.nodes[0]
    assert [(n.kind, n.name, n.duration) for n in nodes] == [
        ("compute", "compute", 0.25), ("compute", "step 1", 0.0), ("compute", "compute", 0.75),
        ("collective", "all_reduce float32 @ train.py:7", None), ("compute", "compute", 1.0),
        ("compute", "compute", 0.25), ("compute", "step 1 done", 0.0), ("compute", "compute", 0.25)]
    assert nodes[1].start == pytest.approx(0.25) and nodes[6].start == pytest.approx(2.75)
    assert nodes[5].deps == (3, 4)  # after the wait: the call and the compute beside it
    assert nodes[6].deps == (5,)


def test_an_unwaited_call_is_joined_at_the_end_and_setup_is_not_compute(tmp_path):
    events = [{"setup": "1", "t0": 100.5, "t1": 101.5}, call(0, 102.0, 102.0, group="1")]
    program = program_from_recording(record(tmp_path, {0: events, 1: events}, groups={"0": [0, 1], "1": [0, 1]},
                                            end=103.0))
    nodes = program.nodes[1]
    assert [(n.kind, n.name, n.duration) for n in nodes if n.kind == "compute"] == \
        [("compute", "compute", 0.5), ("compute", "compute", 0.5), ("compute", "compute", 1.0), ("compute", "end", 0.0)]
    assert nodes[2].kind == "collective" and nodes[-1].deps == (2, 3)  # the end waits for the unwaited all-reduce


def test_gather_and_scatter_are_messages_to_and_from_the_root_on_the_groups_reserved_tag(tmp_path):
    groups = {"0": [0, 1, 2], "1": [1, 2]}
    ev = {r: [call(0, 101, 101, op="gather", kind="gather", size=12, root=0),
              call(1, 102, 102, op="scatter", kind="scatter", size=8, root=2, group="1" if r else "0")]
          for r in range(3)}
    ev[0][1] = call(1, 102, 102, op="send", kind="send", size=8, peer=1, tag=5)
    ev[1][1:1] = [call(2, 101.5, 101.5, op="recv", kind="recv", size=8, peer=0, tag=5)]
    program = program_from_recording(record(tmp_path, ev, groups=groups))
    messages = {r: [(n.kind, n.peer, n.tag, n.nbytes) for n in program.nodes[r] if n.kind in ("send", "recv")]
                for r in range(3)}
    last = TAG_STRIDE - 1
    assert messages[0] == [("recv", 1, last, 12), ("recv", 2, last, 12), ("send", 1, 5, 8)]
    assert messages[1] == [("send", 0, last, 12), ("recv", 0, 5, 8), ("recv", 2, TAG_STRIDE + last, 8)]
    assert messages[2] == [("send", 0, last, 12), ("send", 1, TAG_STRIDE + last, 8)]


def test_an_uneven_all_to_all_is_sized_as_the_largest_send_buffer(tmp_path):
    ev = {0: [call(0, 101, 101, op="all_to_all", size=40)], 1: [call(0, 101, 101, op="all_to_all", size=56)]}
    program = program_from_recording(record(tmp_path, ev))
    assert {n.nbytes for n in program.all_nodes() if n.kind == "collective"} == {56}
    assert program.skipped == {UNEVEN: 1}


def test_mismatched_calls_missing_ranks_and_bad_files_are_one_line_errors(tmp_path):
    ev = {0: [call(0, 101, 101, size=40)], 1: [call(0, 101, 101, size=48)]}
    with pytest.raises(TraceError, match="rank 0 does all_reduce of 40 B, rank 1 all_reduce of 48 B"):
        program_from_recording(record(tmp_path / "a", ev))
    record(tmp_path / "b", {0: [], 1: []})
    rank_file(tmp_path / "b", 1).unlink()
    with pytest.raises(TraceError, match=r"no recording of ranks \[1\]"):
        program_from_recording(tmp_path / "b")
    rank_file(tmp_path / "b", 1).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(TraceError, match="not a netsim recording"):
        program_from_recording(tmp_path / "b")
    ev = {0: [call(0, 101, 101, op="send", kind="send", peer=1, tag=TAG_STRIDE)],
          1: [call(0, 101, 101, op="recv", kind="recv", peer=0, tag=TAG_STRIDE)]}
    with pytest.raises(TraceError, match=f"send with tag {TAG_STRIDE}; netsim replays tags 0 to"):
        program_from_recording(record(tmp_path / "c", ev))
    record(tmp_path / "d", {0: [], 1: []})
    other = json.loads(rank_file(tmp_path / "d", 1).read_text())
    rank_file(tmp_path / "d", 1).write_text(json.dumps({**other, "run": "another"}))
    with pytest.raises(TraceError, match="holds the recordings of 2 different runs"):
        program_from_recording(tmp_path / "d")
    with pytest.raises(TraceError, match="no rank recordings"):
        program_from_recording(tmp_path / "nothing")

"""The plain torch.distributed examples of examples/torch, unmodified (they ask for gloo), under the netsim
backend and under gloo itself: the same results bit for bit, the recorded calls the ones each script makes
(counts and bytes), and their simulated time the closed form on a full mesh; and `netsim torchrun` end to
end, its failures included."""

import json
from pathlib import Path

import polars as pl
import pytest

torch = pytest.importorskip("torch")

from netsim.cli import main  # noqa: E402
from netsim.collectives import ring_all_gather_time, ring_all_reduce_time, ring_reduce_scatter_time  # noqa: E402
from netsim.traces.recording import STEP, program_from_recording  # noqa: E402
from netsim.training.launch import failure_report, run_ranks  # noqa: E402
from tests.training.test_backend import BW, LAT, simulate  # noqa: E402

EXAMPLES = Path(__file__).parents[2] / "examples" / "torch"
SCRIPTS = Path(__file__).parent / "scripts"
F32 = 4
RUNS = {  # example: (ranks, its arguments)
    "ddp": (2, ["--steps", "2", "--width", "128"]),
    "pipeline": (2, ["--steps", "2", "--microbatches", "3", "--width", "64"]),
    "moe": (4, ["--steps", "2", "--tokens", "8", "--width", "32"]),
    "tensor_parallel": (4, ["--steps", "2", "--width", "32"]),
    "fsdp": (4, ["--steps", "2", "--width", "32"]),
}
FSDP_LAYERS = [(32, 32), (32, 32), (32, 8)]  # fsdp.py's Linear layers at --width 32: (inputs, outputs)


def fsdp_layer_bytes() -> list[int]:
    """Each FSDP unit's whole parameters (weight and bias): what one gather outputs and one reduce-scatter
    takes in, in netsim's convention."""
    return [(i * o + o) * F32 for i, o in FSDP_LAYERS]


def run(tmp: Path, name: str, route: bool) -> tuple[list[dict], Path]:
    """The example on its ranks, routed to netsim (recorded) or on plain gloo: each rank's saved state."""
    nproc, argv = RUNS[name]
    save, logs, record = tmp / "save", tmp / "logs", tmp / "record"
    for d in (save, logs, record):
        d.mkdir(parents=True)
    codes = run_ranks(EXAMPLES / f"{name}.py", [*argv, "--save", str(save)], nproc, logs=logs,
                      record=record if route else None, route=route, timeout=120)
    assert not any(codes.values()), failure_report(codes, logs)
    return [torch.load(save / f"rank-{r}.pt") for r in range(nproc)], record


@pytest.fixture(scope="module", params=sorted(RUNS))
def example(request, tmp_path_factory):
    name = request.param
    base = tmp_path_factory.mktemp(name)
    mine, record = run(base / "netsim", name, True)
    theirs, _ = run(base / "gloo", name, False)
    return name, mine, theirs, program_from_recording(record)


def test_the_results_are_glooss_bit_for_bit(example):
    _, mine, theirs, _ = example
    for a, b in zip(mine, theirs):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def calls(program, rank: int, kind: str, op: str | None = None) -> list[int]:
    return [n.nbytes for n in program.nodes[rank] if n.kind == kind and (op is None or n.op == op)]


def test_the_recording_holds_what_the_script_issued(example):
    name, mine, _, program = example
    nproc, _ = RUNS[name]
    steps = 2
    for rank in range(nproc):
        if name == "ddp":  # the parameters broadcast once (beside DDP's own small checks), then all-reduced
            params = sum(t.numel() * t.element_size() for t in mine[rank].values())  # in buckets every step
            broadcasts = calls(program, rank, "collective", "broadcast")
            assert max(broadcasts) == params and sum(broadcasts) - params < 1024
            assert sum(calls(program, rank, "collective", "all_reduce")) == steps * params
        elif name == "pipeline":  # activations forward, gradients back: one message per micro-batch each
            kind = "send" if rank == 0 else "recv"
            assert calls(program, rank, kind) == [8 * 64 * F32] * (steps * 3)
            assert calls(program, rank, "recv" if rank == 0 else "send") == [8 * 64 * F32] * (steps * 3)
        elif name == "moe":  # dispatch, combine, gradients back: the rank's whole send buffer each
            assert calls(program, rank, "collective", "all_to_all") == [nproc * 8 * 32 * F32] * (3 * steps)
        elif name == "fsdp":  # per step and layer: gathered for the forward and again for the backward, its
            layers = fsdp_layer_bytes()  # gradients reduce-scattered, all on the world's group; the forward's
            got = [(n.op, n.nbytes) for n in program.nodes[rank] if n.kind == "collective"]  # gathers in order
            assert sorted(got) == sorted([("all_gather", b) for b in layers] * 2 * steps
                                         + [("reduce_scatter", b) for b in layers] * steps)
            assert [b for _, b in got[:len(layers)]] == layers
            assert {program.groups[n.group] for n in program.nodes[rank] if n.kind == "collective"} == {
                tuple(range(nproc))}
            rows = [o for _, o in FSDP_LAYERS for _ in ("weight", "bias")]  # each rank keeps 1/nproc of the rows
            assert [t.shape[0] * nproc for t in mine[rank].values()] == rows
        else:  # per step the output's all-reduce in the pair, and both shards' gradients across the pairs
            groups = {n.group: program.groups[n.group] for n in program.nodes[rank] if n.kind == "collective"}
            pair = next(g for g, ranks in groups.items() if ranks == (rank - rank % 2, rank - rank % 2 + 1))
            replicas = next(g for g, ranks in groups.items() if ranks == tuple(range(rank % 2, nproc, 2)))
            got = [(n.group, n.nbytes) for n in program.nodes[rank] if n.kind == "collective"]
            assert got == [(pair, 16 * 32 * F32), (replicas, 32 * 32 * F32), (replicas, 32 * 32 * F32)] * steps


def test_the_simulated_time_is_the_closed_form(example):
    """Compute left out, each rank's calls follow one another on a full mesh (no two transfers share a
    link): the run is the sum of their closed forms."""
    name, _, _, program = example
    steps = 2
    if name == "ddp":  # compute left out, DDP's broadcasts and bucket all-reduces follow one another on its stream
        ops = [(n.op, n.nbytes) for n in program.nodes[0] if n.kind == "collective"]
        assert {op for op, _ in ops} <= {"broadcast", "all_reduce", "all_gather"}, ops
        closed = {"all_reduce": lambda b: ring_all_reduce_time(2, b, LAT, BW),
                  "all_gather": lambda b: ring_all_gather_time(2, b, LAT, BW),
                  "broadcast": lambda b: LAT + b / BW}  # 2 ranks: one transfer
        expected = sum(closed[op](b) for op, b in ops)
        ends, t = [], 0.0  # the first step also carries DDP's start-up (its broadcasts)
        for n in program.nodes[0]:
            t += closed[n.op](n.nbytes) if n.kind == "collective" else 0.0
            if n.name.startswith(STEP + " "):
                ends.append(t)
    elif name == "pipeline":  # each step: 3 microbatches forward, one after another on the connection, then back
        expected = steps * 2 * 3 * (LAT + 8 * 64 * F32 / BW)
    elif name == "fsdp":  # FSDP2 on the CPU waits for each gather and reduce-scatter as soon as it is issued
        expected = steps * sum(2 * ring_all_gather_time(4, b, LAT, BW) + ring_reduce_scatter_time(4, b, LAT, BW)
                               for b in fsdp_layer_bytes())
    elif name == "moe":
        expected = 3 * steps * (LAT + 8 * 32 * F32 / BW)  # a block to each peer at once, each on its own link
    else:
        expected = steps * (ring_all_reduce_time(2, 16 * 32 * F32, LAT, BW)
                            + 2 * ring_all_reduce_time(2, 32 * 32 * F32, LAT, BW))
    algo = "direct" if name == "moe" else "ring"
    result = simulate(program, scale_compute=0.0, algo=algo)
    assert result.time_s == pytest.approx(expected, rel=1e-9)
    # each optimizer step the script took is marked where it ended: each iteration is half of it (DDP: above)
    marks = result.nodes.filter(pl.col("name").str.starts_with(STEP + " "))
    got = marks.group_by("name").agg(pl.col("end_s").max()).sort("end_s")["end_s"].to_list()
    assert got == pytest.approx(ends if name == "ddp" else [expected / steps, expected], rel=1e-9)


def test_torchrun_end_to_end(tmp_path, capsys):
    """One command: the script on local ranks, its program rescaled and simulated, the usual outputs."""
    out = tmp_path / "out"
    code = main(["torchrun", "--nproc", "2", "--topology", "fattree1024", "--rescale", "64", "--json", "-o",
                 str(out), str(EXAMPLES / "ddp.py"), "--steps", "2", "--width", "64"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["meta"]["ranks"] == 64 and rows["meta"]["time_s"] > 0
    assert {"broadcast", "all_reduce"} <= {r["op"] for r in rows["rows"]}  # (and DDP's own small checks)
    written = {p.name for p in out.iterdir()}
    assert {"timeline.parquet", "collectives.parquet", "report.html", "trace.parquet", "steps.parquet",
            "links.parquet"} <= written
    links = pl.read_parquet(out / "links.parquet")  # every byte DDP's all-reduces put on the fabric, per link
    assert len(links) > 0 and links["carried_B"].sum() > 0 and (links["peak_utilization"] <= 1 + 1e-9).all()
    steps = pl.read_parquet(out / "steps.parquet")
    assert steps["step"].to_list() == [0, 1] and rows["meta"]["iterations_s"] == steps["iteration_s"].to_list()
    assert steps["end_s"][-1] <= rows["meta"]["time_s"] and sum(rows["meta"]["iterations_s"]) == pytest.approx(
        steps["end_s"][-1], rel=1e-12)


def test_device_tflops_scales_every_compute_gap_by_the_cpus_rate_over_the_devices(tmp_path, capsys, monkeypatch):
    """--device-tflops F: the factor is the measured CPU rate over F·1e12 (both in the meta), and every
    recorded compute node lasts its recorded time times that factor on the simulated timeline."""
    import polars as pl

    from netsim.traces import recording

    recorded = []
    monkeypatch.setattr(recording, "program_from_recording",
                        lambda path, real=recording.program_from_recording: recorded.append(real(path)) or recorded[-1])
    out = tmp_path / "out"
    assert main(["torchrun", "--nproc", "2", "--topology", "fattree1024", "--device-tflops", "0.5", "--json", "-o",
                 str(out), str(EXAMPLES / "ddp.py"), "--steps", "2", "--width", "64"]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    written = json.loads((out / "meta.json").read_text())
    factor = meta["cpu_flops"] / 0.5e12
    assert meta["scale_compute"] == written["scale_compute"] == factor and written["device_tflops"] == 0.5
    assert 1e8 < meta["cpu_flops"] < 1e13  # a CPU's float32 rate: 0.1 GFLOP/s to 10 TFLOP/s
    gaps = {(n.rank, n.id): n.duration for r in recorded[0].ranks for n in recorded[0].nodes[r] if n.kind == "compute"}
    timeline = pl.read_parquet(out / "timeline.parquet").filter(pl.col("kind") == "compute")
    assert len(timeline) == len(gaps) and sum(gaps.values()) > 0
    for row in timeline.iter_rows(named=True):
        assert row["end_s"] - row["start_s"] == pytest.approx(gaps[row["rank"], row["node"]] * factor, rel=1e-9,
                                                              abs=1e-15)


def test_torchrun_symmetric_records_a_world_of_128_from_one_rank(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["torchrun", "--nproc", "128", "--symmetric", "--topology", "fattree1024", "--json", "-o", str(out),
                 str(EXAMPLES / "ddp.py"), "--steps", "1", "--width", "64"]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    assert meta["ranks"] == 128 and meta["symmetric"] is True
    assert json.loads((out / "meta.json").read_text())["symmetric"] is True


def test_a_failing_script_shows_its_traceback_once_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["torchrun", "--nproc", "2", "--topology", "fattree1024", "-o", str(out),
                 str(SCRIPTS / "fails.py")])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert err.count("RuntimeError: rank one gives up") == 1
    assert "[rank 1] RuntimeError: rank one gives up" in err and "launch.py" not in err


def test_a_gpu_backend_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANT", "nccl")
    assert main(["torchrun", "--nproc", "2", "--topology", "fattree1024", str(SCRIPTS / "fails.py")]) == 1
    assert f"backend 'nccl' at {SCRIPTS / 'fails.py'}:8" in capsys.readouterr().err


@pytest.mark.parametrize("argv,field", [(["--nproc", "0"], "--nproc"), (["--nproc", "2", "--rescale", "5000"], "--nproc"),
                                        (["--nproc", "2", "--routing", "nope"], "--routing"),
                                        (["--nproc", "2", "--device-tflops", "0"], "--device-tflops"),
                                        (["--nproc", "2", "--device-tflops", "-3"], "--device-tflops"),
                                        (["--nproc", "2", "--device-tflops", "fast"], "--device-tflops"),
                                        (["--nproc", "2", "--device-tflops", "nan"], "--device-tflops"),
                                        (["--nproc", "2", "--device-tflops", "100", "--scale-compute", "0.5"],
                                         "--scale-compute"),
                                        (["--nproc", "65"], "--nproc")])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, argv, field):
    code = main(["torchrun", *argv, "--topology", "fattree1024", str(EXAMPLES / "ddp.py")])
    err = capsys.readouterr().err
    assert code == 2 and field in err and len(err.strip().splitlines()) <= 2


def test_a_missing_script_is_a_one_line_error(tmp_path, capsys):
    assert main(["torchrun", "--nproc", "2", "--topology", "fattree1024", str(tmp_path / "nope.py")]) == 2
    assert "no such script" in capsys.readouterr().err


def symmetric_run(tmp: Path, script: Path, world: int, argv: list[str]) -> tuple[dict[int, int], Path, Path]:
    """`script` on rank 0 alone in a world of `world` (`netsim.training.symmetric`): exit codes, logs, recording."""
    logs, record = tmp / "logs", tmp / "record"
    for d in (logs, record):
        d.mkdir(parents=True)
    codes = run_ranks(script, argv, world, logs=logs, record=record, timeout=120, symmetric=True,
                      env={"OUT": str(logs)})
    return codes, logs, record


def test_symmetric_collectives_leave_what_n_equal_ranks_would(tmp_path):
    """Each rank holding the same x: a sum is n·x, an average or maximum x, a gather n copies, a
    reduce-scatter n times rank 0's block, an all-to-all n copies of rank 0's block, a broadcast x; a send is
    refused in one line naming it."""
    n = 8
    codes, logs, _ = symmetric_run(tmp_path, SCRIPTS / "symmetric.py", n, [])
    assert codes == {0: 1}
    assert "BackendError: send cannot be recorded in symmetric mode" in (logs / "rank-0.log").read_text()
    got = torch.load(logs / "rank-0.pt")
    x = got["x"]
    assert torch.equal(got["all_reduce_sum"], x * n)
    assert torch.equal(got["all_reduce_avg"], x) and torch.equal(got["all_reduce_max"], x)
    assert torch.equal(got["all_gather_into_tensor"], x.repeat(n)) and torch.equal(got["all_gather"], x.repeat(n, 1))
    assert torch.equal(got["reduce_scatter_tensor"], x[:4] * n)
    assert torch.equal(got["all_to_all_single"], x[:4].repeat(n))
    assert torch.equal(got["broadcast"], x)


@pytest.mark.parametrize("example", ["ddp"], indirect=True)
def test_symmetric_ddp_records_a_real_runs_calls_on_every_rank(example, tmp_path):
    """DDP recorded from one rank for 2 ranks: every rank's calls (op, bytes, group) are the real 2-rank run's,
    and with compute left out the simulated time is the real run's; for 16 ranks (more than this machine
    has cores), each of the 16 makes the same calls (op, bytes) on the world's group."""
    _, _, _, real = example
    nproc, argv = RUNS["ddp"]

    def comms(program, rank):
        return [(n.kind, n.op, n.nbytes, len(program.groups[n.group])) for n in program.nodes[rank]
                if n.kind != "compute"]

    codes, logs, record = symmetric_run(tmp_path / "2", EXAMPLES / "ddp.py", nproc, argv)
    assert codes == {0: 0}, failure_report(codes, logs)
    mine = program_from_recording(record)
    assert mine.ranks == real.ranks
    for rank in real.ranks:
        assert comms(mine, rank) == comms(real, rank) and len(comms(real, rank)) > 2
    assert simulate(mine, scale_compute=0.0).time_s == pytest.approx(simulate(real, scale_compute=0.0).time_s,
                                                                     rel=1e-12)
    codes, logs, record = symmetric_run(tmp_path / "16", EXAMPLES / "ddp.py", 16, argv)
    assert codes == {0: 0}, failure_report(codes, logs)
    big = program_from_recording(record)
    assert list(big.ranks) == list(range(16))
    # (DDP's check of the parameters' shapes gathers a few bytes from each rank: 16 ranks' worth here)
    expected = [(k, op, b * 16 // nproc if op == "all_gather" else b) for k, op, b, _ in comms(real, 0)]
    for rank in big.ranks:
        assert [c[:3] for c in comms(big, rank)] == expected
        assert {len(big.groups[n.group]) for n in big.nodes[rank] if n.kind == "collective"} == {16}

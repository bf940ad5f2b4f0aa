"""Every workload kind is a program that can be exported (netsim's own trace format) and replayed elsewhere:
the replay of an exported run gives the same times."""

import numpy as np
import pytest

from netsim.faults.iteration import State, iteration_program
from netsim.faults.spec import JobSpec
from netsim.program import run_program
from netsim.scenario.loader import scenario_from_dict
from netsim.scenario.runner import place_jobs, scenario_program
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.traces import load_trace, own
from netsim.traces.replay import replay
from netsim.workloads.attention import AttentionShape, Device, attention_program, schedule, send_kinds
from netsim.workloads.compute import ComputeModel
from netsim.workloads.dag import dag_program
from netsim.workloads.diloco import StreamingConfig, streaming_diloco


def first_run(topo, program, **kw):
    sim = Simulation(topo, record_links=False)
    run = run_program(sim, program, {r: int(topo.gpus[i]) for i, r in enumerate(program.ranks)}, **kw)
    sim.run(run.done)
    return run.result()


def exported_and_replayed(tmp_path, topo, program, **kw):
    path = own.write(program, tmp_path / "program.parquet")
    return replay(load_trace(path).validate(), topo, **kw)


def same(first, again):
    assert again.time_s == pytest.approx(first.time_s, rel=1e-12)
    a, b = first.nodes.sort("rank", "node"), again.timeline.sort("rank", "node")
    np.testing.assert_allclose(b["end_s"].to_numpy(), a["end_s"].to_numpy(), rtol=1e-12, atol=1e-15)


def test_attention(tmp_path):
    topo = full_mesh(4, 25e9, 2e-6)
    sched = schedule("tokenring", AttentionShape(seq=8192, heads=8, head_dim=128), 4)
    program = attention_program(sched, Device(100, 0.5))
    first = first_run(topo, program, sends="rendezvous",
                      tag_keys={t: ("attention", k) for k, t in send_kinds(sched).items()})
    same(first, exported_and_replayed(tmp_path, topo, program, sends="rendezvous"))


def test_training_dag(tmp_path):
    topo = full_mesh(3, 1.25e9, 1e-4)
    model = ComputeModel(layers=4, step_time=0.1, params=1e7)
    dag = streaming_diloco(model, StreamingConfig(inner_steps=4, fragments=2, overlap=1, bits=16, outer_steps=2))
    program, _ = dag_program(model, dag, 3, [np.ones(dag.steps)] * 3)
    first = first_run(topo, program, algo="ring", order="recorded")
    same(first, exported_and_replayed(tmp_path, topo, program))


def test_fault_study_iteration(tmp_path):
    topo = full_mesh(8, 12.5e9, 1e-6)
    job = JobSpec(replicas=4, tp=2, compute_s=0.01, dp_bytes=2**24, tp_bytes=2**20, iterations=10)
    program = iteration_program(job, State(tuple(range(4)), slow=((3, 0.5),)), iterations=2)
    same(first_run(topo, program), exported_and_replayed(tmp_path, topo, program))


def test_scenario_jobs(tmp_path):
    scenario = scenario_from_dict({
        "topology": {"kind": "single_switch", "gpus": 8, "bandwidth": "100Gbps", "latency": "1us"},
        "jobs": [{"name": "a", "gpus": 8, "placement": "contiguous", "start": "10us",
                  "workload": [{"op": "all_reduce", "size": "4MiB", "algo": "ring", "repeat": 2},
                               {"op": "all_gather", "size": "1MiB", "ranks": [0, 1, 2, 3]}]}]}, source="s.yaml")
    topo = scenario.topology
    jobs = scenario.config.job_list()
    sim = Simulation(topo, record_links=False)
    program, engines, gpu_of = scenario_program(scenario, jobs, place_jobs(topo, jobs, 0), sim)
    run = run_program(sim, program, gpu_of, external=engines, order="recorded")
    sim.run(run.done)
    same(run.result(), exported_and_replayed(tmp_path, topo, program))


@pytest.mark.parametrize("method", ["streaming_diloco", "gossip"])
def test_real_training(tmp_path, method):
    """Real training's timing (measured compute replaced by a fixed step time) is a program: exported and
    replayed, every step ends when the training run said it did."""
    from netsim.collectives import Communicator
    from netsim.training.coupled import TrainConfig, train
    from netsim.training.model import ModelConfig

    topo = full_mesh(4, 1.25e7, 1e-4)
    sim = Simulation(topo, record_links=False)
    comm = Communicator(sim, topo.gpus)
    cfg = TrainConfig(method=method, steps=8, inner_steps=4, batch=2, fragments=2, final_merge=True,
                      model=ModelConfig(layers=2, width=16, heads=2, context=8), step_time=0.01,
                      speeds=(1.0, 1.5, 1.0, 1.2))
    res = train(comm, cfg)
    sim.run()
    first = res["run"].result()
    steps = res["frame"]()
    assert len(steps) == 4 * (8 + (method == "gossip"))
    again = exported_and_replayed(tmp_path, topo, res["program"])
    same(first, again)
    if method == "gossip":  # the final merge is the last thing that happens
        assert again.time_s == pytest.approx(steps["time_s"].max(), rel=1e-12)
    else:  # the last fragment's all-reduce drains after the last step
        assert again.time_s > steps["time_s"].max() + 1e-6


def test_run_writes_its_jobs_as_chakra_that_replays_to_the_same_end(tmp_path):
    """`netsim run -o` writes the scenario's program as Chakra ET (a send_recv item as a send and a
    receive): replayed with each call's algorithm, it ends when the run did (times kept to 1 us)."""
    import polars as pl
    import yaml

    from netsim.cli import main

    doc = {"topology": {"kind": "single_switch", "gpus": 4, "bandwidth": "100Gbps", "latency": "1us"},
           "routing": ["ecmp"],
           "workload": [{"op": "all_reduce", "size": "8MiB", "algo": "ring"},
                        {"op": "send_recv", "size": "2MiB", "ranks": ["gpu0", "gpu3"]},
                        {"op": "all_gather", "size": "4MiB", "algo": "ring"}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out)]) == 0
    program = load_trace(out / "chakra").validate()
    assert program.format == "chakra" and len(program.nodes) == 4
    kinds = program.counts()
    assert kinds["send"] == 1 and kinds["recv"] == 1  # (items are also separated by empty all-reduces)
    assert sum(1 for n in program.all_nodes() if n.kind == "collective" and n.nbytes) == 2 * 4
    again = replay(program, scenario_from_dict(doc, source="s").topology, algo="ring")
    assert again.time_s == pytest.approx(pl.read_parquet(out / "collectives.parquet")["end_s"].max(), abs=2e-6)

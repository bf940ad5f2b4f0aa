"""The method scripts (netsim/training/methods) against a lock-step reference of their maths in one process:
with 2 workers and an fp32 exchange the mean of two values is exact whatever the order of the sum, so the
scripts' losses must equal the reference's bit for bit (on one torch thread, as each rank runs: kernels
split over threads sum in another order)."""

import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from netsim.collectives import Communicator
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.training.coupled import TrainConfig, train
from netsim.training.data import Shard, corpus_bytes
from netsim.training.model import ModelConfig, TinyLM
from netsim.training.outer import OuterNesterov

SMALL = ModelConfig(layers=1, width=32, heads=2, context=16)
STEPS, H, BATCH = 6, 3, 4


def reference(method: str) -> list[list[float]]:
    """Per worker, the loss of every step: both workers trained in lock-step, their exchanges averaged here."""
    models, opts, shards = [], [], []
    for w in range(2):
        torch.manual_seed(0)
        models.append(TinyLM(SMALL))
        opts.append(torch.optim.AdamW(models[-1].parameters(), lr=3e-3))
        shards.append(Shard(corpus_bytes(), w, 2, SMALL.context, BATCH, 0))
    outer = OuterNesterov(parameters_to_vector(models[0].parameters()).detach(), 0.7, 0.9)
    losses = [[], []]
    for t in range(1, STEPS + 1):
        for w, model in enumerate(models):
            opts[w].zero_grad()
            loss = model.loss(shards[w].next())
            loss.backward()
            losses[w].append(loss.item())
            if method == "diloco":
                opts[w].step()
        if method == "ddp":
            grads = [parameters_to_vector(p.grad for p in model.parameters()) for model in models]
            mean = (grads[0] + grads[1]) / 2
            for w, model in enumerate(models):
                for p, g in zip(model.parameters(), mean.split([p.numel() for p in model.parameters()])):
                    p.grad = g.view_as(p).clone()
                opts[w].step()
        elif t % H == 0:
            deltas = [outer.params - parameters_to_vector(model.parameters()).detach() for model in models]
            merged = outer.step((deltas[0] + deltas[1]) / 2)
            for model in models:
                vector_to_parameters(merged.clone(), model.parameters())
    return losses


@pytest.mark.parametrize("method", ["ddp", "diloco"])
def test_script_losses_equal_the_lock_step_reference_bit_for_bit(method):
    topo = full_mesh(2, 1.25e9, 0.01)
    sim = Simulation(topo, record_links=False)
    cfg = TrainConfig(method=method, steps=STEPS, inner_steps=H, batch=BATCH, model=SMALL, step_time=0.05,
                      exchange="fp32")
    res = train(Communicator(sim, topo.gpus), cfg)
    sim.run()
    frame = res["frame"]()
    got = [frame.filter(frame["worker"] == w)["loss"].to_list() for w in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert got == reference(method)
    finally:
        torch.set_num_threads(threads)
    # one all-reduce of the fp32 parameters (DiLoCo: every H steps; DDP: the gradient, every step)
    numel = sum(p.numel() for p in TinyLM(SMALL).parameters())
    calls = res["calls"]()
    assert calls["size_B"].to_list() == [4 * numel] * (STEPS if method == "ddp" else STEPS // H)


def test_every_training_method_in_the_registry_has_a_script_and_every_script_a_method():
    from netsim.training.coupled import METHODS, script
    from netsim.workloads.methods import TRAINING_NAMES

    assert all(script(name).is_file() for name in TRAINING_NAMES)
    assert {p.stem for p in METHODS.glob("*.py")} - {"__init__"} == set(TRAINING_NAMES)


def test_measured_compute_is_scaled_per_worker_and_every_step_waits_for_it():
    """No fixed step time: a step's compute is the script's measured forward, backward and optimiser step,
    x `time_scale` x the worker's speed factor; a step ends no sooner than its worker's compute so far."""
    topo = full_mesh(2, 1.25e9, 0.01)
    sim = Simulation(topo, record_links=False)
    cfg = TrainConfig(method="diloco", steps=4, inner_steps=2, batch=BATCH, model=SMALL, time_scale=2.0,
                      speeds=(1.0, 3.0))
    res = train(Communicator(sim, topo.gpus), cfg)
    sim.run()
    frame = res["frame"]()
    for w, speed in enumerate((1.0, 3.0)):
        mine = frame.filter(frame["worker"] == w)
        assert (mine["compute_s"] > 0).all()
        assert mine["compute_s"].sum() == pytest.approx(res["torch_seconds"][w] * 2.0 * speed, rel=1e-9)
        assert (mine["time_s"].to_numpy() >= mine["compute_s"].cum_sum().to_numpy() * (1 - 1e-12)).all()

"""Training inputs refused with one-line errors naming the field, and syncs counted for the summary."""

import math

import pytest

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.training.coupled import TrainConfig, train
from netsim.training.model import ModelConfig

SMALL = ModelConfig(layers=1, width=32, heads=2, context=16)


@pytest.mark.parametrize("kw, field", [
    ({"lr": math.inf}, "lr"), ({"lr": math.nan}, "lr"), ({"lr": 0.0}, "lr"), ({"outer_lr": -1.0}, "outer_lr"),
    ({"outer_momentum": 1.0}, "outer_momentum"), ({"alpha": 2.0}, "alpha"), ({"pull": math.nan}, "pull"),
    ({"speeds": (1.0, math.inf)}, "speeds"), ({"speeds": (1.0, 0.0)}, "speeds"), ({"step_time": math.inf}, "step_time"),
    ({"time_scale": math.nan}, "time_scale"), ({"steps": 0}, "steps"), ({"inner_steps": 2.5}, "inner_steps"),
    ({"batch": 0}, "batch"), ({"overlap": -1}, "overlap"), ({"seed": -3}, "seed"), ({"graph": "star"}, "graph"),
    ({"method": "co2"}, "method"), ({"exchange": "int4"}, "exchange"),
])
def test_train_config_refuses_bad_values(kw, field):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**({"model": SMALL} | kw))
    assert err.value.field == field


def test_dp_is_refused_naming_ddp():
    with pytest.raises(ConfigError, match=r"unknown method 'dp' \(known: ddp, .*did you mean 'ddp'"):
        TrainConfig(method="dp")


def test_model_shape_and_context_against_the_data_are_config_errors():
    with pytest.raises(ConfigError, match="5 heads do not divide the width 64") as err:
        ModelConfig(layers=1, width=64, heads=5)
    assert err.value.field == "heads"
    topo = full_mesh(4, 1e9)
    sim = Simulation(topo, record_links=False)
    cfg = TrainConfig(method="diloco", steps=2, inner_steps=2, model=ModelConfig(1, 32, 2, context=4000), step_time=0.1)
    with pytest.raises(ConfigError, match="longer than a data shard") as err:
        train(Communicator(sim, topo.gpus), cfg)
    assert err.value.field == "model.context"


BASE = "topology: {kind: full_mesh, gpus: 4, bandwidth: 100Gbps}\nsteps: 3\ninner_steps: 4\nbatch: 2\nstep_time: 10ms\n"
MODEL = "model: {layers: 2, width: 32, heads: 2, context: 16}\n"


@pytest.mark.parametrize("extra, field, text", [
    ("methods: [dp]", "methods.0", "unknown method 'dp' (known: ddp, diloco, streaming_diloco, noloco, gossip)"),
    ("lr: .inf", "lr", "finite"),
    ("speeds: [1, .inf, 1, 1]", "speeds.1", "finite"),
    ("speeds: [1, 1]", "speeds", "2 speed factors for 4 workers"),
    ("model: {layers: 1, width: 64, heads: 5, context: 16}", "model.heads", "5 heads do not divide the width 64"),
    ("model: {layers: 1, width: 32, heads: 2, context: 4000}", "model.context", "longer than a data shard"),
    ("time_scale: .nan", "time_scale", "finite"),
    ("device_flops: 1e-30", "device_flops", "beyond"),
])
def test_training_scenarios_refuse_bad_values_at_load(tmp_path, extra, field, text):
    from netsim.scenario.train import load_train_scenario

    path = tmp_path / "t.yaml"
    path.write_text(BASE + ("" if extra.startswith("model") else MODEL) + extra + "\n")
    with pytest.raises(ConfigError) as err:
        load_train_scenario(path)
    assert err.value.field == field and text in err.value.detail and err.value.source == str(path)


def test_summary_counts_syncs_so_a_run_too_short_to_sync_shows(tmp_path):
    from netsim.scenario.train import load_train_scenario, run_training

    path = tmp_path / "t.yaml"
    path.write_text(BASE + MODEL + "methods: [ddp, diloco, streaming_diloco, noloco]\nfragments: 2\n")
    cfg, topo, _ = load_train_scenario(path)
    summary = run_training(cfg, topo)["summary"]
    syncs = dict(zip(summary["method"].to_list(), summary["syncs"].to_list()))
    # 3 steps, H = 4: DDP syncs every step; DiLoCo and NoLoCo never; Streaming's fragment 1 at step round(4 / 2)
    assert syncs == {"ddp": 3, "diloco": 0, "streaming_diloco": 1, "noloco": 0}
    assert summary.filter(summary["method"] == "diloco")["sent_B"][0] == 0

"""The method registry, and every numeric input of the workloads checked at the library edge."""

import math

import numpy as np
import pytest

from netsim.errors import ConfigError
from netsim.workloads import methods
from netsim.workloads.compute import ComputeModel
from netsim.workloads.limits import MAX_PARAMS
from netsim.workloads.sweep import sweep_bandwidth, thresholds
from netsim.workloads.utilization import UtilizationConfig, utilization

MODEL = ComputeModel(layers=2, step_time=0.01, params=1e6)
OK = dict(workers=2, bandwidth=1e9, inner_steps=2, outer_steps=1)


def test_one_registry_names_every_method_once():
    assert methods.NAMES == ("ddp", "diloco", "streaming_diloco", "noloco", "co2", "gossip")
    assert methods.TRAINING_NAMES == ("ddp", "diloco", "streaming_diloco", "noloco", "gossip")
    assert methods.SWEEP_DEFAULT == ("ddp", "diloco", "streaming_diloco", "noloco", "co2")
    assert set(methods.TRAINING_NAMES) <= set(methods.NAMES) and set(methods.SWEEP_DEFAULT) <= set(methods.NAMES)
    lines = methods.help_text().splitlines()
    assert [line.split(":")[0] for line in lines] == list(methods.NAMES) and all(len(line) < 120 for line in lines)
    assert "co2" not in methods.help_text(training=True)


@pytest.mark.parametrize("name, training, expected", [
    ("dp", False, "unknown method 'dp' (known: ddp, diloco, streaming_diloco, noloco, co2, gossip); "
                  "did you mean 'ddp'?"),
    ("magic", False, "unknown method 'magic' (known: ddp, diloco, streaming_diloco, noloco, co2, gossip)"),
    ("co2", True, "method 'co2' has no real-training implementation (training runs: ddp, diloco, streaming_diloco, "
                  "noloco, gossip)"),
])
def test_unknown_methods_are_refused_naming_the_known_ones(name, training, expected):
    with pytest.raises(ConfigError) as err:
        methods.check_method(name, training=training)
    assert err.value.field == "method" and err.value.detail == expected
    with pytest.raises(ConfigError, match="did you mean 'ddp'"):
        utilization(UtilizationConfig("dp", MODEL, **OK))
    with pytest.raises(ConfigError, match="unknown method 'dp'") as err:
        sweep_bandwidth(["ddp", "dp"], np.array([1e9]), UtilizationConfig("ddp", MODEL))
    assert err.value.field == "methods"


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("kw, field", [
    ({"jitter": NAN}, "jitter"), ({"jitter": INF}, "jitter"), ({"jitter": -0.1}, "jitter"), ({"jitter": 11}, "jitter"),
    ({"speeds": np.array([1, INF])}, "speeds"), ({"speeds": np.array([1, NAN])}, "speeds"),
    ({"speeds": np.array([1, 0])}, "speeds"), ({"speeds": np.array([1, 1, 1])}, "speeds"),
    ({"bandwidth": NAN}, "bandwidth"), ({"bandwidth": INF}, "bandwidth"), ({"bandwidth": 0}, "bandwidth"),
    ({"latency": NAN}, "latency"), ({"latency": -1}, "latency"), ({"latency": INF}, "latency"),
    ({"workers": 1}, "workers"), ({"workers": 2.0}, "workers"), ({"seed": -1}, "seed"),
    ({"inner_steps": 0}, "inner_steps"), ({"outer_steps": 1.5}, "outer_steps"), ({"overlap": -1}, "overlap"),
    ({"bits": 5}, "bits"), ({"tcp_window": NAN}, "tcp_window"), ({"streams": 0}, "streams"),
    ({"bucket_bytes": NAN}, "bucket_bytes"), ({"bucket_bytes": 0}, "bucket_bytes"),
])
def test_bad_numbers_are_config_errors_naming_the_argument(kw, field):
    for method in ("ddp", "diloco", "noloco"):
        if field == "bucket_bytes" and method != "ddp":
            continue
        with pytest.raises(ConfigError) as err:
            utilization(UtilizationConfig(method, MODEL, **(OK | kw)))
        assert err.value.field == field


@pytest.mark.parametrize("args, field", [
    ((2, INF, 1e6), "step_time"), ((2, NAN, 1e6), "step_time"), ((2, 2e6, 1e6), "step_time"),
    ((2, 0.1, INF), "params"), ((2, 0.1, NAN), "params"), ((2, 0.1, 0), "params"), ((2, 0.1, MAX_PARAMS * 2), "params"),
    ((0, 0.1, 1e6), "layers"), ((2.0, 0.1, 1e6), "layers"), ((2, 0.1, 1e6, (0.5, NAN)), "layer_weights"),
])
def test_the_compute_model_refuses_non_finite_and_out_of_range_numbers(args, field):
    with pytest.raises(ConfigError) as err:
        ComputeModel(*args)
    assert err.value.field == field
    assert ComputeModel(2, 0.1, MAX_PARAMS).params == MAX_PARAMS  # the limit itself is allowed


def test_sweep_grid_and_targets_are_checked():
    for grid in ([], [1e9, NAN], [1e9, INF], [0.0]):
        with pytest.raises(ConfigError) as err:
            sweep_bandwidth(["diloco"], np.array(grid), UtilizationConfig("diloco", MODEL))
        assert err.value.field == "grid"
    frame = sweep_bandwidth(["diloco"], np.array([1e9]), UtilizationConfig("diloco", MODEL, inner_steps=2, outer_steps=1))
    for target in (0.0, 1.5, NAN):
        with pytest.raises(ConfigError) as err:
            thresholds(frame, (target,))
        assert err.value.field == "targets"

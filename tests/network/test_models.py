"""The network model registry: names with one line of help, and the schema and Simulation reading it."""

import pytest

from netsim.errors import ConfigError
from netsim.network import MODELS, NetworkModel, model_class, model_help, model_names
from netsim.scenario import scenario_from_dict
from netsim.sim import Simulation
from netsim.topology import single_switch

SCENARIO = {"topology": {"kind": "single_switch", "gpus": 4}, "workload": [{"op": "all_reduce", "size": "1MiB"}]}


def test_every_model_has_a_name_and_one_line_of_help():
    assert model_names()[0] == "fluid" and set(model_names()) == {"fluid", "analytic"}
    for name, text in model_help().items():
        assert issubclass(MODELS[name], NetworkModel) and MODELS[name].name == name
        assert text and "\n" not in text, name


@pytest.mark.parametrize("name", ["fluid", "analytic"])
def test_the_schema_accepts_every_registered_model(name):
    assert scenario_from_dict(dict(SCENARIO, network={"model": name}), source="s.yaml").config.network.model == name
    assert scenario_from_dict(dict(SCENARIO, network=name), source="s.yaml").config.network.model == name


def test_the_schema_rejects_an_unknown_model_listing_the_known_ones():
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(dict(SCENARIO, network={"model": "packet"}), source="s.yaml")
    message = str(info.value)
    assert message == "s.yaml: network.model: unknown network model 'packet' (known: fluid, analytic)"


def test_simulation_and_model_class_name_the_known_models():
    with pytest.raises(ConfigError, match=r"unknown network model 'packet' \(known: fluid, analytic\)"):
        Simulation(single_switch(2), network="packet")
    assert model_class("analytic") is MODELS["analytic"]

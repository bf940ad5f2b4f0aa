"""Scenario files to simulations and results."""

from netsim.scenario.config import Scenario, ScenarioConfig
from netsim.scenario.loader import default_scenario, load_scenario, scenario_from_dict
from netsim.scenario.runner import resolve_ranks, run_scenario, simulate
from netsim.scenario.summary import summarize

__all__ = ["Scenario", "ScenarioConfig", "default_scenario", "load_scenario", "resolve_ranks", "run_scenario",
           "scenario_from_dict", "simulate", "summarize"]

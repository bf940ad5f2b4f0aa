"""The `Simulation` (environment + topology + router + network + RNG + recorder) and its `Results`."""

from netsim.sim.results import Results
from netsim.sim.simulation import Simulation

__all__ = ["Results", "Simulation"]

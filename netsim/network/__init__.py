"""Network models behind one interface: `transfer(src, dst, nbytes, *, key=None) -> simpy.Event`."""

from __future__ import annotations

from netsim.errors import ConfigError
from netsim.network.analytic import AnalyticNetwork
from netsim.network.base import NetworkModel, NetworkOptions, TransferRecord
from netsim.network.fluid import FluidNetwork
from netsim.network.max_min import max_min_rates

MODELS: dict[str, type[NetworkModel]] = {"fluid": FluidNetwork, "analytic": AnalyticNetwork}


def model_class(name: str) -> type[NetworkModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown network model {name!r} (known: {', '.join(MODELS)})", field="network.model") from None


__all__ = ["AnalyticNetwork", "FluidNetwork", "MODELS", "NetworkModel", "NetworkOptions", "TransferRecord",
           "max_min_rates", "model_class"]

"""Network models behind one interface: `transfer(src, dst, nbytes, *, key=None) -> simpy.Event`,
and `send_batch` for many transfers at one instant.

`MODELS` is the registry the scenario schema and the CLI read: `fluid` (flow-level max-min
sharing, the default) and `analytic` (alpha-beta per transfer, no contention). Adding a model
means writing a `NetworkModel` subclass (with its `name` and one line of `help`) and listing
it in `MODELS` below.
"""

from __future__ import annotations

from netsim.errors import ConfigError
from netsim.network.analytic import AnalyticNetwork
from netsim.network.base import ConnectionProfile, NetworkModel, NetworkOptions, TransferRecord
from netsim.network.fluid import FluidNetwork
from netsim.network.max_min import max_min_rates

MODELS: dict[str, type[NetworkModel]] = {cls.name: cls for cls in (FluidNetwork, AnalyticNetwork)}


def model_names() -> list[str]:
    """The network model names, the default (`fluid`) first."""
    return list(MODELS)


def model_help() -> dict[str, str]:
    """Network model name -> its one line of help."""
    return {name: cls.help for name, cls in MODELS.items()}


def model_class(name: str) -> type[NetworkModel]:
    """The model registered as `name`; an unknown name is a `ConfigError` listing the known ones."""
    cls = MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown network model {name!r} (known: {', '.join(MODELS)})", field="network.model")
    return cls


__all__ = ["AnalyticNetwork", "ConnectionProfile", "FluidNetwork", "MODELS", "NetworkModel", "NetworkOptions", "TransferRecord",
           "max_min_rates", "model_class", "model_help", "model_names"]

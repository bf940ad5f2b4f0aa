"""`--help` texts generated from the registries, so a new model, policy, algorithm or topology kind
shows up in every command's help without touching the CLI."""

from __future__ import annotations

import argparse

from netsim.collectives import OPS, algorithm_help, op_help
from netsim.network import model_help
from netsim.routing import policy_help
from netsim.topology import topology_kinds


def _block(title: str, entries: dict[str, str], indent: str = "  ") -> str:
    width = max(len(k) for k in entries)
    return "\n".join([title] + [f"{indent}{k:<{width}}  {v}" for k, v in entries.items()])


def network_models() -> str:
    return _block("network models (--network, or network.model in a scenario):", model_help())


def routing_policies() -> str:
    return _block("routing policies (name or name:arg):", policy_help())


def collectives() -> str:
    parts = [_block("collectives (--op, or op in a scenario):", op_help())]
    for op in OPS:
        parts.append(_block(f"algorithms for {op} (--algo):", algorithm_help(op), indent="    "))
    return "\n".join(parts)


def topology_kinds_text() -> str:
    return _block("topology kinds (kind in a topology file):", topology_kinds())


def epilog(*blocks: str) -> dict:
    """Keyword arguments for `add_parser` that print `blocks` below the flags, line breaks kept."""
    return {"epilog": "\n\n".join(blocks), "formatter_class": argparse.RawDescriptionHelpFormatter}

"""The error hierarchy. User mistakes raise a `NetsimError`; the CLI prints it and exits 2."""

from __future__ import annotations


class NetsimError(Exception):
    """A user mistake: bad configuration, bad input file, impossible request."""


class ConfigError(NetsimError):
    """A configuration value is wrong; the message names the source, the field and the expectation."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        parts = [p for p in (source, field) if p]
        super().__init__(": ".join(parts + [message]))


class UnitError(ConfigError):
    """A quantity such as '400Gbps' or '1.5us' does not parse."""


class TopologyError(ConfigError):
    """A topology is malformed: negative capacity, unknown node, disconnected hosts."""


class MissingExtra(NetsimError):
    """What a command needs is an optional extra that is not installed."""


def needs(module: str, extra: str, what: str) -> None:
    """Import `module` or raise a one-line `MissingExtra` saying which extra of netsim brings it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{what} needs {module}, which is not installed: pip install 'netsim[{extra}]'") from None

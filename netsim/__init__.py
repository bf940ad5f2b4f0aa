"""netsim: a network-level communication simulator for distributed ML training."""

__version__ = "0.1.0"

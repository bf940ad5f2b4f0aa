"""Collectives: communicators and algorithms as step schedules executed on any network model."""

from netsim.collectives.closed_form import (
    BUSBW_FACTOR, bus_bandwidth, direct_all_to_all_time, ring_all_gather_time, ring_all_reduce_time,
    ring_reduce_scatter_time,
)
from netsim.collectives.communicator import ALGORITHMS, Communicator, algorithms, register_algorithm
from netsim.collectives.schedule import Schedule, Step, execute

__all__ = [
    "ALGORITHMS", "BUSBW_FACTOR", "Communicator", "Schedule", "Step", "algorithms", "bus_bandwidth",
    "direct_all_to_all_time", "execute", "register_algorithm", "ring_all_gather_time", "ring_all_reduce_time",
    "ring_reduce_scatter_time",
]

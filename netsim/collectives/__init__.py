"""Collectives: communicators and algorithms as step schedules executed on any network model."""

from netsim.collectives.algorithms import (
    ALGORITHMS, AUTO_CANDIDATES, OPS, Algorithm, algorithm_help, algorithms, alpha_beta, auto_help, choose, op_help,
    predicted_time, register_algorithm,
)
from netsim.collectives.closed_form import (
    BUSBW_FACTOR, bus_bandwidth, closed_form, direct_all_to_all_time, hierarchical_all_reduce_time, ring_all_gather_time, ring_all_reduce_time,
    ring_reduce_scatter_time,
)
from netsim.collectives.communicator import Communicator
from netsim.collectives.groups import KINDS, ParallelSpec, parallel_groups
from netsim.collectives.measure import time_collective
from netsim.collectives.request import Request
from netsim.collectives.schedule import Schedule, Step, execute

__all__ = [
    "ALGORITHMS", "AUTO_CANDIDATES", "Algorithm", "BUSBW_FACTOR", "Communicator", "KINDS", "OPS", "ParallelSpec",
    "algorithm_help", "auto_help", "op_help",
    "parallel_groups", "time_collective", "Request", "Schedule", "Step",
    "algorithms", "alpha_beta", "bus_bandwidth", "choose", "closed_form", "hierarchical_all_reduce_time", "direct_all_to_all_time", "execute", "predicted_time",
    "register_algorithm", "ring_all_gather_time", "ring_all_reduce_time", "ring_reduce_scatter_time",
]

from netsim.sim.results import BUSBW_FACTORS as _BUSBW_FACTORS  # noqa: E402  (Results.summary's factors)

_BUSBW_FACTORS.update(BUSBW_FACTOR)

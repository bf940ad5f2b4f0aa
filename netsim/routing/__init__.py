"""Routing: policies that map a transfer to weighted paths (ECMP, spraying, single path)."""

from netsim.routing.hashing import flow_hash
from netsim.routing.policies import Policy, make_policy, policy_names, register
from netsim.routing.route import Route
from netsim.routing.router import Router

__all__ = ["Policy", "Route", "Router", "flow_hash", "make_policy", "policy_names", "register"]

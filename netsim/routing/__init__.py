"""Routing: policies that map a transfer to weighted paths, registered by name.

The policies: `ecmp` (per-flow hashing), `spray` (ideal packet spraying), `single` (one static
path), `split:K` / `split:min` (subflows), `planned[:m]` (edge-colouring planner per collective
step), `c4p[:S]` (central planner, striping by measured throughput). `policy_help()` lists them
with one line each; `Policy` documents the hooks a new one implements.
"""

from netsim.routing.hashing import flow_hash
from netsim.routing.policy import POLICIES, Policy, make_policy, policy_help, policy_names, register
from netsim.routing.route import Route
from netsim.routing.router import Router

# each module registers its policies on import
from netsim.routing import c4p, ecmp, planned, single, split, spray  # noqa: E402,F401  (isort: skip)

__all__ = ["POLICIES", "Policy", "Route", "Router", "flow_hash", "make_policy", "policy_help", "policy_names",
           "register"]

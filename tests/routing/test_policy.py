"""The `Policy` base class and the registry: a policy written outside netsim, registered by name, runs
end to end, and the Router calls each of its hooks as the base class documents."""

import pytest

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.routing import POLICIES, Policy, Route, Router, policy_help, policy_names, register
from netsim.scenario import run_scenario, scenario_from_dict
from netsim.sim import Simulation
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

MiB = 2**20


def fabric(leaves=4, spines=4, hosts=4):
    spec = LeafSpineSpec(leaves=leaves, spines=spines, hosts_per_leaf=hosts,
                         host=HostSpec(nic_bandwidth=1e9, pcie_bandwidth=1e12), spine_bandwidth=1e9)
    return leaf_spine(spec)


class Last(Policy):
    """Every transfer on the last working equal-cost path; counts the hook calls it gets."""

    name = "last"

    def __init__(self, topo, cache, stripes=1):
        self.topo, self.cache, self.learns = topo, cache, stripes > 1
        self.stripes = stripes
        self.routed, self.batches, self.changes, self.observed = 0, [], 0, []

    def route(self, src, dst, key):
        self.routed += 1
        path = self.cache.paths(src, dst)[-1]
        return Route.of(self.topo, [path] * self.stripes, [1.0 / self.stripes] * self.stripes,
                        independent=self.stripes > 1)

    def links_changed(self):
        self.changes += 1

    def observe(self, src, dst, key, route, path, seconds, nbytes):
        self.observed.append((src, dst, path, nbytes))


class WholeStep(Last):
    """The same routes, but asked for a collective step at a time."""

    def route_batch(self, src, dst, key):
        self.batches.append(len(src))
        return super().route_batch(src, dst, key)


@pytest.fixture
def custom():
    built = []

    def factory(cls):
        def make(topo, cache, seed, arg):
            built.append(cls(topo, cache, int(arg) if arg else 1))
            return built[-1]
        return make

    register("last", "every transfer on the last equal-cost path")(factory(Last))
    register("whole_step", "the last path, planned a step at a time")(factory(WholeStep))
    yield built
    del POLICIES["last"], POLICIES["whole_step"]


def test_a_registered_subclass_runs_a_scenario_by_name(custom):
    assert policy_help()["last"] == "every transfer on the last equal-cost path"
    data = {"topology": {"kind": "leaf_spine", "leaves": 2, "spines": 4, "hosts_per_leaf": 2},
            "routing": ["last", "ecmp"], "workload": [{"op": "all_to_all", "size": "4MiB"}]}
    results = run_scenario(scenario_from_dict(data, source="s.yaml"))
    assert sorted(results.collectives["variant"].unique().to_list()) == ["ecmp", "last"]
    last = custom[-1]  # the one that ran (the scenario checks the name first)
    assert isinstance(last, Last) and last.routed > 0 and last.changes == 0 and not last.observed


def test_the_router_caches_routes_and_uses_only_the_last_spine(custom):
    topo = fabric()
    sim = Simulation(topo, routing="last")
    comm = Communicator(sim, topo.gpus)
    sim.run([comm.all_to_all(16 * MiB), comm.all_to_all(16 * MiB)])
    last = custom[0]
    assert last.routed == 16 * 15  # once per (src, dst, key): the second all-to-all reuses the cached routes
    assert last.batches == []  # no route_batch of its own: the Router routed transfer by transfer
    leaf = topo.attrs["leaf"]
    pairs = [(int(a), int(b)) for a in topo.gpus for b in topo.gpus if leaf[a] != leaf[b]]
    spines = {topo.node_names[int(topo.link_dst[link])] for a, b in pairs
              for link in sim.router.paths(a, b, ("", "world"))[0][0] if topo.node_kind[topo.link_dst[link]] == "spine"}
    assert spines == {"spine3"}


def test_a_planner_sees_each_collective_step_whole(custom):
    topo = fabric()
    sim = Simulation(topo, routing="whole_step")
    sim.run(Communicator(sim, topo.gpus).all_to_all(16 * MiB))
    assert custom[0].batches == [16 * 15]  # the one step of a direct all-to-all, all its transfers at once


def test_links_changed_is_called_on_a_fault_and_routes_avoid_the_link(custom):
    topo = fabric()
    sim = Simulation(topo, routing="last")
    failed = topo.links_named("leaf0<->spine3")
    sim.schedule_fault(0.0, failed)
    results = sim.run(Communicator(sim, topo.gpus).all_to_all(16 * MiB))
    assert custom[0].changes == 1
    assert results.links.filter(results.links["link"].is_in(failed))["carried_B"].sum() == 0


def test_a_policy_that_learns_is_asked_every_time_and_told_every_flow(custom):
    topo = fabric(leaves=2, spines=2, hosts=1)
    sim = Simulation(topo, routing="last:2")
    comm = Communicator(sim, topo.gpus)
    sim.run([comm.send(0, 1, 8 * MiB)])
    sim.run([comm.send(0, 1, 8 * MiB)])
    last = custom[0]
    assert last.learns and last.routed == 2
    assert sorted(p for *_, p, _ in last.observed) == [0, 0, 1, 1]  # each stripe, each transfer
    assert sum(n for *_, n in last.observed) == 16 * MiB


def test_base_class_defaults():
    class Bare(Policy):
        pass

    bare = Bare()
    assert not bare.learns
    with pytest.raises(NotImplementedError):
        bare.route(0, 1, ())
    assert bare.links_changed() is None
    assert bare.observe(0, 1, (), None, 0, 1.0, 1) is None


def test_every_policy_is_a_policy_with_one_line_of_help():
    topo = fabric()
    assert list(policy_help()) == policy_names()
    for name in policy_names():
        spec = "split:2" if name == "split" else name
        assert isinstance(Router(topo, spec).policy, Policy), name
        text = policy_help()[name]
        assert text and "\n" not in text, name


def test_registry_names_and_errors():
    with pytest.raises(ValueError, match="without ':'"):
        register("a:b", "no")
    with pytest.raises(ConfigError, match=r"unknown routing policy 'magic' \(known: c4p, ecmp, planned"):
        Router(fabric(), "magic")
    with pytest.raises(ConfigError, match="takes no argument"):
        Router(fabric(), "spray:2")

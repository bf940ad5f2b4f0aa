"""The collective registries: ops and algorithms with one line of help each, `auto` explained, and the
scenario schema's op and group choices taken from them."""

import typing

import pytest

from netsim.collectives import (
    ALGORITHMS, AUTO_CANDIDATES, KINDS, OPS, algorithm_help, algorithms, auto_help, op_help, register_algorithm,
)
from netsim.collectives.ring import ring
from netsim.scenario.config import CollectiveItem


def test_every_op_and_algorithm_has_one_line_of_help():
    assert tuple(op_help()) == OPS == tuple(ALGORITHMS)
    for op in OPS:
        helps = algorithm_help(op)
        assert list(helps) == algorithms(op) and algorithms(op)[-1] == "auto"
        assert all(text and "\n" not in text for text in helps.values()), op
        assert set(AUTO_CANDIDATES[op]) <= set(ALGORITHMS[op])


def test_auto_help_names_the_candidates_and_the_chunk_suffix():
    assert "ring, rings, tree" in auto_help("all_reduce") and "treex16" in auto_help("all_reduce")
    assert "ringx8" in auto_help("broadcast")
    assert "x" not in auto_help("reduce_scatter").split("picks")[-1]  # nothing pipelined: no suffix
    assert auto_help("all_to_all") == "direct, the one candidate"


def test_register_algorithm_checks_the_op_and_the_name():
    with pytest.raises(ValueError, match="unknown collective 'gather'"):
        register_algorithm("gather", "ring", ring("all_gather"), "no")
    with pytest.raises(ValueError, match="automatic choice"):
        register_algorithm("all_gather", "auto", ring("all_gather"), "no")


def test_the_scenario_schema_takes_ops_and_group_kinds_from_the_registries():
    fields = CollectiveItem.model_fields
    assert typing.get_args(fields["op"].annotation) == OPS + ("send_recv",)
    group = [a for a in typing.get_args(fields["group"].annotation) if a is not type(None)][0]
    assert typing.get_args(group) == KINDS


@pytest.mark.parametrize("topology", ["rail64.yaml", "leafspine128_2to1.yaml", "nvlink8.yaml"])
def test_closed_form_transfer_counts_equal_the_schedules_built(topology):
    """The work estimate counts transfers in closed form (never building a schedule): every count equals the
    schedule's own, for every algorithm that has one, on rank sets of many sizes and server layouts."""
    from pathlib import Path

    from netsim.collectives import ALGORITHMS
    from netsim.collectives.request import Request
    from netsim.errors import ConfigError
    from netsim.topology import load_topology

    topo = load_topology(Path(__file__).resolve().parents[2] / "topologies" / topology)
    gpus = topo.gpus
    checked = 0
    for n in sorted({1, 2, 3, 5, 8, 12, 16, min(33, len(gpus)), len(gpus)}):
        if n > len(gpus):
            continue
        for nodes in (gpus[:n], gpus[::max(1, len(gpus) // n)][:n]):
            for op, algos in ALGORITHMS.items():
                for name, algo in algos.items():
                    if algo.count is None:
                        continue
                    req = Request(nodes, 1 << 20, 1, topo)
                    try:
                        built = sum(len(s.src) for s in algo.build(req).steps)
                    except ConfigError:
                        with pytest.raises(ConfigError):  # a count refuses what the builder refuses
                            algo.count(req)
                        continue
                    assert algo.count(req) == built, (op, name, n)
                    checked += 1
    assert checked > 50

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

"""The examples in the workloads' docstrings run and print what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["dag", "ddp", "diloco", "gossip", "utilization", "attention", "nccl_tests", "calibrate"])
def test_docstring_examples(name):
    module = importlib.import_module(f"netsim.workloads.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

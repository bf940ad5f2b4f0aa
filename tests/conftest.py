import pytest

from netsim.network import FluidNetwork


@pytest.fixture(autouse=True)
def check_partial_rate_recomputation(monkeypatch):
    """Throughout the suite, every partial max-min recomputation is checked against a full one."""
    monkeypatch.setattr(FluidNetwork, "check_rates", True)

import pytest

from netsim.network import FluidNetwork


@pytest.fixture(autouse=True)
def check_partial_rate_recomputation(monkeypatch):
    """Throughout the suite, every partial max-min recomputation is checked against a full one, and every
    recomputation is first tried from what changed (`fluid_kernel._local`; by default only components of
    more than `FluidNetwork.local_after` flows are), so the suite's small fabrics try it too."""
    monkeypatch.setattr(FluidNetwork, "check_rates", True)
    monkeypatch.setattr(FluidNetwork, "local_after", 0)

import pytest

from netsim.errors import UnitError
from netsim.units import format_bandwidth, format_size, format_time, parse_bandwidth, parse_size, parse_time


@pytest.mark.parametrize("text, expected", [
    ("400Gbps", 50e9), ("50GB/s", 50e9), ("1Tbps", 125e9), ("100Mbps", 12.5e6), ("1GiB/s", 2**30),
    ("8bps", 1.0), (12.5e9, 12.5e9), ("1e9", 1e9),
])
def test_bandwidth(text, expected):
    assert parse_bandwidth(text) == pytest.approx(expected, rel=1e-15)


def test_plain_number_uses_default_unit():
    assert parse_bandwidth(100, default_unit="Gbps") == pytest.approx(12.5e9)
    assert parse_time(3, default_unit="ms") == pytest.approx(3e-3)
    assert parse_size(2, default_unit="MiB") == 2 * 2**20


@pytest.mark.parametrize("text, expected", [("1.5us", 1.5e-6), ("2ms", 2e-3), ("10ns", 1e-8), ("0", 0.0),
                                            ("0.25s", 0.25), ("1e-6", 1e-6)])
def test_time(text, expected):
    assert parse_time(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("text, expected", [("64MiB", 64 * 2**20), ("1e9", 10**9), ("1GB", 10**9), ("4KiB", 4096),
                                            (1024, 1024), ("1.5KiB", 1536)])
def test_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["400Gbpz", "fast", "1.5 parsecs", "", None, True, [1]])
def test_unknown_or_malformed_is_an_error_naming_the_value(bad):
    with pytest.raises(UnitError) as info:
        parse_bandwidth(bad, field="host_bandwidth")
    assert "host_bandwidth" in str(info.value)
    if isinstance(bad, str) and bad:
        assert repr(bad) in str(info.value)


def test_fractional_bytes_rejected():
    with pytest.raises(UnitError):
        parse_size("0.5B")


def test_format_round_trips():
    assert format_bandwidth(50e9) == "400Gbps"
    assert format_time(1.5e-6) == "1.5us"
    assert format_size(64 * 2**20) == "64MiB"
    assert parse_bandwidth(format_bandwidth(12.5e9)) == pytest.approx(12.5e9)
    assert parse_time(format_time(2e-3)) == pytest.approx(2e-3)

"""The calibrated PCIe A10 box: a per-connection cap set by the fabric, and the TokenRing README's case."""

from pathlib import Path

import pytest

from netsim.collectives import Communicator
from netsim.errors import ConfigError
from netsim.network import NetworkOptions
from netsim.scenario.attention import load_attention_scenario, simulate_attention
from netsim.sim import Simulation
from netsim.topology import load_topology
from netsim.topology.config import topology_from_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "netsim" / "data" / "examples" / "cp_a10.yaml"
BOX = {"kind": "pcie", "gpus_per_switch": 2, "switches_per_socket": 2, "gpu_bandwidth": "25GB/s",
       "uplink_bandwidth": "25GB/s", "gpu_latency": "1us", "uplink_latency": "1us"}


def one_send(topo, options=None, src=0, dst=1, nbytes=10**9) -> float:
    sim = Simulation(topo, options=options, record_links=False)
    comm = Communicator(sim, topo.gpus)
    return sim.run(comm.send(src, dst, nbytes)).transfers["end_s"][0]


def test_connection_bandwidth_caps_each_connection_unless_the_options_do():
    capped = topology_from_dict({**BOX, "connection_bandwidth": "12.9GB/s"})
    assert capped.meta["connection_bandwidth"] == 12.9e9
    assert one_send(capped) == pytest.approx(1e9 / 12.9e9 + 2e-6, rel=1e-12)  # two 1 us hops
    assert one_send(topology_from_dict(BOX)) == pytest.approx(1e9 / 25e9 + 2e-6, rel=1e-12)
    assert one_send(capped, NetworkOptions(flow_rate_cap=5e9)) == pytest.approx(1e9 / 5e9 + 2e-6, rel=1e-12)
    # two connections out of one GPU share its 25 GB/s link: 12.5 each, below the cap
    sim = Simulation(capped, record_links=False)
    comm = Communicator(sim, capped.gpus)
    ends = sim.run([comm.send(0, 1, 10**9), comm.send(0, 2, 10**9)]).transfers["end_s"].to_list()
    assert ends == pytest.approx([1e9 / 12.5e9 + 2e-6, 1e9 / 12.5e9 + 4e-6], rel=1e-9)


@pytest.mark.parametrize("value, needle", [("-1GB/s", "must be positive"), ("fast", "cannot read 'fast'"),
                                           (0, "must be positive")])
def test_a_bad_connection_bandwidth_is_a_one_line_error(value, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        topology_from_dict({**BOX, "connection_bandwidth": value}, source="box.yaml")
    assert str(err.value).startswith("box.yaml: connection_bandwidth:")


def test_the_tokenring_readme_case_from_the_ring_measurement_alone():
    """Ring Attention's step is its K and V at the calibrated 12.9 GB/s; TokenRing's first two steps are its Q
    at the same rate (the blocks, 3.2 ms, hide behind them); TokenRing wins, as measured."""
    cfg, topo = load_attention_scenario(EXAMPLE)
    assert topo.meta["connection_bandwidth"] == load_topology("pcie4_a10").meta["connection_bandwidth"] == 12.9e9
    shape, n = cfg.shape(), 4
    t = cfg.seq // n
    block = cfg.device().seconds(4 * t * t * cfg.head_dim * cfg.heads / 2)  # a causal zigzag block: half a square
    assert block == pytest.approx(3.2e-3, rel=0.01)
    runs = simulate_attention(cfg, topo)
    ring, token = runs["zigzag_ring"][0].step_spans(), runs["tokenring"][0].step_spans()
    hop = 4 * 1e-6  # the slowest hop crosses both switches: four 1 us links
    assert ring[0] == pytest.approx(shape.kv_bytes(t) / 12.9e9 + hop, rel=1e-9)
    assert ring[0] == pytest.approx(7.6e-3, rel=0.01)  # the measurement it was calibrated from
    assert token[0] == pytest.approx(shape.q_bytes(t) / 12.9e9 + hop, rel=1e-9)
    assert runs["tokenring"][0].time_s < runs["zigzag_ring"][0].time_s

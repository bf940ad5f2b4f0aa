"""The ring-on-a-full-mesh shortcut against the full simulation (fluid model, step-schedule executor)."""

import numpy as np
import pytest

from netsim.collectives import Communicator
from netsim.network import NetworkOptions
from netsim.sim import Simulation
from netsim.topology import full_mesh
from netsim.workloads.compute import ComputeModel
from netsim.network.ring_mesh import RingMesh
from netsim.workloads.utilization import UtilizationConfig, utilization


def _ends(n, bw, lat, options, starts, sizes, shortcut):
    """End time of each ring all-reduce (started at `starts`, of `sizes` bytes), and the bytes moved."""
    sim = Simulation(full_mesh(n, bw, lat), seed=0, record_links=False, options=options)
    comm = RingMesh(sim, n, bw, lat, sim.network.options) if shortcut else Communicator(sim, sim.topology.gpus)
    ends = [None] * len(starts)

    def start(i):
        yield sim.env.timeout(starts[i])
        ends[i] = yield comm.run("all_reduce", sizes[i], algo="ring")

    for i in range(len(starts)):
        sim.process(start(i))
    results = sim.run()
    moved = comm.bytes_sent if shortcut else int(results.transfers["size_B"].sum())
    return np.array(ends), moved, sim.now


@pytest.mark.parametrize("seed", range(12))
def test_overlapping_all_reduces_match_the_fluid_model(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    bw = float(rng.choice([1e9, 1.25e10]))
    lat = float(rng.choice([0.0, 1e-4, 3e-3]))
    options = [None, NetworkOptions(tcp_window=float(rng.choice([2**16, 2**20])), streams=2),
               NetworkOptions(overhead=2e-5, endpoint_rate_cap=bw / 3, flow_rate_cap=bw / 2)][seed % 3]
    count = int(rng.integers(1, 12))
    starts = np.sort(rng.uniform(0, 5e-3, count))
    if seed % 4 == 1:
        starts[1::2] = starts[::2][: len(starts[1::2])]  # some start at the very same instant
    # equal pieces first (one link stands for all), then unequal ones (the state copied to n links)
    sizes = [int(n * rng.integers(1, 10**6)) for _ in range(count)]
    if seed % 2:
        sizes[count // 2:] = [int(rng.integers(0, 3 * 10**6)) for _ in range(count - count // 2)]
    sizes[0] = sizes[0] if seed % 5 else 3  # fewer bytes than ranks: zero-byte pieces
    fast, fast_bytes, fast_now = _ends(n, bw, lat, options, starts, sizes, shortcut=True)
    full, full_bytes, full_now = _ends(n, bw, lat, options, starts, sizes, shortcut=False)
    assert fast == pytest.approx(full, rel=1e-12, abs=1e-15)
    assert fast_bytes == full_bytes == sum(2 * (n - 1) * s for s in sizes)
    assert fast_now == pytest.approx(full_now, rel=1e-12)


MODEL = ComputeModel(layers=6, step_time=0.05, params=3e7 + 5)


@pytest.mark.parametrize("method, workers, kw", [
    ("ddp", 2, {}),
    ("ddp", 5, {"latency": 0.002, "jitter": 0.3, "seed": 4}),
    ("ddp", 4, {"bucket_bytes": 2e7, "speeds": np.array([1.0, 1.3, 1.0, 2.0])}),
    ("ddp", 3, {"latency": 0.02, "tcp_window": 2.0**20, "streams": 3}),
    ("diloco", 6, {"latency": 0.03, "jitter": 0.2}),
    ("streaming_diloco", 4, {"fragments": 3, "overlap": 1, "bits": 4}),
    ("co2", 3, {"latency": 0.01}),
])
def test_utilization_with_the_shortcut_equals_the_full_simulation(method, workers, kw):
    kw = dict(workers=workers, bandwidth=1.25e9, inner_steps=4, outer_steps=2) | kw
    if "speeds" in kw:
        kw["speeds"] = tuple(kw["speeds"])
    fast = utilization(UtilizationConfig(method, MODEL, **kw))
    full = utilization(UtilizationConfig(method, MODEL, full_network=True, **kw))
    for name, value in fast.as_dict().items():
        if name != "method":
            assert value == pytest.approx(getattr(full, name), rel=1e-9, abs=1e-12), name


def test_equal_pieces_simulate_one_link_and_match_the_ring_formula():
    n, bw, lat, size = 64, 1e9, 1e-3, 64 * 10**6
    sim = Simulation(full_mesh(2, bw, lat), seed=0)  # the shortcut needs no mesh of its own
    mesh = RingMesh(sim, n, bw, lat)
    done = mesh.run("all_reduce", size)
    sim.run()
    assert mesh._m == 1  # one link stood for all 64
    assert done.value == pytest.approx(2 * (n - 1) * (lat + size / n / bw), rel=1e-12)
    assert mesh.bytes_sent == 2 * (n - 1) * size

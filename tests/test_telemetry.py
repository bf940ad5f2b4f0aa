"""The link meter's bins: coarsening (`LinkMeter.reach`) gives exactly what merging neighbours one step at a
time gives; the fluid engine's logged intervals (`LinkMeter.fold`) add up to each link's bytes, however often
the log fills, and a few links' timeline is theirs in the whole one."""

import numpy as np
import pytest

from netsim.collectives import Communicator
from netsim.sim import Simulation
from netsim.telemetry import TILE, LinkMeter
from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine


def _reference_reach(bins: np.ndarray, width: float, t: float) -> float:
    """Double the width one step at a time with numpy; returns the width."""
    nbins = bins.shape[0]
    while t > nbins * width:
        merged = bins.reshape(nbins // 2, 2, -1).sum(axis=1)
        bins[: nbins // 2] = merged
        bins[nbins // 2:] = 0.0
        width *= 2.0
    return width


@pytest.mark.parametrize("nbins, nlinks", [(2, 3), (8, 1), (128, TILE + 5), (16, 2 * TILE)])
def test_reach_merges_bins_as_one_step_at_a_time_does(nbins, nlinks):
    rng = np.random.default_rng(nbins * 1000 + nlinks)
    meter = LinkMeter(nlinks, nbins)
    meter.binned = True  # (written directly below)
    bins, width = meter.bins.copy(), meter.width
    t = 0.0
    for step in range(25):
        used = min(nbins, int(np.ceil(t / width)) + 1)  # only bins up to now hold anything
        add = rng.random((used, nlinks)) * (rng.random((used, nlinks)) < 0.4)
        meter.bins[:used] += add
        bins[:used] += add
        t += rng.exponential() * 10.0 ** rng.uniform(-7, 0)
        meter.reach(t)
        width = _reference_reach(bins, width, t)
        assert meter.width == width
        assert np.array_equal(meter.bins, bins), step
    assert meter.width > 1e-6  # (the run outgrew the first bins: some steps merged)


def _timeline(monkeypatch, log: int):
    monkeypatch.setattr(LinkMeter, "LOG", log)
    bw = 12.5e9
    topo = leaf_spine(LeafSpineSpec(leaves=4, spines=2, hosts_per_leaf=4, spine_bandwidth=bw / 2, spine_latency=1e-6,
                                    host=HostSpec(nic_bandwidth=bw, nic_latency=1e-6, pcie_bandwidth=64e9)))
    sim = Simulation(topo, routing="ecmp")
    comm = Communicator(sim, topo.gpus)
    sim.run([comm.run("all_to_all", 2**22, algo="direct"), comm.run("all_reduce", 2**24, algo="ring", chunks=2)])
    some = np.argsort(-sim.meter.total)[:7]  # (what a run's timeline frame asks for: its hottest links)
    _, chosen, chosen_width = sim.meter.timeline(some)  # the log binned into their columns alone, and kept
    starts, bins, width = sim.meter.timeline()
    assert chosen_width == width and np.array_equal(chosen, bins[:, some])
    with pytest.raises(ValueError, match="each link at most once"):
        sim.meter.timeline(some[[0, 1, 0]])
    return bins, width, sim.meter.total, sim.meter.peak, sim.now


def test_logged_intervals_bin_into_each_links_bytes_however_often_the_log_fills(monkeypatch):
    """Each link's bins add up to the bytes it carried (kept exactly, apart from the bins), the bins are the
    same to rounding whether the log was binned once at the end or every 64 intervals (coarsened in between),
    and the run itself does not depend on the meter."""
    once = _timeline(monkeypatch, 1 << 20)
    often = _timeline(monkeypatch, 64)
    bins, width, total, peak, end = once
    assert width > 1e-6 and bins.shape[0] * width >= end and (total > 0).sum() > 50
    assert np.allclose(bins.sum(axis=0), total, rtol=1e-12, atol=1e-6)
    assert (bins.max(axis=0) <= peak * width * (1 + 1e-12)).all()  # no bin carries more than the peak allows
    assert often[1] == width and often[4] == end
    assert np.array_equal(often[2], total) and np.array_equal(often[3], peak)
    assert np.allclose(often[0], bins, rtol=1e-12, atol=1e-6)

"""The link meter's bins: coarsening (`LinkMeter.reach`) and folding the whole-bin differences
(`settle_runs`) give exactly what merging neighbours one step at a time gives."""

import numpy as np
import pytest

from netsim.telemetry import TILE, LinkMeter


def _reference_reach(bins: np.ndarray, runs: np.ndarray, width: float, t: float) -> float:
    """Fold the differences, then double the width one step at a time with numpy; returns the width."""
    nbins = bins.shape[0]
    if t > nbins * width:
        bins += width * np.cumsum(runs[:nbins], axis=0)
        runs[:] = 0.0
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
    bins, runs, width = meter.bins.copy(), meter.runs.copy(), meter.width
    t = 0.0
    for step in range(25):
        used = min(nbins, int(np.ceil(t / width)) + 1)  # only bins up to now hold anything
        add = rng.random((used, nlinks)) * (rng.random((used, nlinks)) < 0.4)
        diff = rng.random((nbins + 1, nlinks)) * (rng.random((nbins + 1, nlinks)) < 0.1) * (step % 3 != 0)
        diff[:, rng.random(nlinks) < 0.5] = 0.0  # some blocks of links with no differences at all
        for b, r in ((meter.bins, meter.runs), (bins, runs)):
            b[:used] += add
            r += diff
        t += rng.exponential() * 10.0 ** rng.uniform(-7, 0)
        meter.reach(t)
        width = _reference_reach(bins, runs, width, t)
        assert meter.width == width
        assert np.array_equal(meter.bins, bins), step
        assert np.array_equal(meter.runs, runs)
    meter.settle_runs()
    bins += width * np.cumsum(runs[:nbins], axis=0)
    assert np.array_equal(meter.bins, bins)
    assert meter.width > 1e-6  # (the run outgrew the first bins: some steps merged)

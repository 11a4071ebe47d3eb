"""Binning, smoothing and label primitives of pipeline.preprocess.prepare."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.preprocess.prepare import (
    bin_means,
    bin_spikes,
    bin_trial_windows,
    gaussian_kernel,
    integrate_position,
    smooth_trials,
)


def test_matches_per_unit_histogram():
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 30, 20_000))
    u = rng.integers(0, 7, t.size)
    edges = np.arange(1001) * 0.03
    keep = t < edges[-1]
    ours = bin_spikes(t[keep], u[keep], 7, 0.0, 0.03, 1000)
    ref = np.stack([np.histogram(t[keep][u[keep] == k], edges)[0] for k in range(7)], axis=1)
    np.testing.assert_array_equal(ours, ref)


def test_spike_on_a_bin_edge_goes_to_the_bin_it_opens():
    # 0.09 / 0.03 = 2.9999999999999996 in floating point: a naive floor would put it in bin 2
    edges = np.arange(11) * 0.03
    t = edges[[0, 1, 2, 3, 4, 9]]
    counts = bin_spikes(t, np.zeros(t.size, int), 1, 0.0, 0.03, 10)[:, 0]
    np.testing.assert_array_equal(counts, [1, 1, 1, 1, 1, 0, 0, 0, 0, 1])
    # the right edge of the grid is open: a spike exactly at t0 + n_bins*dt is outside
    assert bin_spikes(edges[[10]], np.zeros(1, int), 1, 0.0, 0.03, 10).sum() == 0
    # same on per-trial grids with non-zero starts
    starts = np.array([1.0, 2.37])
    t2 = np.sort(np.concatenate([starts + 3 * 0.03, starts + 5 * 0.03 - 1e-12]))
    c = bin_trial_windows(t2, np.zeros(t2.size, int), 1, starts, 0.03, 8)[:, :, 0]
    np.testing.assert_array_equal(c[:, 3], [1, 1])
    np.testing.assert_array_equal(c[:, 4], [1, 1])


def test_empty_unit_and_spikes_outside_the_grid():
    t = np.array([-0.5, -1e-9, 0.01, 0.05, 0.31, 5.0])
    u = np.array([0, 0, 0, 2, 0, 2])
    counts = bin_spikes(t, u, 3, 0.0, 0.03, 10)
    assert counts.shape == (10, 3)
    assert counts[:, 1].sum() == 0  # a unit without spikes still has its column
    assert counts.sum() == 2  # -0.5, -1e-9, 0.31 (= bin 10, outside) and 5.0 are dropped
    assert counts[0, 0] == 1 and counts[1, 2] == 1


def test_trial_windows_overlap_and_spikes_outside_trials():
    t = np.array([0.5, 1.02, 1.05, 1.10, 3.0, 9.0])
    u = np.array([0, 0, 1, 1, 0, 1])
    starts = np.array([1.0, 1.03, 8.0])  # the first two overlap; 0.5 and 3.0 belong to no window
    c = bin_trial_windows(t, u, 2, starts, 0.03, 4)
    assert c.shape == (3, 4, 2)
    np.testing.assert_array_equal(c[0].sum(axis=0), [1, 2])  # 1.02 (u0), 1.05, 1.10 (u1)
    np.testing.assert_array_equal(c[1].sum(axis=0), [0, 2])
    assert c[2].sum() == 0  # 9.0 is after that window
    np.testing.assert_array_equal(c.sum(axis=(1, 2)), [np.sum((t >= s) & (t < s + 0.12)) for s in starts])


def test_window_binning_equals_global_binning_on_aligned_grids():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 100, 50_000))
    u = rng.integers(0, 5, t.size)
    full = bin_spikes(t, u, 5, 0.0, 0.03, 3000)
    starts = np.array([30, 300, 1234]) * 0.03
    windows = bin_trial_windows(t, u, 5, starts, 0.03, 40)
    for k, s in enumerate([30, 300, 1234]):
        np.testing.assert_array_equal(windows[k], full[s : s + 40])


def test_paper_kernel_and_smoothing():
    w = gaussian_kernel(0.045 / 0.03, 4)
    assert w.size == 9 and w.sum() == pytest.approx(1.0) and np.argmax(w) == 4
    assert w[0] == pytest.approx(np.exp(-0.5 * (4 / 1.5) ** 2) / np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2).sum())
    x = np.zeros((1, 21, 2))
    x[0, 10, 0] = 1.0
    y = smooth_trials(x, w)
    np.testing.assert_allclose(y[0, 6:15, 0], w)  # impulse response = kernel
    assert y[0, :, 1].sum() == 0 and y.sum() == pytest.approx(1.0)
    assert np.array_equal(gaussian_kernel(0, 0), [1.0])


def test_bin_means_with_nan_and_empty_bins():
    times = np.arange(0, 1, 0.01)
    values = np.stack([times, 2 * times], axis=1)
    values[50] = np.nan
    edges = np.array([[0.0, 0.1, 0.2], [0.451, 0.551, 0.556]])
    means, n_nan = bin_means(times, values, edges)
    np.testing.assert_allclose(means[0, 0], [0.045, 0.09])
    np.testing.assert_array_equal(n_nan, [[0, 0], [1, 0]])
    assert np.isfinite(means[1, 0]).all()  # NaN samples are skipped in the mean, but counted
    np.testing.assert_allclose(means[1, 1], [0.5535, 1.107], atol=1e-9)  # empty bin: interpolated at its centre


def test_position_integrated_from_alignment_bin():
    v = np.ones((2, 6, 2))
    p0 = integrate_position(v, 0, 0.03)
    np.testing.assert_allclose(p0[0, :, 0], 0.03 * np.arange(1, 7))  # dt * cumsum, as the paper
    p2 = integrate_position(v, 2, 0.03)
    np.testing.assert_allclose(p2[0, :, 0], 0.03 * np.arange(-1, 5))  # zero just before bin 2

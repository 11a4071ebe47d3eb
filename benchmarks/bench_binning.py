"""Binning throughput: ``pipeline.preprocess.prepare`` binning vs a per-unit ``np.histogram`` loop, side by side.

Prints spikes/s for both and their ratio, on (a) a long synthetic session binned on one continuous
30 ms grid and (b) the same spikes binned onto per-trial windows anchored at an event, and (c) the real
MC_Maze_Small spike times when ../shared/data/real is present. Counts are checked to be identical.

    python -m benchmarks.bench_binning [--units 150] [--minutes 60] [--rate 15] [--repeats 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.timing import best_of
from pipeline.preprocess.prepare import bin_spikes, bin_trial_windows

REAL = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/real/mc_maze_small_test/sub-Jenkins_ses-small_desc-test_ecephys.nwb"
)


def histogram_loop(times, units, n_units, edges):
    """The straightforward reference: one ``np.histogram`` per unit."""
    return np.stack([np.histogram(times[units == u], bins=edges)[0] for u in range(n_units)], axis=1)


def histogram_loop_windows(times, units, n_units, starts, bin_size, n_bins):
    """Reference for per-trial windows: one ``np.histogram`` per unit and trial."""
    per_unit = [times[units == u] for u in range(n_units)]
    out = np.empty((len(starts), n_bins, n_units), dtype=np.int64)
    for k, s in enumerate(starts):
        edges = s + np.arange(n_bins + 1) * bin_size
        for u, t in enumerate(per_unit):
            out[k, :, u] = np.histogram(t, bins=edges)[0]
    return out


def report(label, n_spikes, t_ours, t_ref):
    print(
        f"{label:<44} ours {n_spikes / t_ours:10.3e} spikes/s   np.histogram loop "
        f"{n_spikes / t_ref:10.3e} spikes/s   ratio {t_ref / t_ours:6.1f}x"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=150)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=15.0, help="mean firing rate (Hz)")
    ap.add_argument("--bin", type=float, default=0.03)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    duration = args.minutes * 60
    n = rng.poisson(args.rate * duration * args.units)
    times = np.sort(rng.uniform(0, duration, n))
    units = rng.integers(0, args.units, n).astype(np.int64)
    n_bins = int(duration / args.bin)
    edges = np.arange(n_bins + 1) * args.bin
    inside = times < edges[-1]  # np.histogram closes its last bin; keep the comparison exact
    times, units = times[inside], units[inside]
    print(
        f"synthetic session: {args.units} units, {args.minutes:g} min, {len(times):,} spikes, "
        f"{args.bin * 1e3:g} ms bins; best of {args.repeats}"
    )

    t_ours, ours = best_of(lambda: bin_spikes(times, units, args.units, 0.0, args.bin, n_bins), args.repeats)
    t_ref, ref = best_of(lambda: histogram_loop(times, units, args.units, edges), max(1, args.repeats // 2))
    assert np.array_equal(ours, ref), "continuous binning differs from np.histogram"
    report("continuous grid (bin_spikes)", len(times), t_ours, t_ref)

    # per-trial windows: 1.2 s + 2 x 4 margin bins every 2.5 s, anchored off-grid
    n_win = 40 + 8
    starts = np.arange(1.0, duration - 3, 2.5) + rng.uniform(0, args.bin, 1)
    in_windows = int(sum(np.searchsorted(times, s + n_win * args.bin) - np.searchsorted(times, s) for s in starts))
    t_ours, ours = best_of(lambda: bin_trial_windows(times, units, args.units, starts, args.bin, n_win), args.repeats)
    sub = starts[:60]  # the reference loop is slow: time it on 60 trials and scale per spike
    sub_spikes = int(sum(np.searchsorted(times, s + n_win * args.bin) - np.searchsorted(times, s) for s in sub))
    t_ref, ref = best_of(lambda: histogram_loop_windows(times, units, args.units, sub, args.bin, n_win), 1)
    assert np.array_equal(ours[: len(sub)], ref), "window binning differs from np.histogram"
    report(
        f"trial windows (bin_trial_windows, {len(starts)} trials)",
        in_windows,
        t_ours,
        t_ref * in_windows / max(sub_spikes, 1),
    )

    if REAL.exists():
        from pipeline.io.nwb import read_nwb

        ds = read_nwb(REAL, require_behavior=False)
        rt, ru = ds["spike_time"].values, ds["spike_unit"].values.astype(np.int64)
        nu = ds.sizes["unit"]
        nb = int(np.ceil(rt.max() / 0.001))
        e = np.arange(nb + 1) * 0.001
        t_ours, ours = best_of(lambda: bin_spikes(rt, ru, nu, 0.0, 0.001, nb), args.repeats)
        t_ref, ref = best_of(lambda: histogram_loop(rt, ru, nu, e), args.repeats)
        assert np.array_equal(ours, ref)
        report(f"real MC_Maze_Small, 1 ms ({len(rt):,} spikes)", len(rt), t_ours, t_ref)


if __name__ == "__main__":
    main()

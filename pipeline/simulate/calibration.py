"""Calibration of the simulated recordings against real ones: the statistics and the comparison.

The built-in simulation (:mod:`pipeline.simulate`) must behave like real motor-cortex recordings.
This module computes, in memory, the statistics the two are compared on, pairs them per area and
prints a real-versus-simulated markdown table (``python -m pipeline.simulate.calibration``; the table of
docs/calibration.md). Nothing here is tuned against a decoder of the methods (NER, CEBRA...).

On **prepared** datasets (:func:`pipeline.preprocess.prepare.prepare_dataset`: 30 ms bins, Gaussian smoothing sd
45 ms, trials cut from the go cue, chronological 80/20 split), per area:

``mean_hz``, ``mean_hz_iqr``, ``sd_hz``, ``sd_hz_iqr``
    median and interquartile range over units of each unit's mean and standard deviation of the
    smoothed rate over all ``(trial, bin)`` samples, in Hz (counts per bin / bin size).
``signal_share``
    median over units of the share of the rate variance explained by the condition means (target
    direction x time bin): signal versus trial-to-trial noise. The finite-trial bias of the
    condition means (noise variance / trials per condition) is subtracted.
``n_pcs80``
    principal components (covariance of the centred rates, not standardised, as
    :mod:`pipeline.embed.methods.pca`) needed for 80 % of the variance, averaged over random subsets of
    :data:`N_PC_UNITS` units so that areas with different unit counts compare.
``pca3_r2``
    held-out hand-velocity R² of a linear regression on the 3 leading principal components, both
    fitted on the training trials (the paper's PCA baseline with the ``linear`` decoder of
    :mod:`pipeline.analysis.decoding`: ``r2_score``, uniform average over x and y). A readout improves with
    the number of units, so real sessions are scored on random subsets of as many units as a
    simulated session has in that area (:func:`decoding_units`); ``pca3_r2_all`` is the score with
    all units (what the paper's tables report).
``linear_r2``
    the same with a ridge regression on all (matched) units: how linear the whole population is.
``fano_bins``, ``fano_trial``
    trial-to-trial variability of the smoothed counts relative to Poisson spiking, per bin (short
    time scales: below 1 for regular firing) and for the whole-window count (trial-epoch Fano
    factor: sees slow gain fluctuations) (:func:`smoothed_fano`).
``gain_cv``, ``gain_autocorr``
    size and trial-to-trial persistence of the rate fluctuations shared by the units of an area
    (:func:`shared_gain`).

On **raw spike counts** (ingest datasets of :func:`pipeline.io.read_source`), Fano factors of
counts in 100 ms windows (median over units and windows with at least :data:`FANO_MIN_MEAN`
spikes; :func:`fano_factor`):

``fano``
    within condition (target direction) and block of :data:`FANO_BLOCK_TRIALS` consecutive trials,
    around the go cue: Chips area 2 (TrialData) versus simulated center-out S1.
``fano_pooled``
    across all trials (the NLB MC_Maze test split has no condition labels), around movement onset:
    MC_Maze M1 and PMd versus a simulated maze session.

Real references (``../shared/data/real``, docs/DATA.md): Chewie M1 (2015, 2016) and PMd (2016)
and Han area 2 (S1, 2017) from the NER paper's preprocessed ``.mat`` files (``fmt='nermat'``,
prepared with the demo config's preprocessing block and the paper sheet's windows: 40 bins for
Chewie, 35 for Han); the MC_Maze_Small test NWB (Jenkins M1/PMd spike times); the Chips area 2
TrialData (10 ms counts, 4 targets). Simulated: sessions of :data:`SIM_SESSIONS` (the demo's
subject, dates, hemispheres and areas) with the demo config's seed and default parameters.

A simulated value passes when it lies within its tolerance (:data:`TOLERANCES`, each with its
reason) of the range spanned by the real sources of that area; statistics without a tolerance
are reported only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score

__all__ = [
    "REPORTED_ONLY",
    "SIM_SESSIONS",
    "TOLERANCES",
    "Row",
    "Tolerance",
    "area_stats",
    "compare",
    "decoding_units",
    "fano_factor",
    "linear_velocity_r2",
    "markdown_report",
    "markdown_table",
    "n_pcs_for_variance",
    "pca3_velocity_r2",
    "rate_stats",
    "real_prepared",
    "real_reference_stats",
    "shared_gain",
    "signal_share",
    "simulate_demo_session",
    "simulated_stats",
    "smoothed_fano",
    "spike_stats",
    "window_counts",
]

ROOT = Path(__file__).resolve().parents[2]
#: default location of the real recordings (docs/DATA.md)
REAL_DIR = ROOT.parent / "shared" / "data" / "real"

#: units per random subset for ``n_pcs80`` (below the smallest simulated area, 32 S1 units)
N_PC_UNITS = 30
#: random subsets averaged for ``n_pcs80``
N_PC_DRAWS = 20
#: share of variance the ``n_pcs80`` components must explain
VARIANCE_TARGET = 0.8
#: units below this mean rate are left out of the Fano statistics of smoothed rates (Hz)
MIN_RATE_HZ = 2.0
#: random unit subsets averaged for the unit-matched velocity R² of the real references
N_DECODE_DRAWS = 10
#: Fano-factor counting window (s)
FANO_WINDOW_S = 0.1
#: windows with a smaller mean count (spikes per window) are left out of the Fano factor
FANO_MIN_MEAN = 0.5
#: trials per block for the within-condition Fano factor of spike counts: variance is taken within
#: (condition, block of consecutive trials), about one simulated session, so that slow drifts over
#: a much longer real session (Chips: 544 trials) do not count
FANO_BLOCK_TRIALS = 150

#: real sessions of the NER paper used as references: (file stem, areas, bins per trial)
PAPER_REFERENCES: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("Chewie_20150629", ("M1",), 40),
    ("Chewie_20150630", ("M1",), 40),
    ("Chewie_20160929", ("M1", "PMd"), 40),
    ("Chewie_20161007", ("M1", "PMd"), 40),
    ("Han_20171201", ("S1",), 35),
    ("Han_20171204", ("S1",), 35),
    ("Han_20171207", ("S1",), 35),
)
#: Fano windows around the go cue for center-out data (Chips has -200 ... +400 ms around it)
GO_FANO_WINDOWS = (-0.2, 6)
#: Fano windows around movement onset for maze data (the MC_Maze test trials: -250 ... +450 ms)
MOVE_FANO_WINDOWS = (-0.25, 7)


@dataclass(frozen=True)
class Tolerance:
    """How far a simulated statistic may lie outside the range of the real sessions.

    Attributes:
        absolute: allowed distance in the statistic's own units.
        reason: one line on why this much.
    """

    absolute: float
    reason: str


#: tolerance of every calibrated statistic (key = statistic name), distance from the real range
TOLERANCES: dict[str, Tolerance] = {
    "mean_hz": Tolerance(2.0, "real sessions of one area differ by up to 2 Hz (Chewie M1: 7.7-9.7 Hz)"),
    "mean_hz_iqr": Tolerance(3.5, "the IQR of 32-80 sampled units moves by about 2 Hz between sessions"),
    "sd_hz": Tolerance(1.5, "real sessions of one area differ by up to 1.3 Hz"),
    "sd_hz_iqr": Tolerance(2.5, "as mean_hz_iqr (sampling of a few dozen units)"),
    "signal_share": Tolerance(0.07, "real sessions of one area span up to 0.08 (Chewie M1: 0.26-0.34)"),
    "n_pcs80": Tolerance(2.0, "real sessions of one area span up to 2.4 PCs (Chewie PMd: 11.2-13.5)"),
    "pca3_r2": Tolerance(0.1, "matched-unit subsets of one real session vary by 0.05-0.08 (SD)"),
    "linear_r2": Tolerance(0.1, "as pca3_r2"),
    "fano_bins": Tolerance(0.1, "real sessions of one area span 0.04; simulated ones move by 0.05"),
    "fano_trial": Tolerance(0.1, "real sessions of one area span up to 0.14 (Han: 1.25-1.39)"),
    "gain_cv": Tolerance(0.03, "real sessions of one area span up to 0.04 (Chewie M1: 0.01-0.05)"),
    "fano_pooled": Tolerance(0.25, "one real reference (another monkey, Jenkins); pooled over conditions"),
    "fano": Tolerance(
        0.7,
        "one reference from another monkey: Chips area 2 is far more variable "
        "(100 ms Fano 1.67) than Han's (fano_bins 1.1), which the simulation follows",
    ),
}

#: statistics reported but not asserted, and why
REPORTED_ONLY: dict[str, str] = {
    "pca3_r2_all": "all units: real sessions have 44-137 units per area, simulated ones 32-48",
    "gain_autocorr": "unstable when the shared variance is small (one simulated PMd: -0.4 and 0.8)",
}


# --------------------------------------------------------------------------- statistics
def _flat(rates: np.ndarray) -> np.ndarray:
    """``(trial, bin, unit)`` → ``(trial·bin, unit)`` float64."""
    rates = np.asarray(rates, dtype=np.float64)
    return rates.reshape(-1, rates.shape[-1])


def rate_stats(rates: np.ndarray, bin_size_s: float) -> dict[str, float]:
    """Distribution over units of the per-unit mean and standard deviation of the rate.

    Args:
        rates: ``(trial, bin, unit)`` smoothed counts per bin.
        bin_size_s: bin width (s), to express rates in Hz.

    Returns:
        ``mean_hz`` and ``sd_hz`` (medians over units) and ``mean_hz_iqr`` / ``sd_hz_iqr``
        (interquartile ranges over units), all in Hz.
    """
    x = _flat(rates) / float(bin_size_s)
    mean, sd = x.mean(axis=0), x.std(axis=0)
    out = {}
    for name, v in (("mean_hz", mean), ("sd_hz", sd)):
        q25, q50, q75 = np.percentile(v, [25, 50, 75])
        out[name] = float(q50)
        out[f"{name}_iqr"] = float(q75 - q25)
    return out


def signal_share(rates: np.ndarray, condition: np.ndarray) -> np.ndarray:
    """Per-unit share of rate variance explained by the condition x time-bin means.

    The variance of the condition means over all samples overestimates the signal by the noise of
    the means (within-condition variance / trials per condition); that bias is subtracted, so pure
    noise gives about 0.

    Args:
        rates: ``(trial, bin, unit)``.
        condition: ``(trial,)`` condition label (e.g. target direction).

    Returns:
        ``(unit,)`` shares in [0, 1] (NaN for units with no variance).
    """
    x = np.asarray(rates, dtype=np.float64)
    condition = np.asarray(condition)
    n_trials, n_bins, _ = x.shape
    total = x.reshape(-1, x.shape[-1]).var(axis=0)
    grand = x.mean(axis=(0, 1))
    signal = np.zeros(x.shape[-1])
    bias = np.zeros(x.shape[-1])
    for c in np.unique(condition):
        sel = x[condition == c]
        n_c = len(sel)
        m = sel.mean(axis=0)  # (bin, unit)
        w = n_c / (n_trials * n_bins)
        signal += w * ((m - grand) ** 2).sum(axis=0)
        if n_c > 1:
            bias += w * (sel.var(axis=0, ddof=1) / n_c).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (signal - bias) / total
    return np.clip(share, 0.0, 1.0)


def n_pcs_for_variance(
    rates: np.ndarray,
    fraction: float = VARIANCE_TARGET,
    *,
    n_units: int = N_PC_UNITS,
    n_draws: int = N_PC_DRAWS,
    seed: int = 0,
) -> float:
    """Principal components needed to explain ``fraction`` of the variance, at a fixed unit count.

    Args:
        rates: ``(trial, bin, unit)`` (centred, not standardised, as the PCA baseline).
        fraction: variance share to reach.
        n_units: units per random subset (all units when the area has fewer).
        n_draws: random subsets averaged (one when all units are used).
        seed: seed of the subset draws.

    Returns:
        The mean over subsets of the smallest ``k`` with cumulative explained variance ≥ ``fraction``.
    """
    x = _flat(rates)
    x = x - x.mean(axis=0)
    n = x.shape[1]
    rng = np.random.default_rng(seed)
    draws = [np.arange(n)] if n <= n_units else [rng.choice(n, n_units, replace=False) for _ in range(n_draws)]
    ks = []
    for idx in draws:
        ev = np.linalg.eigvalsh(np.cov(x[:, idx], rowvar=False))[::-1]
        cum = np.cumsum(ev) / ev.sum()
        ks.append(int(np.searchsorted(cum, fraction - 1e-12) + 1))
    return float(np.mean(ks))


def _within_condition_variance(x: np.ndarray, condition: np.ndarray) -> np.ndarray:
    """Pooled within-condition variance over the leading (trial) axis: ``sum (x - mean_c)² / (n - C)``."""
    labels = np.unique(condition)
    resid = np.zeros(x.shape[1:])
    for c in labels:
        sel = x[condition == c]
        resid += ((sel - sel.mean(axis=0)) ** 2).sum(axis=0)
    return resid / max(len(x) - len(labels), 1)


def smoothed_fano(
    rates: np.ndarray,
    condition: np.ndarray,
    bin_size_s: float,
    smoothing_sd_s: float,
    *,
    min_rate_hz: float = MIN_RATE_HZ,
) -> dict[str, float]:
    """Trial-to-trial variability of smoothed counts, relative to a Poisson process.

    ``fano_bins``: per unit, the within-condition variance of the smoothed count of each bin,
    averaged over bins, divided by what Poisson spiking gives after the same smoothing (mean count
    per bin x sum of squared kernel taps); about 1 for Poisson, below 1 for regular (refractory)
    spiking, above 1 with fast rate fluctuations. ``fano_trial``: Fano factor of the whole-window
    count (sum of the smoothed counts over the window's bins) across trials of one condition, which
    also sees slow (trial-level) gain fluctuations. Both: medians over units of at least
    ``min_rate_hz``.

    Args:
        rates: ``(trial, bin, unit)`` smoothed counts per bin.
        condition: ``(trial,)`` labels.
        bin_size_s: bin width (s).
        smoothing_sd_s: SD of the Gaussian smoothing (s); taps at ±4 bins as the prepare stage.
        min_rate_hz: units with a lower mean rate are left out.

    Returns:
        ``{"fano_bins": ..., "fano_trial": ...}``.
    """
    from pipeline.preprocess.prepare import gaussian_kernel

    x = np.asarray(rates, dtype=np.float64)
    condition = np.asarray(condition)
    taps = gaussian_kernel(smoothing_sd_s / bin_size_s, 4)
    mean = x.mean(axis=(0, 1))
    ok = mean / bin_size_s >= min_rate_hz
    if not ok.any():
        return {"fano_bins": float("nan"), "fano_trial": float("nan")}
    per_bin = _within_condition_variance(x[..., ok], condition).mean(axis=0)
    total = x[..., ok].sum(axis=1)
    per_trial = _within_condition_variance(total, condition)
    return {
        "fano_bins": float(np.median(per_bin / (mean[ok] * np.sum(taps**2)))),
        "fano_trial": float(np.median(per_trial / total.mean(axis=0))),
    }


def shared_gain(rates: np.ndarray, condition: np.ndarray) -> dict[str, float]:
    """Size and persistence of the shared (population-wide) trial-to-trial rate fluctuations.

    From the whole-window count of every unit and trial (sum of the smoothed counts over the
    bins), minus its condition mean: the population sum of these residuals varies with the
    covariance of the units; removing the units' own variances leaves the shared part.

    ``gain_cv``: ``sqrt(var(pop) - sum_u var(u)) / mean(pop)``, the coefficient of variation of a
    gain shared by all units (0 when the units vary independently; about the SD of a common
    multiplicative gain, whatever the number of units). ``gain_autocorr``: lag-1 autocovariance of
    the population residual over consecutive trials (chronological order) divided by the shared
    variance: near 1 for slow drifts over the session, near 0 for trial-by-trial fluctuations.

    Args:
        rates: ``(trial, bin, unit)`` smoothed counts, trials in recording order.
        condition: ``(trial,)`` labels.

    Returns:
        ``{"gain_cv": ..., "gain_autocorr": ...}`` (NaN autocorrelation without shared variance).
    """
    total = np.asarray(rates, dtype=np.float64).sum(axis=1)
    condition = np.asarray(condition)
    resid = total.copy()
    for c in np.unique(condition):
        resid[condition == c] -= resid[condition == c].mean(axis=0)
    pop = resid.sum(axis=1)
    shared = pop.var() - resid.var(axis=0).sum()
    cv = float(np.sqrt(max(shared, 0.0)) / total.sum(axis=1).mean())
    auto = float(np.mean(pop[:-1] * pop[1:]) / shared) if shared > 0 else float("nan")
    return {"gain_cv": cv, "gain_autocorr": auto}


def _split(train: np.ndarray, rates: np.ndarray, velocity: np.ndarray):
    """Training and test bins of ``(trial, bin, ·)`` arrays."""
    x, y = np.asarray(rates, dtype=np.float64), np.asarray(velocity, dtype=np.float64)
    return (
        x[train].reshape(-1, x.shape[-1]),
        y[train].reshape(-1, y.shape[-1]),
        x[~train].reshape(-1, x.shape[-1]),
        y[~train].reshape(-1, y.shape[-1]),
    )


def pca3_velocity_r2(rates: np.ndarray, velocity: np.ndarray, train: np.ndarray, n_components: int = 3) -> float:
    """Held-out velocity R² of a linear regression on the leading principal components.

    The principal axes are the leading eigenvectors of the covariance of the centred training bins
    (the subspace of :class:`sklearn.decomposition.PCA`, whose sign convention does not change a
    linear regression on the projections).

    Args:
        rates: ``(trial, bin, unit)``.
        velocity: ``(trial, bin, 2)`` hand velocity.
        train: ``(trial,)`` bool, the training trials (the store's chronological split).
        n_components: principal components (3, the paper's PCA baseline).

    Returns:
        ``r2_score`` on the test bins (uniform average over x and y).
    """
    x_tr, y_tr, x_te, y_te = _split(np.asarray(train, bool), rates, velocity)
    mean = x_tr.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov(x_tr - mean, rowvar=False))
    axes = vecs[:, ::-1][:, :n_components]
    reg = LinearRegression().fit((x_tr - mean) @ axes, y_tr)
    return float(r2_score(y_te, reg.predict((x_te - mean) @ axes)))


def linear_velocity_r2(rates: np.ndarray, velocity: np.ndarray, train: np.ndarray, alpha: float = 1.0) -> float:
    """Held-out velocity R² of a ridge regression on all units (same split and score as above)."""
    x_tr, y_tr, x_te, y_te = _split(np.asarray(train, bool), rates, velocity)
    reg = Ridge(alpha=alpha).fit(x_tr, y_tr)
    return float(r2_score(y_te, reg.predict(x_te)))


def decoding_units() -> dict[str, int]:
    """Units per area of a simulated center-out session (:data:`pipeline.simulate.DEFAULT_PARAMS`).

    The velocity R² of a linear readout grows with the number of units, so the real references
    are scored on random subsets of this many units (:func:`area_stats`).
    """
    from pipeline.simulate import DEFAULT_PARAMS

    return dict(DEFAULT_PARAMS["center_out"]["units"])


def area_stats(
    ds: xr.Dataset, area: str, *, n_units: int | None = None, n_draws: int = N_DECODE_DRAWS, seed: int = 0
) -> dict[str, float]:
    """Every prepared-data statistic of one area of a prepared dataset.

    Args:
        ds: a prepared dataset (``rates``, ``velocity``, ``direction``, ``split``, ``area``).
        area: ``M1``, ``PMd`` or ``S1``.
        n_units: score ``pca3_r2`` and ``linear_r2`` on random subsets of this many units (the
            mean over ``n_draws`` subsets) when the area has more; None = all units.
        n_draws: subsets drawn.
        seed: seed of the subset draws.

    Returns:
        ``mean_hz``, ``mean_hz_iqr``, ``sd_hz``, ``sd_hz_iqr``, ``signal_share``, ``n_pcs80``,
        ``fano_bins``, ``fano_trial``, ``gain_cv``, ``gain_autocorr``, ``pca3_r2``, ``linear_r2``
        (unit-matched when ``n_units`` is given), ``pca3_r2_all`` (all units), ``n_units``,
        ``n_trials``.
    """
    sel = np.asarray(ds["area"].values).astype(str) == area
    if not sel.any():
        raise ValueError(f"no {area} units in {ds.attrs.get('session', 'the dataset')}")
    rates = np.asarray(ds["rates"].values[..., sel], dtype=np.float64)
    velocity = np.asarray(ds["velocity"].values, dtype=np.float64)
    train = np.asarray(ds["split"].values).astype(str) == "train"
    direction = ds["direction"].values
    out = rate_stats(rates, float(ds.attrs["bin_size_s"]))
    out["signal_share"] = float(np.nanmedian(signal_share(rates, direction)))
    out["n_pcs80"] = n_pcs_for_variance(rates)
    out.update(smoothed_fano(rates, direction, float(ds.attrs["bin_size_s"]), float(ds.attrs["smoothing_sd_s"])))
    out.update(shared_gain(rates, direction))
    out["pca3_r2_all"] = pca3_velocity_r2(rates, velocity, train)
    n = rates.shape[-1]
    if n_units is None or n <= n_units:
        out["pca3_r2"] = out["pca3_r2_all"]
        out["linear_r2"] = linear_velocity_r2(rates, velocity, train)
    else:
        rng = np.random.default_rng(seed)
        scores = []
        for _ in range(n_draws):
            idx = rng.choice(n, int(n_units), replace=False)
            scores.append(
                (
                    pca3_velocity_r2(rates[..., idx], velocity, train),
                    linear_velocity_r2(rates[..., idx], velocity, train),
                )
            )
        out["pca3_r2"], out["linear_r2"] = (float(v) for v in np.mean(scores, axis=0))
    out["n_units"] = float(n)
    out["n_trials"] = float(rates.shape[0])
    return out


def window_counts(
    ds: xr.Dataset,
    area: str,
    *,
    event: str,
    start_s: float,
    n_windows: int,
    window_s: float = FANO_WINDOW_S,
    rewarded_only: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw spike counts in consecutive windows around an event, per trial, from an ingest dataset.

    Args:
        ds: an ingest dataset, ``spikes`` layout (spike times, ``{event}_time``) or ``aligned``
            layout (binned ``counts`` with ``{event}_bin``; ``window_s`` must be a whole number of
            its bins).
        area: area whose units to count.
        event: alignment event (``go_cue``, ``move_onset``).
        start_s: start of the first window relative to the event (s).
        n_windows: consecutive windows.
        window_s: window width (s).
        rewarded_only: keep rewarded trials only.

    Returns:
        ``(counts, condition)``: ``(trial, window, unit)`` counts and the trials' target direction
        (degrees; NaN when unknown) or, for maze data, ``trial_type * 10 + trial_version``.
    """
    from pipeline.preprocess.prepare import bin_trial_windows

    units = np.asarray(ds["area"].values).astype(str) == area
    if not units.any():
        raise ValueError(f"no {area} units")
    keep = np.asarray(ds["rewarded"].values, bool) if rewarded_only else np.ones(ds.sizes["trial"], bool)
    if ds.attrs["layout"] == "spikes":
        t_event = np.asarray(ds[f"{event}_time"].values, dtype=np.float64)
        keep &= np.isfinite(t_event)
        idx = np.flatnonzero(units)
        remap = np.full(ds.sizes["unit"], -1, dtype=np.int64)
        remap[idx] = np.arange(len(idx))
        su = remap[np.asarray(ds["spike_unit"].values, dtype=np.int64)]
        st = np.asarray(ds["spike_time"].values, dtype=np.float64)
        mine = su >= 0
        counts = bin_trial_windows(st[mine], su[mine], len(idx), t_event[keep] + start_s, window_s, n_windows)
    else:
        bin_s = float(ds.attrs["bin_size_s"])
        f = int(round(window_s / bin_s))
        if abs(f * bin_s - window_s) > 1e-9:
            raise ValueError(f"window {window_s} s is not a whole number of {bin_s} s bins")
        ev = np.asarray(ds[f"{event}_bin"].values, dtype=np.int64)
        first = ev + int(round(start_s / bin_s))
        n_bins = np.asarray(ds["n_bins"].values, dtype=np.int64)
        keep &= (ev >= 0) & (first >= 0) & (first + n_windows * f <= n_bins)
        rows = np.flatnonzero(keep)
        idx = first[rows, None] + np.arange(n_windows * f)[None, :]
        raw = np.asarray(ds["counts"].values[..., units], dtype=np.float64)
        counts = raw[rows[:, None], idx].reshape(len(rows), n_windows, f, -1).sum(axis=2)
    if "trial_type" in ds.coords:
        condition = (
            np.asarray(ds["trial_type"].values, dtype=np.float64) * 10
            + np.asarray(ds["trial_version"].values, dtype=np.float64)
        )[keep]
    else:
        condition = np.asarray(ds["direction"].values, dtype=np.float64)[keep]
    return counts.astype(np.float64), condition


def fano_factor(counts: np.ndarray, condition: np.ndarray | None = None, *, min_mean: float = FANO_MIN_MEAN) -> float:
    """Median Fano factor of spike counts across trials.

    Args:
        counts: ``(trial, window, unit)`` raw spike counts.
        condition: ``(trial,)`` labels; with them the variance is the pooled within-condition
            variance (``sum (x - mean_c)² / (n - C)``), without them the variance across all trials.
        min_mean: (unit, window) cells with a smaller mean count are left out.

    Returns:
        Median over the kept (unit, window) cells of variance / mean.
    """
    x = np.asarray(counts, dtype=np.float64)
    mean = x.mean(axis=0)
    if condition is None:
        var = x.var(axis=0, ddof=1)
    else:
        condition = np.asarray(condition)
        labels = np.unique(condition)
        resid = np.zeros_like(mean)
        for c in labels:
            sel = x[condition == c]
            resid += ((sel - sel.mean(axis=0)) ** 2).sum(axis=0)
        var = resid / max(len(x) - len(labels), 1)
    ok = mean >= min_mean
    if not ok.any():
        return float("nan")
    return float(np.median(var[ok] / mean[ok]))


def spike_stats(ds: xr.Dataset, area: str, *, event: str, pooled: bool) -> dict[str, float]:
    """Fano statistics of one area of an ingest dataset.

    Args:
        ds: ingest dataset (see :func:`window_counts`).
        area: area.
        event: ``go_cue`` (center-out; windows :data:`GO_FANO_WINDOWS`) or ``move_onset`` (maze;
            :data:`MOVE_FANO_WINDOWS`).
        pooled: also (or, without condition labels, only) the Fano factor pooled across conditions.

    Returns:
        ``fano`` (within condition and block of :data:`FANO_BLOCK_TRIALS` consecutive trials, when
        the trials have condition labels) and ``fano_pooled``
        (when ``pooled``).
    """
    start, n = GO_FANO_WINDOWS if event == "go_cue" else MOVE_FANO_WINDOWS
    counts, condition = window_counts(ds, area, event=event, start_s=start, n_windows=n)
    out = {}
    if np.isfinite(condition).all() and len(np.unique(condition)) > 1:
        block = np.arange(len(condition)) // FANO_BLOCK_TRIALS
        labels = np.unique(condition, return_inverse=True)[1]
        out["fano"] = fano_factor(counts, labels + (labels.max() + 1) * block)
    if pooled:
        out["fano_pooled"] = fano_factor(counts, None)
    return out


# --------------------------------------------------------------------------- real and simulated
def _prepare(source: Path, fmt: str, row: dict, preprocessing: dict, reader_options: dict | None = None) -> xr.Dataset:
    """Read and prepare one session in memory; returns the prepared dataset, loaded."""
    from pipeline.io import read_recording
    from pipeline.preprocess.prepare import prepare_dataset

    ds = read_recording(
        source, fmt=fmt, areas=row["area_list"], session=row["session_id"], reader_options=reader_options
    )
    return prepare_dataset(ds, session=row, preprocessing=preprocessing).load()


def _demo_preprocessing(window_bins: int, **overrides) -> dict:
    """The demo config's preprocessing block with a session's window overrides."""
    import copy

    from pipeline.stages.config import load_config

    prep = copy.deepcopy(load_config(ROOT / "config/config.yaml")["preprocessing"])
    prep["window_bins"] = int(window_bins)
    prep.update(overrides)
    return prep


def real_prepared(real_dir: Path, folder: Path, sessions: Sequence[str] | None = None) -> dict[str, xr.Dataset]:
    """The NER paper's preprocessed sessions, ingested (``nermat``) and prepared.

    Args:
        real_dir: the real-data folder (docs/DATA.md).
        folder: scratch folder for the stores.
        sessions: file stems of :data:`PAPER_REFERENCES` to use (default: all).

    Returns:
        ``{stem: prepared dataset}``.
    """
    out = {}
    for stem, areas, bins in PAPER_REFERENCES:
        if sessions is not None and stem not in sessions:
            continue
        subject, date = stem.split("_")
        row = {
            "session_id": f"{subject}-{date}",
            "subject": subject,
            "date": f"{date[:4]}-{date[4:6]}-{date[6:]}",
            "year": int(date[:4]),
            "hemisphere": "right" if date < "2016" else "left",
            "task": "center_out",
            "format": "nermat",
            "area_list": list(areas),
        }
        path = real_dir / "ner_paper_preprocessed" / f"{stem}_neural_con_dis_index.mat"
        out[stem] = _prepare(path, "nermat", row, _demo_preprocessing(bins), reader_options={"trial_bins": bins})
    return out


def real_reference_stats(
    real_dir: Path | str = REAL_DIR, folder: Path | str | None = None, sessions: Sequence[str] | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """Every statistic of the real references, per area and source.

    Args:
        real_dir: the real-data folder.
        folder: scratch folder (a temporary one when None).
        sessions: paper sessions to use (file stems; default all of :data:`PAPER_REFERENCES`).

    Returns:
        ``{area: {source: {statistic: value}}}``; sources are the paper sessions (prepared
        statistics), ``MC_Maze_small_test`` (pooled Fano, M1 and PMd) and ``Chips_area2`` (Fano, S1).
    """
    from pipeline.io.nwb import read_nwb
    from pipeline.io.trialdata import read_trialdata

    real_dir = Path(real_dir)
    out: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(folder) if folder is not None else Path(tmp)
        matched = decoding_units()
        for stem, ds in real_prepared(real_dir, work, sessions).items():
            for area in sorted(set(ds["area"].values)):
                out.setdefault(area, {})[stem] = area_stats(ds, area, n_units=matched.get(area))
    maze = read_nwb(
        real_dir / "mc_maze_small_test" / "sub-Jenkins_ses-small_desc-test_ecephys.nwb", require_behavior=False
    )
    for area in ("M1", "PMd"):
        out.setdefault(area, {})["MC_Maze_small_test"] = spike_stats(maze, area, event="move_onset", pooled=True)
    chips = read_trialdata(real_dir / "limblab_chips_area2_trialdata" / "tdGo2Fac.mat", ["S1"])
    out.setdefault("S1", {})["Chips_area2"] = spike_stats(chips, "S1", event="go_cue", pooled=False)
    return out


#: simulated sessions of the calibration, as the demo sheets define them (config/sessions_full.tsv;
#: kept here so that the calibration does not change when the demo's scope does)
SIM_SESSIONS: dict[str, dict] = {
    "SimC-20150629": dict(
        subject="SimC", date="2015-06-29", hemisphere="right", task="center_out", areas=["M1", "PMd", "S1"]
    ),
    "SimC-20150630": dict(
        subject="SimC", date="2015-06-30", hemisphere="right", task="center_out", areas=["M1", "PMd", "S1"]
    ),
    "SimC-20161006": dict(
        subject="SimC", date="2016-10-06", hemisphere="left", task="center_out", areas=["M1", "PMd", "S1"]
    ),
    "SimC-20161007": dict(
        subject="SimC", date="2016-10-07", hemisphere="left", task="center_out", areas=["M1", "PMd", "S1"]
    ),
    "SimJ-20090918": dict(subject="SimJ", date="2009-09-18", hemisphere="left", task="maze", areas=["M1", "PMd"]),
}


def demo_seed() -> int:
    """The simulation seed of the demo config (config/config.yaml)."""
    from pipeline.stages.config import load_config

    return int(load_config(ROOT / "config/config.yaml")["simulation"]["seed"])


def simulate_demo_session(
    session_id: str, folder: Path | str, *, params: dict | None = None, seed: int | None = None
) -> tuple[Path, dict, float]:
    """Simulate one session of :data:`SIM_SESSIONS` with the demo config's seed.

    Args:
        session_id: a key of :data:`SIM_SESSIONS`.
        folder: output folder (``{session_id}.nwb`` and ``{session_id}_truth.npz``).
        params: simulation parameters (default: the simulation's defaults, as the demo config).
        seed: simulation seed (default: the demo config's).

    Returns:
        ``(nwb path, sheet-like row, seconds the simulation took)``.
    """
    from pipeline.simulate import simulate_session

    spec = SIM_SESSIONS[session_id]
    row = {
        "session_id": session_id,
        "subject": spec["subject"],
        "date": spec["date"],
        "year": int(spec["date"][:4]),
        "hemisphere": spec["hemisphere"],
        "task": spec["task"],
        "format": "nwb",
        "area_list": list(spec["areas"]),
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nwb = folder / f"{session_id}.nwb"
    t0 = time.perf_counter()
    simulate_session(
        nwb,
        folder / f"{session_id}_truth.npz",
        session_id=session_id,
        subject=row["subject"],
        date=row["date"],
        hemisphere=row["hemisphere"],
        task=row["task"],
        areas=row["area_list"],
        seed=demo_seed() if seed is None else int(seed),
        params=params,
    )
    return nwb, row, time.perf_counter() - t0


def simulated_stats(
    session_ids: Iterable[str], folder: Path | str | None = None, *, params: dict | None = None, seed: int | None = None
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """Simulate demo sessions and compute every statistic on them.

    Center-out sessions give the prepared statistics (demo preprocessing: 40 bins from the go
    cue) and the within-direction Fano factor; maze sessions give the pooled Fano factor around
    movement onset (compared with the MC_Maze test split).

    Args:
        session_ids: keys of :data:`SIM_SESSIONS`.
        folder: scratch folder (a temporary one when None).
        params: simulation parameters (default: the simulation's defaults).
        seed: simulation seed (default: the demo config's).

    Returns:
        ``({area: {session: {statistic: value}}}, {session: simulation seconds})``.
    """
    from pipeline.io.nwb import read_nwb

    out: dict[str, dict[str, dict[str, float]]] = {}
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(folder) if folder is not None else Path(tmp)
        for sid in session_ids:
            nwb, row, seconds[sid] = simulate_demo_session(sid, work, params=params, seed=seed)
            raw = read_nwb(nwb, row["area_list"])
            if row["task"] == "center_out":
                ds = _prepare(nwb, "nwb", row, _demo_preprocessing(40))
                for area in row["area_list"]:
                    stats = area_stats(ds, area)
                    # within-direction Fano of spike counts around the go cue (real: Chips, S1)
                    stats.update(spike_stats(raw, area, event="go_cue", pooled=False))
                    out.setdefault(area, {})[sid] = stats
            else:
                # Fano pooled over conditions around movement onset (real: MC_Maze test split)
                for area in row["area_list"]:
                    stats = spike_stats(raw, area, event="move_onset", pooled=True)
                    out.setdefault(area, {})[sid] = {"fano_pooled": stats["fano_pooled"]}
    return out, seconds


# --------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Row:
    """One line of the comparison: a statistic of one area.

    Attributes:
        area: area.
        stat: statistic name.
        real: real values by source.
        sim: simulated values by session.
        tolerance: allowed distance outside the real range (None: reported only).
    """

    area: str
    stat: str
    real: dict[str, float]
    sim: dict[str, float]
    tolerance: float | None

    @property
    def real_range(self) -> tuple[float, float]:
        """(min, max) over the real sources."""
        v = [x for x in self.real.values() if np.isfinite(x)]
        return (min(v), max(v)) if v else (float("nan"), float("nan"))

    def distance(self, value: float) -> float:
        """How far ``value`` lies outside the real range (0 inside)."""
        lo, hi = self.real_range
        return float(max(lo - value, value - hi, 0.0))

    @property
    def passed(self) -> bool:
        """Every simulated value within the tolerance of the real range (True when not asserted)."""
        if self.tolerance is None:
            return True
        return all(np.isfinite(v) and self.distance(v) <= self.tolerance + 1e-12 for v in self.sim.values())


#: order of the statistics in the table
STAT_ORDER = (
    "mean_hz",
    "mean_hz_iqr",
    "sd_hz",
    "sd_hz_iqr",
    "signal_share",
    "n_pcs80",
    "pca3_r2",
    "linear_r2",
    "pca3_r2_all",
    "fano_bins",
    "fano_trial",
    "gain_cv",
    "gain_autocorr",
    "fano",
    "fano_pooled",
)


def compare(
    real: Mapping[str, Mapping[str, Mapping[str, float]]],
    sim: Mapping[str, Mapping[str, Mapping[str, float]]],
    tolerances: Mapping[str, Tolerance] = TOLERANCES,
) -> list[Row]:
    """Pair real and simulated statistics per area.

    Args:
        real: ``{area: {source: {stat: value}}}`` (:func:`real_reference_stats`).
        sim: the same for simulated sessions (:func:`simulated_stats`).
        tolerances: per statistic; statistics without one are reported only.

    Returns:
        One :class:`Row` per (area, statistic) present on both sides, in a fixed order.
    """
    rows = []
    for area in ("M1", "PMd", "S1"):
        for stat in STAT_ORDER:
            r = {s: v[stat] for s, v in real.get(area, {}).items() if stat in v}
            m = {s: v[stat] for s, v in sim.get(area, {}).items() if stat in v}
            if r and m:
                tol = tolerances.get(stat)
                rows.append(Row(area, stat, r, m, None if tol is None else tol.absolute))
    return rows


def _fmt(v: float) -> str:
    """A statistic as text: two decimals (NaN as ``nan``)."""
    return "nan" if not np.isfinite(v) else f"{v:.2f}"


def _short(source: str) -> str:
    """Short label of a source: ``Chewie_20161007`` → ``C161007``, ``SimC-20161007`` → ``S161007``."""
    for sep in ("_", "-"):
        if sep in source:
            name, _, date = source.partition(sep)
            if date.isdigit() and len(date) == 8:
                return f"{name[0]}{date[2:]}"
    return source


def markdown_table(
    rows: Sequence[Row], *, before: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
) -> str:
    """The comparison as a markdown table.

    Args:
        rows: from :func:`compare`.
        before: optional statistics of an older simulation (``{area: {session: {stat: value}}}``),
            shown in a column of their own (passes are not judged for them).

    Returns:
        Markdown: area, statistic, real range, real values per source, (simulated before),
        simulated values per session, tolerance (``reported`` when not asserted), and whether every
        simulated value passes.
    """
    head = ["area", "statistic", "real range", "real per source"]
    if before is not None:
        head.append("simulated before")
    head += ["simulated", "tolerance", "ok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lo, hi = r.real_range
        real_rng = _fmt(lo) if lo == hi else f"{_fmt(lo)} – {_fmt(hi)}"
        cells = [r.area, f"`{r.stat}`", real_rng, ", ".join(f"{_short(k)} {_fmt(v)}" for k, v in r.real.items())]
        if before is not None:
            old = {k: v[r.stat] for k, v in before.get(r.area, {}).items() if r.stat in v}
            cells.append(", ".join(f"{_short(k)} {_fmt(v)}" for k, v in old.items()) or "–")
        cells += [
            ", ".join(f"{_short(k)} {_fmt(v)}" for k, v in r.sim.items()),
            "reported" if r.tolerance is None else f"± {r.tolerance:g}",
            "" if r.tolerance is None else ("yes" if r.passed else "**no**"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(
    rows: Sequence[Row],
    *,
    seconds: Mapping[str, float] | None = None,
    before: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> str:
    """The table of :func:`markdown_table` followed by the tolerances, their reasons and timings.

    Args:
        rows: from :func:`compare`.
        seconds: simulation time per session (s), listed when given.
        before: optional statistics of an older simulation (a column of the table).

    Returns:
        Markdown text (docs/calibration.md holds one).
    """
    out = [markdown_table(rows, before=before), "", "Tolerances (distance allowed outside the real range):", ""]
    out += [f"- `{name}` ± {tol.absolute:g}: {tol.reason}" for name, tol in TOLERANCES.items()]
    out += ["", "Reported only:", ""]
    out += [f"- `{name}`: {why}" for name, why in REPORTED_ONLY.items()]
    if seconds:
        out += ["", "Simulation time per session: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())]
    failed = [f"{r.area} {r.stat}" for r in rows if not r.passed]
    out += ["", f"Failing: {', '.join(failed)}" if failed else "Every asserted statistic is within its tolerance."]
    return "\n".join(out)


#: sessions simulated by default for the table: one per year of SimC and a maze session
DEFAULT_SIM_SESSIONS = ("SimC-20150629", "SimC-20161007", "SimJ-20090918")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.simulate.calibration``: print the real-versus-simulated report as markdown.

    Returns:
        0 when every asserted statistic passes, 1 otherwise (2 without the real data).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default=str(REAL_DIR), help="real-data folder (docs/DATA.md)")
    parser.add_argument(
        "--sessions",
        nargs="*",
        default=list(DEFAULT_SIM_SESSIONS),
        help=f"sessions to simulate, of: {', '.join(SIM_SESSIONS)}",
    )
    args = parser.parse_args(argv)
    if not Path(args.real).is_dir():
        print(f"real data folder {args.real} is absent (docs/DATA.md)")
        return 2
    real = real_reference_stats(Path(args.real))
    sim, seconds = simulated_stats(args.sessions)
    rows = compare(real, sim)
    print(markdown_report(rows, seconds=seconds))
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""From an ingest dataset to the canonical *prepared* dataset that every method reads (in memory; the
rule :mod:`pipeline.stages.rules.prepare` reads and writes the stores).

Steps, as in the paper (NER_METHOD.md §4) unless the config says otherwise:

1. trial selection: rewarded trials (when the source records the outcome), trials that have the
   alignment event, trials whose window fits inside the trial (the paper drops trials too short
   for the window), and a NaN policy for behaviour inside the window;
2. binning on a per-trial grid anchored at the alignment event (continuous spike times are binned
   directly onto it; already-binned trials are re-binned by an integer factor), with
   ``half_width`` extra bins on each side so that smoothing sees real data at the window edges;
3. Gaussian smoothing (sd 45 ms, taps ±4 bins at 30 ms), *before* the window is cut;
4. labels: bin-mean hand velocity (cm/s), position integrated from the alignment bin, target
   direction rounded to 45° classes (0–315);
5. chronological split: the first ``int(train_fraction · n)`` trials train, the rest test.

All binning is vectorised (``floor`` + ``bincount``; no loop over bins or units). Continuous
recordings are binned in chunks of trials, lazily through dask, so memory stays bounded by the
chunk and the spike arrays (about 12 bytes per spike).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike

import dask
import dask.array as da
import numexpr as ne
import numpy as np
import xarray as xr
from scipy.ndimage import correlate1d

from pipeline import __version__
from pipeline.data.origin import versions
from pipeline.data.store import (
    MAZE_COORDS,
    as_object_strings,
    prepared_dataset,
    validate_ingest,
)
from pipeline.errors import InputError

log = logging.getLogger(__name__)

#: trials binned per dask task for continuous recordings
TRIAL_CHUNK = 128


# --------------------------------------------------------------------------- binning primitives
_EDGE_TOL = 1e-6  # in bins: positions this close to an edge are re-checked exactly


def _flat_bins(
    t: np.ndarray,
    start,
    bin_size: float,
    n_bins: int,
    units: np.ndarray,
    n_units: int,
    outside: int,
    row: np.ndarray | int = 0,
) -> np.ndarray:
    """Flat index ``(row·n_bins + bin)·n_units + unit`` of every spike, ``outside`` when off the grid.

    Bins are half-open ``[e_k, e_k+1)`` with float64 edges ``e_k = start + k·bin_size``. The bulk
    is computed in one fused numexpr pass; the few spikes within :data:`_EDGE_TOL` of an edge (where
    ``floor`` of a rounded quotient can be off by one, 0.09 / 0.03 = 2.9999…) are re-decided by an
    exact comparison against their edge.
    """
    inv = 1.0 / bin_size
    tol = _EDGE_TOL  # noqa: F841 (read by name in the numexpr expression, as are t, start, inv, row)
    flat = ne.evaluate(
        "where(abs((t - start) * inv - floor((t - start) * inv + 0.5)) < tol, -2,"
        " where(((t - start) * inv >= 0) & ((t - start) * inv < n_bins),"
        " (floor((t - start) * inv) + row * n_bins) * n_units + units, outside))"
    ).astype(np.int64)
    near = np.flatnonzero(flat == -2)
    if near.size:
        s_near = start if np.ndim(start) == 0 else start[near]
        k = np.floor((t[near] - s_near) * inv + 0.5)
        b = np.where(t[near] >= s_near + k * bin_size, k, k - 1).astype(np.int64)
        r = row if np.ndim(row) == 0 else row[near]
        flat[near] = np.where((b >= 0) & (b < n_bins), (b + r * n_bins) * n_units + units[near], outside)
    return flat


def _count(flat: np.ndarray, size: int) -> np.ndarray:
    """``bincount`` of flat indices; index ``size`` (off every grid) is dropped."""
    return np.bincount(flat, minlength=size + 1)[:size]


def bin_spikes(
    spike_times: np.ndarray, spike_units: np.ndarray, n_units: int, t0: float, bin_size: float, n_bins: int
) -> np.ndarray:
    """Count spikes on one uniform grid: ``counts[b, u]`` for bins ``[t0 + b·dt, t0 + (b+1)·dt)``.

    Spikes outside the grid are ignored. Every bin is half-open, including the last one (unlike
    ``np.histogram``, which closes its last bin on the right).

    Returns:
        ``(n_bins, n_units)`` int64 counts.
    """
    t = np.asarray(spike_times, dtype=np.float64)
    units = np.asarray(spike_units, dtype=np.int64)
    size = n_bins * n_units
    return _count(_flat_bins(t, float(t0), bin_size, n_bins, units, n_units, size), size).reshape(n_bins, n_units)


def bin_trial_windows(
    spike_times: np.ndarray,
    spike_units: np.ndarray,
    n_units: int,
    window_starts: np.ndarray,
    bin_size: float,
    n_bins: int,
) -> np.ndarray:
    """Count spikes on one grid per trial, each starting at ``window_starts[k]``.

    Args:
        spike_times: all spike times, **sorted ascending** (s).
        spike_units: unit index (0 … n_units-1) of each spike.
        window_starts: first bin edge of every trial (windows may overlap).

    Returns:
        ``(n_trials, n_bins, n_units)`` int64 counts.
    """
    starts = np.asarray(window_starts, dtype=np.float64)
    n_trials = len(starts)
    lo = np.searchsorted(spike_times, starts, side="left")
    hi = np.searchsorted(spike_times, starts + (n_bins + 1) * bin_size, side="left")
    sizes = hi - lo
    trial_of = np.repeat(np.arange(n_trials), sizes)
    # spike index for every (trial, spike-in-window) pair, without a Python loop over trials
    idx = np.arange(sizes.sum()) + np.repeat(lo - (np.cumsum(sizes) - sizes), sizes)
    size = n_trials * n_bins * n_units
    flat = _flat_bins(
        np.asarray(spike_times)[idx],
        starts[trial_of],
        bin_size,
        n_bins,
        np.asarray(spike_units, dtype=np.int64)[idx],
        n_units,
        size,
        row=trial_of,
    )
    return _count(flat, size).reshape(n_trials, n_bins, n_units)


def bin_means(times: np.ndarray, values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a sampled signal in each bin of many grids at once.

    Args:
        times: sample times, sorted ascending.
        values: ``(samples, channels)``.
        edges: ``(n_grids, n_bins + 1)`` bin edges.

    Returns:
        ``(means, n_nan)``: ``(n_grids, n_bins, channels)`` means over the valid samples of each bin
        (linear interpolation at the bin centre where a bin holds no sample), and the number of NaN
        samples per bin ``(n_grids, n_bins)``.
    """
    finite = np.isfinite(values).all(axis=1)
    clean = np.where(finite[:, None], values, 0.0)
    csum = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(clean, axis=0)])
    cvalid = np.concatenate([[0], np.cumsum(finite)])
    cnan = np.concatenate([[0], np.cumsum(~finite)])
    idx = np.searchsorted(times, edges, side="left")
    lo, hi = idx[:, :-1], idx[:, 1:]
    n_valid = cvalid[hi] - cvalid[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (csum[hi] - csum[lo]) / n_valid[..., None]
    empty = hi == lo
    if empty.any():
        centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
        ok_t, ok_v = times[finite], values[finite]
        for c in range(values.shape[1]):
            interp = np.interp(centres[empty], ok_t, ok_v[:, c], left=np.nan, right=np.nan)
            means[..., c][empty] = interp
    return means, cnan[hi] - cnan[lo]


def gaussian_kernel(sd_bins: float, half_width: int) -> np.ndarray:
    """Normalised Gaussian taps at ``-half_width … +half_width`` bins (a delta when ``sd_bins == 0``)."""
    k = np.arange(-half_width, half_width + 1, dtype=np.float64)
    if sd_bins <= 0:
        return (k == 0).astype(np.float64)
    w = np.exp(-0.5 * (k / sd_bins) ** 2)
    return w / w.sum()


def smooth_trials(counts: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every unit's series along the bin axis (axis 1), zero beyond the edges ('same')."""
    return correlate1d(counts.astype(np.float64, copy=False), kernel[::-1], axis=1, mode="constant")


# --------------------------------------------------------------------------- helpers
def _direction_class(deg: np.ndarray) -> np.ndarray:
    """Round angles to the 8 center-out classes, in degrees 0, 45, …, 315 (NaN stays NaN → -1)."""
    out = np.full(deg.shape, -1, dtype=np.int16)
    ok = np.isfinite(deg)
    out[ok] = (np.round(np.mod(deg[ok], 360.0) / 45.0).astype(np.int64) % 8) * 45
    return out


def integrate_position(velocity: np.ndarray, align_index: int, bin_size: float) -> np.ndarray:
    """Position from velocity (cm), zero just before the alignment bin: ``dt · Σ_{j=a}^{b} v_j``.

    With the window starting at the event (the paper's setting) this is ``dt · cumsum(v)``.
    """
    p = np.cumsum(velocity, axis=1) * bin_size
    if align_index > 0:
        p = p - p[:, align_index - 1 : align_index]
    return p


class _Plan:
    """Grid geometry shared by both ingest layouts."""

    def __init__(self, prep: dict, source):
        self.bin_size = float(prep["bin_size_s"])
        self.start_bins = int(prep["window_start_bins"])
        self.n_win = int(prep["window_bins"])
        sd = float(prep["smoothing"]["sd_s"])
        self.sd_s = sd
        self.margin = int(round(prep["smoothing"]["half_width_s"] / self.bin_size)) if sd > 0 else 0
        self.kernel = gaussian_kernel(sd / self.bin_size, self.margin)
        self.n_total = self.n_win + 2 * self.margin
        # position of the alignment bin inside the window (integration starts there)
        self.align_index = max(0, -self.start_bins)
        if self.align_index >= self.n_win:
            raise InputError(source, "preprocessing.window_start_bins", "the window ends before the alignment event")


def _plain(values: np.ndarray) -> np.ndarray:
    """Unit ids as read back: integers stay integers, strings become object str."""
    return values if values.dtype.kind in "iu" else as_object_strings(values)


def _select(keep: np.ndarray, mask: np.ndarray, reason: str, dropped: dict) -> np.ndarray:
    n = int((keep & ~mask).sum())
    if n:
        dropped[reason] = dropped.get(reason, 0) + n
    return keep & mask


# --------------------------------------------------------------------------- per layout
def _from_spikes(ds: xr.Dataset, plan: _Plan, prep: dict, source, dropped: dict):
    event = prep["align_event"]
    behaviour = _has_behaviour(ds)
    event_time = ds[f"{event}_time"].values
    keep = np.ones(ds.sizes["trial"], dtype=bool)
    if prep["rewarded_only"]:
        keep = _select(keep, ds["rewarded"].values, "not rewarded", dropped)
    keep = _select(keep, np.isfinite(event_time), f"no {event}", dropped)
    # bins of the grid: [event + (start - margin)·dt, ...), n_total bins; window = inner n_win bins
    grid_start = event_time + (plan.start_bins - plan.margin) * plan.bin_size
    win_start = event_time + plan.start_bins * plan.bin_size
    win_stop = win_start + plan.n_win * plan.bin_size
    if prep["window_within_trial"]:
        inside = (win_start >= ds["start_time"].values - 1e-9) & (win_stop <= ds["stop_time"].values + 1e-9)
        keep = _select(keep, inside, "window outside trial", dropped)
    if not behaviour:  # spiking-only recording (e.g. an NLB test split): NaN labels, flagged in attrs
        sel = np.flatnonzero(keep)
        velocity = np.full((len(sel), plan.n_win, 2), np.nan)
        return sel, grid_start[sel], velocity, np.zeros((len(sel), plan.n_win), dtype=int), None
    rec_t = ds["time"].values
    recorded = (win_start >= rec_t[0]) & (win_stop <= rec_t[-1])
    keep = _select(keep, recorded, "window outside behaviour recording", dropped)
    sel = np.flatnonzero(keep)
    edges = win_start[sel, None] + np.arange(plan.n_win + 1) * plan.bin_size
    velocity, n_nan = bin_means(rec_t, ds["velocity"].values, edges)
    position = None
    if "position" in ds:
        position, _ = bin_means(rec_t, ds["position"].values, edges)
    return sel, grid_start[sel], velocity, n_nan, position


def _has_behaviour(ds: xr.Dataset) -> bool:
    """True when the ingest store holds hand/cursor velocity (readers set ``has_behavior``)."""
    return bool(ds.attrs.get("has_behavior", True)) and ("velocity" in ds or ds.attrs["layout"] == "aligned")


def _spike_rates(ds: xr.Dataset, plan: _Plan, grid_start: np.ndarray) -> da.Array:
    """Lazy ``(trial, bin, unit)`` smoothed counts, one dask task per :data:`TRIAL_CHUNK` trials."""
    times = ds["spike_time"].values
    units = ds["spike_unit"].values.astype(np.int64)
    n_units = ds.sizes["unit"]

    def chunk(starts):
        counts = bin_trial_windows(times, units, n_units, starts, plan.bin_size, plan.n_total)
        rates = smooth_trials(counts, plan.kernel) if plan.sd_s > 0 else counts
        return rates[:, plan.margin : plan.margin + plan.n_win].astype(np.float32)

    blocks = [
        da.from_delayed(
            dask.delayed(chunk)(grid_start[i : i + TRIAL_CHUNK]),
            shape=(len(grid_start[i : i + TRIAL_CHUNK]), plan.n_win, n_units),
            dtype=np.float32,
        )
        for i in range(0, len(grid_start), TRIAL_CHUNK)
    ]
    if not blocks:
        return da.zeros((0, plan.n_win, n_units), dtype=np.float32)
    return da.concatenate(blocks, axis=0)


def _from_aligned(ds: xr.Dataset, plan: _Plan, prep: dict, source, dropped: dict):
    event = prep["align_event"]
    native = float(ds.attrs["bin_size_s"])
    factor = plan.bin_size / native
    if abs(factor - round(factor)) > 1e-6 or round(factor) < 1:
        raise InputError(
            source,
            "preprocessing.bin_size_s",
            f"{plan.bin_size} s is not a whole multiple of the source's {native} s bins",
        )
    f = int(round(factor))
    smoothed = bool(ds.attrs.get("smoothed", False))
    if smoothed and f != 1:
        raise InputError(
            source,
            "preprocessing.bin_size_s",
            f"the source is already smoothed at {native} s bins and cannot be re-binned",
        )
    margin = 0 if smoothed else plan.margin
    n_total = plan.n_win + 2 * margin
    ev = ds[f"{event}_bin"].values
    n_bins = ds["n_bins"].values
    keep = np.ones(ds.sizes["trial"], dtype=bool)
    if prep["rewarded_only"]:
        keep = _select(keep, ds["rewarded"].values, "not rewarded", dropped)
    keep = _select(keep, ev >= 0, f"no {event}", dropped)
    first = ev + plan.start_bins * f  # first native bin of the window
    last = first + plan.n_win * f  # one past the last native bin
    keep = _select(keep, (first >= 0) & (last <= n_bins), "window outside trial", dropped)
    sel = np.flatnonzero(keep)
    # native index of every (trial, coarse bin, sub-bin), margins included
    native_idx = first[sel, None, None] + (np.arange(n_total)[None, :, None] - margin) * f + np.arange(f)[None, None, :]
    valid = (native_idx >= 0) & (native_idx < n_bins[sel, None, None])
    clipped = np.clip(native_idx, 0, ds.sizes["bin"] - 1)
    rows = sel[:, None, None]

    counts = ds["counts"].values[rows, clipped]  # (trial, coarse, f, unit)
    counts = np.where(valid[..., None], counts, 0).sum(axis=2)
    if smoothed or plan.sd_s == 0:
        rates = counts.astype(np.float32)
    else:
        rates = smooth_trials(counts, plan.kernel)[:, margin : margin + plan.n_win].astype(np.float32)
    # behaviour: means of the f native samples of each window bin (the window lies inside the trial)
    inner = (slice(None), slice(margin, margin + plan.n_win))
    fine_velocity = ds["velocity"].values[rows, clipped][inner]  # (trial, bin, f, axis)
    velocity = fine_velocity.mean(axis=2)
    n_nan = np.isnan(fine_velocity).any(axis=-1).sum(axis=2)
    position = ds["position"].values[rows, clipped][inner].mean(axis=2) if "position" in ds else None
    return sel, rates, velocity, n_nan, position


def _check_every_area_fires(rates, areas: np.ndarray, source) -> None:
    """Every area must have spikes inside the analysed windows (all-zero rates embed and decode into
    numbers that look like results: NER's swapped R² near -2e32)."""
    totals = np.asarray(rates.sum(axis=(0, 1)))
    for area in dict.fromkeys(areas):
        if not (totals[areas == area] > 0).any():
            raise InputError(
                source,
                f"area {area}",
                f"none of its {int((areas == area).sum())} units fires inside the analysed windows "
                "(spike times outside the trials, or an empty area)",
            )


# --------------------------------------------------------------------------- the stage
def prepare_dataset(
    ds: xr.Dataset,
    *,
    session: Mapping,
    preprocessing: Mapping,
    source: str | PathLike | None = None,
    code_fingerprint: str = "",
) -> xr.Dataset:
    """The prepared dataset of one session from its ingest dataset, in memory (the rates of a spike
    recording are computed once, to check every area, and kept as a persisted dask array).

    Args:
        ds: an ingest dataset (:func:`pipeline.io.read_source`, or an ingest store opened).
        session: the session's sheet row (``session_id``, ``subject``, ``date``, ``year``,
            ``hemisphere``, ``task``, ...).
        preprocessing: the ``preprocessing`` config block with the row's overrides applied
            (see :func:`pipeline.stages.config.session_preprocessing`).
        source: what to name in error messages (default: the recording the dataset was read from).
        code_fingerprint: fingerprint of the modules of this stage (recorded in the attrs).

    Raises:
        InputError: naming the source file and the field at fault.
    """
    source = ds.attrs.get("source_file", str(source) if source is not None else "ingest dataset")
    validate_ingest(ds, source)
    plan = _Plan(preprocessing, source)
    dropped: dict[str, int] = {}
    event = preprocessing["align_event"]
    layout = ds.attrs["layout"]
    if layout == "spikes":
        if f"{event}_time" not in ds or not np.isfinite(ds[f"{event}_time"].values).any():
            raise InputError(source, f"intervals/trials.{event}_time", f"no trial has a {event} time")
        sel, grid_start, velocity, n_nan, position = _from_spikes(ds, plan, preprocessing, source, dropped)
        rates = None
    else:
        if f"{event}_bin" not in ds or not (ds[f"{event}_bin"].values >= 0).any():
            raise InputError(source, f"{event}_bin", f"no trial has a {event} index")
        sel, rates, velocity, n_nan, position = _from_aligned(ds, plan, preprocessing, source, dropped)

    behaviour = _has_behaviour(ds)
    bad = (n_nan > 0).any(axis=1) | ~np.isfinite(velocity).all(axis=(1, 2))
    if behaviour and bad.any():
        first_bad = ds["trial"].values[sel[np.flatnonzero(bad)[0]]]
        if preprocessing["nan_policy"] == "error":
            raise InputError(
                source,
                "velocity",
                f"NaN hand velocity inside the window of {int(bad.sum())} trial(s) "
                f"(first: trial {first_bad}); set preprocessing.nan_policy: drop_trial to drop them",
            )
        dropped["NaN velocity"] = int(bad.sum())
        sel, velocity = sel[~bad], velocity[~bad]
        position = position[~bad] if position is not None else None
        if rates is not None:
            rates = rates[~bad]
        else:
            grid_start = grid_start[~bad]
    min_trials = int(preprocessing.get("min_trials", 10))
    if len(sel) < min_trials:
        raise InputError(
            source,
            "trials",
            f"{len(sel)} trial(s) left after selection (dropped: {dropped}); at least {min_trials} are needed "
            "for a training and a held-out split (preprocessing.min_trials)",
        )
    if behaviour and not (np.ptp(velocity[..., 0]) > 0 or np.ptp(velocity[..., 1]) > 0):
        raise InputError(
            source,
            "velocity",
            f"the hand velocity is constant ({velocity.flat[0]:g}) in every analysed bin: there is no movement "
            "to embed or decode (R² of a constant is undefined)",
        )
    if layout == "spikes":
        rates = _spike_rates(ds, plan, grid_start).persist()  # computed once: checked here, written later
    _check_every_area_fires(rates, as_object_strings(ds["area"].values), source)

    n = len(sel)
    n_train = int(preprocessing["train_fraction"] * n)
    source_smoothed = bool(ds.attrs.get("smoothed", False))
    direction_raw = ds["direction"].values[sel]
    task = session["task"]
    if task == "center_out" and not np.isfinite(direction_raw).all():
        raise InputError(source, "direction", "target direction missing for some trials")
    if task == "center_out" and len(np.unique(_direction_class(direction_raw[:n_train]))) < 2:
        raise InputError(
            source,
            "direction",
            f"the {n_train} training trials reach towards one direction only: no direction decoder can be fitted",
        )
    out_ds = prepared_dataset(
        rates=rates,
        velocity=velocity.astype(np.float32),
        position=integrate_position(velocity, plan.align_index, plan.bin_size).astype(np.float32),
        recorded_position=position.astype(np.float32) if position is not None else None,
        trial=ds["trial"].values[sel],
        unit=_plain(ds["unit"].values),
        area=as_object_strings(ds["area"].values),
        bin_time=(plan.start_bins + np.arange(plan.n_win)) * plan.bin_size,
        direction=_direction_class(direction_raw),
        target_angle=direction_raw.astype(np.float32),
        split=np.where(np.arange(n) < n_train, "train", "test").astype(object),
        maze={name: ds[name].values[sel] for name in MAZE_COORDS if name in ds.coords},
        attrs=dict(
            session=session["session_id"],
            subject=session["subject"],
            date=session["date"],
            year=int(session["year"]),
            hemisphere=session["hemisphere"],
            task=task,
            bin_size_s=plan.bin_size,
            smoothing_sd_s=float(ds.attrs["smoothing_sd_s"]) if source_smoothed else plan.sd_s,
            smoothing_half_width_bins=plan.margin,
            smoothed_by="source" if source_smoothed else "prepare",
            align_event=event,
            window_start_bins=plan.start_bins,
            window_bins=plan.n_win,
            has_behavior=behaviour,
            train_fraction=float(preprocessing["train_fraction"]),
            rewarded_only=bool(preprocessing["rewarded_only"]),
            n_trials_source=int(ds.sizes["trial"]),
            trials_dropped=dropped,
            source_file=source,
            source_sha256=ds.attrs.get("source_sha256", ""),
            source_format=ds.attrs.get("format", ""),
            package_version=__version__,
            code_fingerprint=code_fingerprint,
            versions=versions(),
        ),
        source=source,
    )
    log.info(
        "prepared %s: %d trials (%d train), %d units, dropped %s",
        session["session_id"],
        n,
        n_train,
        out_ds.sizes["unit"],
        dropped,
    )
    return out_ds

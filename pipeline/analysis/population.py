"""PCA and dPCA of one recorded population, the paper's Fig. 11 (NER_METHOD.md §8.3, §8.4).

One cell is one ``(session, area)``: the training trials' rates ``(trial, bin, neuron)`` and their
direction classes 0..7 (45° steps). :func:`population_views` computes, in memory:

``pca_single_trial``
    ``PCA(3)`` (scikit-learn, full SVD, as the ``pca`` embedding method) fitted on the single-trial
    training bins stacked, and those trials projected, ``(trial, bin, 3)``; explained variance ratio of
    the single-trial bins.
``pca_trial_average``
    ``PCA(3)`` fitted on the 8 × bins trial-averaged rates (every training trial of a direction) and
    the averages projected, ``(8, bin, 3)``; explained variance ratio of the averages.
``dpca_t``, ``dpca_s``, ``dpca_st``
    dPCA (:class:`pipeline.embed.methods.dpca.DPCA`, the embedding method as the paper ran it:
    ``labels='st'``, ``regularizer='auto'`` with time protected, 3 components per marginalisation,
    each direction cut to the first ``n`` trials, ``n`` the smallest per-direction count). Each
    marginalisation's 3 components of the trial averages dPCA was fitted on (the first ``n`` trials
    of each direction, centred per neuron), ``(marginalisation, 8, bin, 3)``; explained variance
    ratio per component as the ``dPCA`` package computes it (variance of the component over the
    total variance of those averages). ``dpca_s`` is what the ``dpca`` embedding method gives the
    same trials, averaged.

Rates are taken at float32 precision (the prepared store's, and what the embedding methods fit
on), so that the dPCA averages are exactly the ones the method fitted; everything else is float64.

Also Kobak et al.'s split of the trial-averaged variance into the marginalisations (time,
direction, interaction: the parts of the centred averages that depend on time only, on direction
only, and the rest), independent of any component.

:func:`load_population` reads a cell's training trials from a prepared store (the training stage's
own readers), and :func:`views_table` makes the tidy table of explained variances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.decomposition import PCA as SklearnPCA

from pipeline.analysis.alignment import N_DIRECTIONS
from pipeline.analysis.decoding import direction_classes
from pipeline.data.store import as_object_strings, open_store, validate_prepared
from pipeline.embed.fit import area_inputs
from pipeline.embed.methods.dpca import DPCA
from pipeline.errors import InputError

__all__ = [
    "MARGINALIZATIONS",
    "TABLE_COLUMNS",
    "VIEWS",
    "PopulationData",
    "PopulationViews",
    "load_population",
    "population_views",
    "views_table",
]

#: dPCA marginalisations, in the order of the ``dpca*`` arrays: time, stimulus (direction), interaction
MARGINALIZATIONS = ("t", "s", "st")
#: the views of the tidy table (:func:`views_table`)
VIEWS = ("pca_single_trial", "pca_trial_average", *(f"dpca_{m}" for m in MARGINALIZATIONS))
#: columns of :func:`views_table`
TABLE_COLUMNS = (
    "session",
    "area",
    "subject",
    "year",
    "hemisphere",
    "view",
    "component",
    "explained_variance_ratio",
    "marginal_variance_ratio",
    "n_trials",
    "n_average_trials",
    "n_bins",
    "n_units",
    "regularizer",
    "seed",
)
_META = ("session", "area", "subject", "year", "hemisphere")


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)  # a copy the caller cannot change
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class PopulationData:
    """The training trials of one ``(session, area)``, as :func:`population_views` takes them.

    Attributes:
        rates: ``(trial, bin, neuron)`` float64 rates of the training trials.
        classes: ``(trial,)`` direction classes 0..7 (0°, 45°, …, 315°).
        bin_time: ``(bin,)`` seconds from the alignment event.
        meta: session, area, subject, year, hemisphere, source (the store).
    """

    rates: np.ndarray
    classes: np.ndarray
    bin_time: np.ndarray
    meta: dict = field(default_factory=dict)

    def views(self, *, n_components: int = 3, seed: int = 0, regularizer: float | str | None = "auto"):
        """:func:`population_views` of these trials (with this cell's bin times and metadata)."""
        return population_views(
            self.rates,
            self.classes,
            bin_time=self.bin_time,
            meta=self.meta,
            n_components=n_components,
            seed=seed,
            regularizer=regularizer,
            source=self.meta.get("source"),
        )


@dataclass(frozen=True)
class PopulationViews:
    """PCA and dPCA views of one cell's training trials (module docstring); arrays are read-only.

    Attributes:
        meta: session, area, subject, year, hemisphere (what the caller gave).
        bin_time: ``(bin,)`` seconds from the alignment event (bin indices when not given).
        classes: ``(trial,)`` direction class of each single trial.
        trial_counts: ``(8,)`` training trials per direction (averaged in ``pca_trial_average``).
        pca_single_trial: ``(trial, bin, k)`` single trials on the single-trial PCA axes.
        pca_single_trial_ratio: ``(k,)`` explained variance ratio of the single-trial bins.
        pca_single_trial_axes: ``(k, neuron)`` principal axes (orthonormal rows).
        pca_trial_average: ``(8, bin, k)`` direction averages on the trial-average PCA axes.
        pca_trial_average_ratio: ``(k,)`` explained variance ratio of the averages.
        pca_trial_average_axes: ``(k, neuron)`` principal axes (orthonormal rows).
        dpca: ``(3, 8, bin, k)`` components of the dPCA averages per marginalisation
            (:data:`MARGINALIZATIONS` order: t, s, st).
        dpca_ratio: ``(3, k)`` explained variance ratio per marginalisation and component.
        dpca_decoders: ``(3, neuron, k)`` decoder matrix per marginalisation.
        dpca_mean: ``(neuron,)`` per-neuron mean of the dPCA averages (subtracted before projecting).
        dpca_marginal_ratio: ``(3,)`` share of the dPCA averages' variance in each marginalisation
            (Kobak et al.'s split; sums to 1).
        dpca_trials_per_direction: trials per direction dPCA averaged (the smallest count).
        dpca_regularizer: dPCA's lambda (chosen by cross-validation with ``"auto"``).
        seed: the seed dPCA ran with.
    """

    meta: dict
    bin_time: np.ndarray
    classes: np.ndarray
    trial_counts: np.ndarray
    pca_single_trial: np.ndarray
    pca_single_trial_ratio: np.ndarray
    pca_single_trial_axes: np.ndarray
    pca_trial_average: np.ndarray
    pca_trial_average_ratio: np.ndarray
    pca_trial_average_axes: np.ndarray
    dpca: np.ndarray
    dpca_ratio: np.ndarray
    dpca_decoders: np.ndarray
    dpca_mean: np.ndarray
    dpca_marginal_ratio: np.ndarray
    dpca_trials_per_direction: int
    dpca_regularizer: float
    seed: int

    @property
    def name(self) -> str:
        """``"{session}/{area}"`` (``"population"`` without metadata)."""
        if "session" in self.meta or "area" in self.meta:
            return f"{self.meta.get('session', '?')}/{self.meta.get('area', '?')}"
        return "population"

    @property
    def n_components(self) -> int:
        return int(self.pca_single_trial.shape[-1])

    def marginalization(self, key: str) -> np.ndarray:
        """``(8, bin, k)`` dPCA components of marginalisation ``key`` (``"t"``, ``"s"`` or ``"st"``)."""
        if key not in MARGINALIZATIONS:
            raise InputError(self.name, "marginalization", f"{key!r} is not one of {list(MARGINALIZATIONS)}")
        return self.dpca[MARGINALIZATIONS.index(key)]


def _check_inputs(
    rates, classes, bin_time, n_components: int, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rates ``(trial, bin, neuron)`` float64, classes ``(trial,)`` int, bin times ``(bin,)``, or one
    :class:`InputError` naming the field."""
    if not isinstance(rates, np.ndarray) and isinstance(rates, Sequence):  # trials given one by one
        shapes = [np.shape(trial) for trial in rates]
        if len({s[:1] for s in shapes}) > 1:
            bins = sorted({s[0] if s else 0 for s in shapes})
            raise InputError(source, "rates", f"trials have unequal bins ({bins}); cut them to one window first")
    try:
        rates = np.asarray(rates, dtype=np.float32).astype(np.float64)  # the precision the methods fit on
    except (TypeError, ValueError) as exc:
        raise InputError(source, "rates", f"not a numeric (trial, bin, neuron) array ({exc})") from None
    if rates.ndim != 3:
        raise InputError(source, "rates", f"expected (trial, bin, neuron), got shape {rates.shape}")
    n_trials, n_bins, n_units = rates.shape
    bad = int((~np.isfinite(rates)).sum())
    if bad:
        raise InputError(source, "rates", f"{bad} NaN/inf values; PCA and dPCA need finite rates in every bin")
    if not 1 <= n_components <= n_units or n_bins < 2:
        raise InputError(
            source,
            "rates",
            f"{n_units} neuron(s) and {n_bins} bin(s): need at least n_components={n_components} neurons and 2 bins",
        )
    raw = np.asarray(classes)
    if raw.shape != (n_trials,):
        raise InputError(
            source, "classes", f"expected one direction class per trial ({n_trials}), got shape {raw.shape}"
        )
    if raw.dtype.kind not in "iu" and not (
        raw.dtype.kind == "f" and np.isfinite(raw).all() and (raw == np.round(raw)).all()
    ):
        raise InputError(
            source, "classes", f"direction classes must be integers 0..{N_DIRECTIONS - 1}, got {raw.dtype}"
        )
    classes = raw.astype(np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= N_DIRECTIONS):
        raise InputError(
            source, "classes", f"direction classes must be 0..{N_DIRECTIONS - 1}, found {sorted(set(classes.tolist()))}"
        )
    counts = np.bincount(classes, minlength=N_DIRECTIONS)
    if counts.min() < 2:
        listing = ", ".join(f"{45 * d}°: {c}" for d, c in enumerate(counts.tolist()))
        raise InputError(source, "classes", f"dPCA needs at least 2 trials of each of the 8 directions, got {listing}")
    if bin_time is None:
        bin_time = np.arange(n_bins, dtype=np.float64)
    bin_time = np.asarray(bin_time, dtype=np.float64)
    if bin_time.shape != (n_bins,) or not np.isfinite(bin_time).all():
        raise InputError(source, "bin_time", f"expected {n_bins} finite bin times, got shape {bin_time.shape}")
    return rates, classes, bin_time


def population_views(
    rates,
    classes,
    *,
    bin_time=None,
    meta: Mapping | None = None,
    n_components: int = 3,
    seed: int = 0,
    regularizer: float | str | None = "auto",
    source: str | PathLike | None = None,
) -> PopulationViews:
    """PCA (single trials, trial averages) and dPCA (every marginalisation) of one cell's training trials.

    Args:
        rates: ``(trial, bin, neuron)`` rates of the training trials (all trials the same bins), used at
            float32 precision.
        classes: ``(trial,)`` direction class of each trial, 0..7; every class needs at least 2 trials.
        bin_time: ``(bin,)`` seconds from the alignment event (default: bin indices).
        meta: session, area, subject, year, hemisphere: carried into the views and the table.
        n_components: components per view (the paper: 3).
        seed: seed of numpy's global generator while dPCA fits (cross-validation splits, randomized
            SVD); restored afterwards. PCA is deterministic.
        regularizer: dPCA's lambda: ``"auto"`` (the paper: 3-fold cross-validation, time protected), a
            float, or None.
        source: what to name in error messages (default: ``"{session}/{area}"`` of ``meta``).

    Returns:
        The views (:class:`PopulationViews`).

    Raises:
        InputError: rates not ``(trial, bin, neuron)`` (or trials of unequal bins), NaN/inf rates, fewer
            neurons than components, constant trial averages, classes outside 0..7 or a direction with
            fewer than 2 trials, bin times of the wrong length; the message names the field.
    """
    meta = {k: v for k, v in dict(meta or {}).items() if k != "source"}
    if source is None:
        source = f"{meta.get('session', '?')}/{meta.get('area', '?')}" if meta else "population"
    n_components = int(n_components)
    rates, classes, bin_time = _check_inputs(rates, classes, bin_time, n_components, str(source))
    n_trials, n_bins, n_units = rates.shape
    counts = np.bincount(classes, minlength=N_DIRECTIONS)

    # the 8 x bins trial averages (every training trial of a direction)
    average = np.stack([rates[classes == d].mean(axis=0) for d in range(N_DIRECTIONS)])  # (8, bin, N)
    if not np.ptp(average.reshape(-1, n_units), axis=0).any():
        raise InputError(source, "rates", "the trial averages are constant: no variance for PCA or dPCA")

    # PCA of the single-trial bins (stacked by direction: the order does not change the fit)
    single = SklearnPCA(n_components=n_components, svd_solver="full").fit(rates.reshape(-1, n_units))
    pca_single = (rates - single.mean_) @ single.components_.T

    # PCA of the trial averages
    averaged = SklearnPCA(n_components=n_components, svd_solver="full").fit(average.reshape(-1, n_units))
    pca_average = (average - averaged.mean_) @ averaged.components_.T

    # dPCA, as the embedding method runs it (labels: the direction class in column 0)
    labels = np.repeat(classes.astype(np.float64), n_bins)[:, None]
    model = DPCA(n_components=n_components, regularizer=regularizer, direction_column=0, seed=int(seed)).fit(
        rates.reshape(-1, n_units), labels, lengths=[n_bins] * n_trials
    )
    n = int(model.trials_per_direction_)
    dpca_average = np.stack([rates[classes == d][:n].mean(axis=0) for d in range(N_DIRECTIONS)])  # what dPCA fitted
    centred = dpca_average - model.mean_
    decoders = np.stack([model.decoders_[key] for key in MARGINALIZATIONS])  # (3, N, k)
    components = np.einsum("dbn,mnk->mdbk", centred, decoders)
    ratio = np.array([model.explained_variance_ratio_[key] for key in MARGINALIZATIONS], dtype=np.float64)

    # Kobak et al.'s variance split of the centred averages: time-only, direction-only, the rest
    time_part = centred.mean(axis=0, keepdims=True)
    direction_part = centred.mean(axis=1, keepdims=True)
    parts = (time_part, direction_part, centred - time_part - direction_part)
    total = float(np.sum(centred**2))
    marginal = np.array([np.sum(np.broadcast_to(p, centred.shape) ** 2) / total for p in parts])

    return PopulationViews(
        meta=meta,
        bin_time=_frozen(bin_time),
        classes=_frozen(classes),
        trial_counts=_frozen(counts),
        pca_single_trial=_frozen(pca_single),
        pca_single_trial_ratio=_frozen(single.explained_variance_ratio_),
        pca_single_trial_axes=_frozen(single.components_),
        pca_trial_average=_frozen(pca_average),
        pca_trial_average_ratio=_frozen(averaged.explained_variance_ratio_),
        pca_trial_average_axes=_frozen(averaged.components_),
        dpca=_frozen(components),
        dpca_ratio=_frozen(ratio),
        dpca_decoders=_frozen(decoders),
        dpca_mean=_frozen(model.mean_),
        dpca_marginal_ratio=_frozen(marginal),
        dpca_trials_per_direction=n,
        dpca_regularizer=float(model.regularizer_),
        seed=int(seed),
    )


def views_table(views: PopulationViews) -> pd.DataFrame:
    """Tidy explained variances of one cell's views, one row per (view, component).

    Columns (:data:`TABLE_COLUMNS`): ``session, area, subject, year, hemisphere`` (from the views'
    metadata; missing ones empty), ``view`` (:data:`VIEWS`), ``component`` (``"1"``, ``"2"``, … and
    ``"total"``, the view's components together), ``explained_variance_ratio`` (PCA: of the single-trial
    bins or of the trial averages; dPCA: of the dPCA averages, as the package computes it),
    ``marginal_variance_ratio`` (dPCA: the marginalisation's share of the averages' variance, the same
    in every row of the view; NaN for PCA), ``n_trials`` (training trials), ``n_average_trials``
    (trials per direction in the averages: the smallest count for dPCA; NaN for the single-trial
    and the trial-average PCA, which use every trial), ``n_bins``, ``n_units``, ``regularizer``
    (dPCA's lambda; NaN for PCA), ``seed``.
    """
    n_trials, n_bins, _ = views.pca_single_trial.shape
    base = {key: views.meta.get(key, "") for key in _META}
    base.update(
        n_trials=int(n_trials),
        n_bins=int(n_bins),
        n_units=int(views.pca_single_trial_axes.shape[1]),
        seed=views.seed,
    )
    per_view = {
        "pca_single_trial": (views.pca_single_trial_ratio, np.nan, np.nan, np.nan),
        "pca_trial_average": (views.pca_trial_average_ratio, np.nan, np.nan, np.nan),
    }
    for i, key in enumerate(MARGINALIZATIONS):
        per_view[f"dpca_{key}"] = (
            views.dpca_ratio[i],
            float(views.dpca_marginal_ratio[i]),
            float(views.dpca_trials_per_direction),
            views.dpca_regularizer,
        )
    rows = []
    for view, (ratio, marginal, average_trials, lam) in per_view.items():
        extra = {"marginal_variance_ratio": marginal, "n_average_trials": average_trials, "regularizer": lam}
        for k, value in enumerate(ratio, start=1):
            rows.append({**base, "view": view, "component": str(k), "explained_variance_ratio": float(value), **extra})
        rows.append(
            {**base, "view": view, "component": "total", "explained_variance_ratio": float(np.sum(ratio)), **extra}
        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def load_population(
    prepared: str | PathLike | xr.Dataset,
    *,
    area: str,
    session: str | None = None,
) -> PopulationData:
    """The training trials of one area of a prepared store (the training stage's readers and split).

    Args:
        prepared: a prepared store (path, or the dataset opened).
        area: the area whose units form the population (e.g. ``"M1"``).
        session: when given, the store's session must be this one.

    Returns:
        :class:`PopulationData` of the store's training trials.

    Raises:
        InputError: not a prepared store, another session, a maze session, no units of ``area``,
            NaN rates, a training trial without a direction, or no training trials.
    """
    source = str(prepared) if not isinstance(prepared, xr.Dataset) else prepared.attrs.get("session", "prepared store")
    ds = prepared if isinstance(prepared, xr.Dataset) else open_store(prepared, layout="prepared")
    validate_prepared(ds, source)
    if session is not None and ds.attrs["session"] != session:
        raise InputError(source, "attrs.session", f"the store holds session {ds.attrs['session']!r}, not {session!r}")
    if ds.attrs.get("task") == "maze":
        raise InputError(source, "attrs.task", "a maze session has no 8 reach directions; use a center-out session")
    train = as_object_strings(ds["split"].values) == "train"
    if not train.any():
        raise InputError(source, "split", "no training trials")
    rates = area_inputs(ds, area, source)[train].astype(np.float64)
    classes = direction_classes(ds["direction"].values)[train]
    if (classes < 0).any():
        raise InputError(
            source, "direction", "every training trial needs a target direction (center-out sessions only)"
        )
    meta = {key: ds.attrs[key] for key in _META if key in ds.attrs and key != "area"}
    meta.update(area=area, year=int(ds.attrs["year"]), source=source)
    return PopulationData(
        rates=rates,
        classes=classes,
        bin_time=np.asarray(ds["bin_time"].values, dtype=np.float64),
        meta=meta,
    )

"""Decoders on embeddings: velocity, position and direction, as the paper scored them (NER_METHOD.md §5).

A :class:`Cell` is one embedded ``(session, area)`` with its labels: ``latent(trial, bin, dim)``,
hand ``velocity(trial, bin, 2)``, direction class per trial and the train/test split. A
:class:`DecoderSpec` names a decoder family:

``linear``
    ``LinearRegression`` (with intercept) for velocity; multinomial ``LogisticRegression`` (lbfgs)
    on the 8 direction classes, predicted per bin.
``knn``
    ``GridSearchCV`` over ``n_neighbors`` (the paper's grid 2, 4, …, 1024; 5-fold, sklearn defaults)
    of ``KNeighborsRegressor`` / ``KNeighborsClassifier``. Grid values larger than a CV training
    fold are dropped (sklearn cannot fit them); the paper's sessions are large enough to keep all.
    The search is :class:`pipeline.analysis.knn.KNeighborsRegressorCV` / ``KNeighborsClassifierCV``: the
    same numbers as ``GridSearchCV`` bit for bit (same splits, scores, choice and refit) from one
    neighbour query per fold instead of one per grid value; :func:`score` predicts velocity and
    direction of the same points from one shared query (:func:`pipeline.analysis.knn.predict_pair`).

Scores (each a row of the tidy ``scores`` table, labelled):

* velocity ``r2`` — ``r2_score(true, pred)``, uniform average over x and y;
* velocity ``r2_swapped`` — held-out only, ``r2_score(pred, true)``: what the paper's test columns and
  cross-session matrices hold (normalised by the variance of the prediction);
* position ``r2`` — true and predicted velocity cumulatively summed within each trial from bin 0;
* direction ``peak_accuracy`` (%) and ``peak_time_s`` — accuracy over time is, for each bin, the share
  of trials whose prediction at that bin is their target class; the peak is its maximum (first bin
  reaching it).

``in_sample`` = fitted and scored on the training trials of one cell (the paper's abstract numbers);
``held_out`` = fitted on the training trials of the decoder cell, scored on the test trials of the
test cell (the same cell on the diagonal).

Rotations: a decoder fitted on ``A·R`` and applied to ``B`` equals the decoder fitted on ``A`` and
applied to ``B·Rᵀ`` for orthogonal ``R`` (OLS and the L2-penalised logistic loss are equivariant and
lbfgs started at zero follows the rotated path, up to its stopping test; kNN distances are unchanged).
So each decoder is fitted once per cell and a cross-cell score rotates the *test* cell by ``Rᵀ`` (:func:`score`), which
turns the paper's ``n²`` fits per matrix into ``n``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from os import PathLike

import numpy as np
import xarray as xr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score

from pipeline.analysis.alignment import N_DIRECTIONS
from pipeline.analysis.knn import KNeighborsClassifierCV, KNeighborsRegressorCV, predict_pair
from pipeline.data.store import as_object_strings, open_store, validate_embedding
from pipeline.errors import InputError

__all__ = [
    "DECODERS",
    "Cell",
    "DecoderSpec",
    "FittedDecoder",
    "Scores",
    "accuracy_over_time",
    "direction_classes",
    "fit",
    "fit_velocity",
    "integrate",
    "score",
    "within_session",
]

DECODERS = ("linear", "knn")
log = logging.getLogger(__name__)

#: the paper's kNN grid (NER_METHOD.md §5.2)
KNN_NEIGHBORS = tuple(2**k for k in range(1, 11))


def direction_classes(direction_deg: np.ndarray) -> np.ndarray:
    """Integer classes ``0..7`` (0°, 45°, …, 315°) of target directions in degrees; -1 where unknown."""
    direction_deg = np.asarray(direction_deg, dtype=np.float64)
    classes = np.full(direction_deg.shape, -1, dtype=np.int64)
    known = np.isfinite(direction_deg)
    classes[known] = np.round(np.mod(direction_deg[known], 360.0) / (360.0 / N_DIRECTIONS)).astype(int) % N_DIRECTIONS
    return classes


def integrate(velocity: np.ndarray) -> np.ndarray:
    """Position as the paper: cumulative sum of ``(trial, bin, axis)`` velocity over bins, per trial."""
    return np.cumsum(velocity, axis=1)


def accuracy_over_time(predicted: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(bin,)`` % of trials whose ``(trial, bin)`` prediction equals the trial's class."""
    return 100.0 * (predicted == classes[:, None]).mean(axis=0)


@dataclass(frozen=True)
class Cell:
    """One embedded ``(session, area)`` and its labels, ready to decode.

    Attributes:
        name: ``"{session}/{area}"``.
        latent: ``(trial, bin, dim)`` float64.
        velocity: ``(trial, bin, 2)`` float64 hand velocity (any scale: every score is scale-free).
        classes: ``(trial,)`` direction classes 0..7 (-1 = unknown).
        train: ``(trial,)`` bool, True for training trials.
        bin_time: ``(bin,)`` seconds from the alignment event.
        meta: session, area, subject, year, hemisphere, method, seed.
    """

    name: str
    latent: np.ndarray
    velocity: np.ndarray
    classes: np.ndarray
    train: np.ndarray
    bin_time: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n, bins = self.latent.shape[:2]
        if self.velocity.shape[:2] != (n, bins) or self.classes.shape != (n,) or self.train.shape != (n,):
            raise InputError(
                self.name,
                "latent",
                f"shapes disagree: latent {self.latent.shape}, velocity "
                f"{self.velocity.shape}, classes {self.classes.shape}, "
                f"split {self.train.shape}",
            )

    @classmethod
    def from_stores(cls, embedding: xr.Dataset, prepared: xr.Dataset, source: str | None = None) -> Cell:
        """Pair an embedding store with the prepared store it was trained from (same trials)."""
        if not np.array_equal(embedding["trial"].values, prepared["trial"].values):
            raise InputError(source, "trial", "embedding and prepared store list different trials")
        attrs = embedding.attrs
        meta = {k: attrs[k] for k in ("session", "area", "subject", "hemisphere", "method") if k in attrs}
        meta.update(
            year=int(attrs["year"]),
            seed=int(attrs["seed"]),
            labels_at_transform=bool(attrs.get("uses_labels_at_transform", False)),
        )
        velocity = np.asarray(prepared["velocity"].values, dtype=np.float64)
        if not np.isfinite(velocity).all():
            raise InputError(source, "velocity", "decoding needs finite hand velocity in every bin")
        return cls(
            name=f"{attrs['session']}/{attrs['area']}",
            latent=np.asarray(embedding["latent"].values, dtype=np.float64),
            velocity=velocity,
            classes=direction_classes(embedding["direction"].values),
            train=as_object_strings(embedding["split"].values) == "train",
            bin_time=np.asarray(embedding["bin_time"].values, dtype=np.float64),
            meta=meta,
        )

    @classmethod
    def load(cls, embedding: str | PathLike, prepared: str | PathLike) -> Cell:
        """Read a cell from its embedding store and the prepared store it was trained from."""
        emb = open_store(embedding)
        validate_embedding(emb, embedding)
        return cls.from_stores(emb, open_store(prepared), source=str(embedding))

    @classmethod
    def load_all(cls, pairs: Iterable[tuple[str | PathLike, str | PathLike]]) -> list[Cell]:
        """:meth:`load` every ``(embedding store, prepared store)`` pair, in order."""
        return [cls.load(embedding, prepared) for embedding, prepared in pairs]

    def trials(self, mask: np.ndarray) -> Cell:
        """A copy holding only the trials in ``mask``."""
        return replace(
            self,
            latent=self.latent[mask],
            velocity=self.velocity[mask],
            classes=self.classes[mask],
            train=self.train[mask],
        )

    def training_trials(self) -> Cell:
        """A copy without the test trials: nothing downstream can read their labels."""
        return self.trials(self.train)

    @property
    def test(self) -> np.ndarray:
        return ~self.train


@dataclass(frozen=True)
class DecoderSpec:
    """A decoder family and its settings (config ``decoding``)."""

    kind: str = "linear"
    logistic_max_iter: int = 500
    knn_neighbors: tuple[int, ...] = KNN_NEIGHBORS
    cv: int = 5

    def __post_init__(self):
        if self.kind not in DECODERS:
            raise InputError(None, "decoder", f"unknown decoder {self.kind!r}; choose from {list(DECODERS)}")

    def _grid(self, n_samples: int) -> dict:
        largest = n_samples - math.ceil(n_samples / self.cv)  # smallest CV training fold
        grid = [k for k in self.knn_neighbors if k <= largest]
        if not grid:
            raise InputError(
                None, "knn_neighbors", f"{n_samples} training bins are too few for k >= {min(self.knn_neighbors)}"
            )
        return {"n_neighbors": grid}

    def regressor(self, n_samples: int):
        if self.kind == "linear":
            return LinearRegression()
        return KNeighborsRegressorCV(self._grid(n_samples), cv=self.cv)

    def classifier(self, n_samples: int):
        if self.kind == "linear":
            return LogisticRegression(max_iter=self.logistic_max_iter)
        return KNeighborsClassifierCV(self._grid(n_samples), cv=self.cv)


@dataclass
class FittedDecoder:
    """Velocity and direction decoders fitted on the training bins of one cell."""

    spec: DecoderSpec
    velocity: object
    direction: object | None  # None when the cell has no direction labels (e.g. maze)
    cell: str
    direction_note: str = ""  # why there is no direction decoder although the cell has direction labels


def _training_bins(cell: Cell) -> tuple[Cell, np.ndarray]:
    """The training trials of ``cell`` and their latents as ``(bin, dim)`` rows."""
    train = cell.training_trials()
    if len(train.latent) == 0:
        raise InputError(cell.name, "split", "no training trials to fit a decoder on")
    return train, train.latent.reshape(-1, train.latent.shape[-1])


def _fit_velocity(train: Cell, x: np.ndarray, spec: DecoderSpec):
    return spec.regressor(len(x)).fit(x, train.velocity.reshape(-1, 2))


def fit_velocity(cell: Cell, spec: DecoderSpec):
    """Fit only ``spec``'s velocity regressor on the training bins of ``cell`` (the half of :func:`fit`
    a velocity read-out needs; the direction classifier is the costly half)."""
    return _fit_velocity(*_training_bins(cell), spec)


def fit(cell: Cell, spec: DecoderSpec) -> FittedDecoder:
    """Fit ``spec``'s velocity and direction decoders on the training bins of ``cell``."""
    train, x = _training_bins(cell)
    velocity = _fit_velocity(train, x, spec)
    direction, note = None, ""
    if (train.classes >= 0).all() and len(np.unique(train.classes)) > 1:
        y = np.repeat(train.classes, train.latent.shape[1])
        with warnings.catch_warnings():  # the paper caps lbfgs at max_iter; not converging is part of it
            warnings.simplefilter("ignore", ConvergenceWarning)
            direction = spec.classifier(len(x)).fit(x, y)
    elif (train.classes >= 0).all():
        note = f"the training trials of {cell.name} reach towards one direction only: no direction decoder"
    return FittedDecoder(spec, velocity, direction, cell.name, note)


@dataclass(frozen=True)
class Scores:
    """Scores of one decoder on one set of trials: ``values[(target, metric)]`` and the accuracy curve."""

    values: dict
    accuracy: np.ndarray | None  # (bin,) % or None without direction labels
    n_trials: int
    notes: dict = field(default_factory=dict)  # (target, metric) -> why the value is NaN


def score(
    decoder: FittedDecoder, cell: Cell, trials: np.ndarray, *, rotation: np.ndarray | None = None, held_out: bool = True
) -> Scores:
    """Score a fitted decoder on ``trials`` of ``cell``.

    Args:
        decoder: from :func:`fit` on the decoder cell.
        cell: the cell whose trials are scored.
        trials: boolean mask of the scored trials.
        rotation: orthogonal map the decoder cell was aligned with (``source @ rotation``); applied
            to the scored cell as its inverse, which is equivalent (module docstring).
        held_out: add the paper's swapped-argument velocity R² (held-out scores only).
    """
    scored = cell.trials(trials)
    if len(scored.latent) == 0:
        raise InputError(cell.name, "split", "no trials to score")
    n, bins, dim = scored.latent.shape
    x = scored.latent.reshape(-1, dim)
    if rotation is not None:
        x = x @ rotation.T
    true = scored.velocity.reshape(-1, 2)
    direction = decoder.direction is not None and (scored.classes >= 0).all()
    if direction:  # kNN: one neighbour query for both decoders
        pred, predicted_class = predict_pair(decoder.velocity, decoder.direction, x)
    else:
        pred = decoder.velocity.predict(x)
    pred = np.asarray(pred).reshape(-1, 2)
    values, notes = {}, {}

    def put(key, reference, other, what):
        values[key], why = r2(reference, other, what)
        if why:
            notes[key] = why
            log.warning("%s -> %s: %s %s is NaN: %s", decoder.cell, cell.name, *key, why)

    put(("velocity", "r2"), true, pred, "the hand velocity")
    if held_out:
        put(("velocity", "r2_swapped"), pred, true, "the decoded velocity")
    true_position = integrate(true.reshape(n, bins, 2)).reshape(-1, 2)
    put(("position", "r2"), true_position, integrate(pred.reshape(n, bins, 2)).reshape(-1, 2), "the hand position")
    accuracy = None
    if direction:
        accuracy = accuracy_over_time(np.asarray(predicted_class).reshape(n, bins), scored.classes)
        peak = int(np.argmax(accuracy))
        values[("direction", "peak_accuracy")] = float(accuracy[peak])
        values[("direction", "peak_time_s")] = float(cell.bin_time[peak])
    elif decoder.direction_note and (scored.classes >= 0).all():
        for metric in ("peak_accuracy", "peak_time_s"):
            values["direction", metric], notes["direction", metric] = math.nan, decoder.direction_note
        log.warning("%s -> %s: direction scores are NaN: %s", decoder.cell, cell.name, decoder.direction_note)
    return Scores(values, accuracy, n, notes)


def r2(reference: np.ndarray, other: np.ndarray, what: str = "the target") -> tuple[float, str]:
    """R² of ``other`` against ``reference`` (scikit-learn's ``r2_score``, uniform average over the
    columns), or NaN and the reason when a column of ``reference`` has no variance over the scored bins:
    R² is then undefined, and ``r2_score`` would report 1.0 or 0.0 (a constant hand velocity scored
    R² = 1.0 held out), or a huge negative number when the variance is a rounding error (a constant
    prediction gave a swapped R² of -2e32).

    Args:
        reference: ``(samples, columns)`` the values R² is computed against.
        other: the values compared with them.
        what: the reference's name in the reason.
    """
    spread = np.var(reference, axis=0)
    scale = np.mean(np.square(reference), axis=0)
    flat = (spread == 0) | (spread <= 1e-12 * scale)
    if np.any(flat):
        columns = ", ".join("xy"[i] if reference.shape[1] == 2 else str(i) for i in np.flatnonzero(flat))
        return math.nan, f"{what} ({columns}) has no variance over the scored bins: R² is undefined"
    return float(r2_score(reference, other)), ""


def within_session(cell: Cell, spec: DecoderSpec) -> dict[str, Scores]:
    """In-sample (train → train) and held-out (train → test) scores of one cell."""
    decoder = fit(cell, spec)
    return {"in_sample": score(decoder, cell, cell.train, held_out=False), "held_out": score(decoder, cell, cell.test)}

"""Demixed PCA (Kobak et al. 2016) with the ``dPCA`` package, as the NER paper ran it (NER_METHOD.md 8.3).

The package (``dpca`` 1.0.5, ``from dPCA import dPCA``) works with our numpy/scipy, so it is used
as is. Its fit needs trial structure and direction labels: the training bins are cut back into
trials with ``lengths`` (all trials the same number of bins), grouped by the direction label, each
direction truncated to the smallest per-direction trial count, and stacked into the paper's tensor
``(trials, neurons, directions, bins)``; its trial average is fitted with ``labels='st'``
(s = direction, t = time), ``regularizer='auto'`` (lambda by 3-fold cross-validation with the
time axis protected, a few seconds on a session) and 3 components per marginalisation.

The embedding is the 3 direction ("s") components. The paper showed them for condition averages
only; here single bins are projected with the fitted decoder matrix of the "s" marginalisation
after subtracting the training mean of each neuron (what ``dPCA.transform`` does to condition
averages), so ``transform`` needs neither trials nor labels.

dPCA draws from numpy's global generator (cross-validation splits, randomized SVD); ``fit`` seeds
it from ``seed`` and restores it afterwards, so a seed gives identical components.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline.embed.methods.base import (
    EmbeddingMethod,
    check_inputs,
    load_npz,
    npz_writer,
    read_checkpoint,
    write_checkpoint,
)
from pipeline.errors import InputError

__all__ = ["DPCA"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (dPCA uses it) and restore its state on exit."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        yield
    finally:
        np.random.set_state(state)


class DPCA(EmbeddingMethod):
    """dPCA direction components of single bins.

    Args:
        n_components: components per marginalisation; the embedding has this many (3).
        regularizer: ``"auto"`` (cross-validated lambda, the paper), a fixed float (lambda, relative
            to the data variance as in the package) or None (no regularisation).
        direction_column: label column holding the trial's direction (2).
        seed: seed of numpy's global generator during ``fit`` (restored afterwards).

    Attributes (after ``fit``):
        decoder_: ``(N, n_components)`` decoder matrix of the direction marginalisation.
        decoders_: every marginalisation's ``(N, n_components)`` decoder matrix, ``{"t", "s", "st"}``
            (``decoders_["s"]`` is ``decoder_``); set by ``fit`` only: the checkpoint keeps ``decoder_``
            alone, so a loaded model has no ``decoders_`` (:mod:`pipeline.analysis.population` uses it).
        mean_: ``(N,)`` training mean of each neuron (of the trial-averaged tensor).
        regularizer_: the lambda used (chosen by cross-validation with ``"auto"``).
        directions_: the direction labels, sorted (the tensor's ``s`` axis).
        trials_per_direction_: trials kept per direction (the smallest count).
        explained_variance_ratio_: per marginalisation, the variance of the trial averages
            explained by each component.
        n_features_in_: number of input features (neurons).
    """

    name: ClassVar[str] = "dpca"
    uses_labels_at_transform: ClassVar[bool] = False
    trainable_on_gpu: ClassVar[bool] = False

    def __init__(
        self,
        *,
        n_components: int = 3,
        regularizer: float | str | None = "auto",
        direction_column: int = 2,
        seed: int = 0,
    ):
        self.n_components = n_components
        self.regularizer = regularizer
        self.direction_column = direction_column
        self.seed = seed

    def _trial_tensor(self, X: np.ndarray, y: np.ndarray, lengths) -> tuple[np.ndarray, np.ndarray, int]:
        """``(trials, neurons, directions, bins)`` tensor, the sorted directions and trials per direction."""
        if lengths is None:
            raise ValueError("dPCA needs the trial structure: pass lengths (bins per trial)")
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.ndim != 1 or lengths.size < 1 or (lengths < 1).any() or lengths.sum() != X.shape[0]:
            raise ValueError(f"lengths must be positive bin counts summing to {X.shape[0]} bins")
        if (lengths != lengths[0]).any():
            raise ValueError(f"dPCA needs trials of equal length, got lengths from {lengths.min()} to {lengths.max()}")
        n_bins = int(lengths[0])
        trials = X.reshape(-1, n_bins, X.shape[1])
        direction = y[:, self.direction_column].reshape(-1, n_bins)
        if not (direction == direction[:, :1]).all():
            raise ValueError(f"label column {self.direction_column} must be constant within each trial (a direction)")
        direction = direction[:, 0]
        levels = np.unique(direction)
        counts = [int((direction == level).sum()) for level in levels]
        if levels.size < 2 or min(counts) < 2:
            raise ValueError(
                f"dPCA needs at least 2 directions with at least 2 trials each, got "
                f"{dict(zip(levels.tolist(), counts))}"
            )
        n = min(counts)
        tensor = np.stack([trials[direction == level][:n] for level in levels], axis=0)  # (S, n, T, N)
        return tensor.transpose(1, 3, 0, 2).astype(np.float64), levels, n

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> DPCA:
        """Fit on ``(T, N)`` training bins of whole trials with their labels.

        Args:
            X: training inputs, trials concatenated.
            y: labels per bin; column ``direction_column`` is the trial's direction (required).
            lengths: bins per trial, all equal (required).

        Returns:
            ``self``.

        Raises:
            ValueError: missing labels or lengths, unequal trial lengths, a direction that changes
                within a trial, fewer than 2 directions or 2 trials per direction.
        """
        from dPCA.dPCA import dPCA as DPCAEstimator

        X, y = check_inputs(X, y, need_y=True, estimator=self)
        if not 0 <= int(self.direction_column) < y.shape[1]:
            raise ValueError(f"direction_column={self.direction_column} is not a column of y ({y.shape[1]} columns)")
        trial_x, levels, n = self._trial_tensor(X, y, lengths)
        average = trial_x.mean(axis=0)  # (neurons, directions, bins)
        output = io.StringIO()  # the package reports progress with print()
        with _seeded_numpy(int(self.seed) & 0xFFFFFFFF), contextlib.redirect_stdout(output):
            estimator = DPCAEstimator(labels="st", regularizer=self.regularizer, n_components=int(self.n_components))
            if self.regularizer == "auto":
                estimator.protect = ["t"]
            estimator.fit(average, trial_x)
            estimator.transform(average)  # sets explained_variance_ratio_
        if output.getvalue().strip():
            log.debug("dPCA: %s", output.getvalue().strip())
        self.decoders_ = {key: np.asarray(value, dtype=np.float64) for key, value in estimator.D.items()}
        self.decoder_ = self.decoders_["s"]
        self.mean_ = average.reshape(average.shape[0], -1).mean(axis=1)
        self.regularizer_ = float(estimator.regularizer)
        self.directions_ = levels
        self.trials_per_direction_ = n
        self.explained_variance_ratio_ = {
            k: [float(v) for v in vals] for k, vals in estimator.explained_variance_ratio_.items()
        }
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Project ``(T, N)`` bins on the direction components; ``(T, n_components)`` float32.

        Single bins need neither trial structure nor labels: ``(x - mean_) @ decoder_``.
        """
        self._check_fitted("decoder_")
        X, _ = check_inputs(X, n_features=self.n_features_in_, estimator=self)
        return ((X.astype(np.float64) - self.mean_) @ self.decoder_).astype(np.float32)

    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write ``dpca.npz`` (decoder, mean, directions) and ``model.json``."""
        self._check_fitted("decoder_")
        arrays = {"decoder": self.decoder_, "mean": self.mean_, "directions": self.directions_}
        sidecar = {
            "method": self.name,
            "params": self.get_params(),
            "fit": {
                "n_features_in": self.n_features_in_,
                "regularizer": self.regularizer_,
                "trials_per_direction": self.trials_per_direction_,
                "explained_variance_ratio": self.explained_variance_ratio_,
            },
            "extra": extra or {},
        }
        return write_checkpoint(folder, sidecar, {"dpca.npz": npz_writer(arrays)})

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> DPCA:
        """Read a checkpoint folder written by :meth:`save` (``device`` is ignored).

        Raises:
            InputError: missing, corrupted or foreign checkpoint, or arrays of the wrong shape.
        """
        folder = Path(folder)
        meta = read_checkpoint(folder, cls.name)
        model = cls(**meta["params"])
        npz = folder / "dpca.npz"
        fit = meta["fit"]
        n_features = int(fit["n_features_in"])
        arrays = load_npz(npz, "dPCA", ("decoder", "mean", "directions"))
        decoder, mean, directions = arrays["decoder"], arrays["mean"], arrays["directions"]
        if decoder.shape != (n_features, int(model.n_components)) or mean.shape != (n_features,):
            raise InputError(
                npz,
                "decoder",
                f"shapes {decoder.shape} / {mean.shape} do not match "
                f"{model.n_components} components of {n_features} features",
            )
        model.decoder_, model.mean_, model.directions_ = decoder, mean, directions
        model.regularizer_ = float(fit["regularizer"])
        model.trials_per_direction_ = int(fit["trials_per_direction"])
        model.explained_variance_ratio_ = fit["explained_variance_ratio"]
        model.n_features_in_ = n_features
        return model

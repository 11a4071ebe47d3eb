"""PCA of single-trial bins (scikit-learn), the NER paper's linear baseline (NER_METHOD.md section 8.4).

``PCA(3)`` fitted on the training bins, rates as they are (centred, not standardised). The
projection is deterministic (full SVD, scikit-learn's sign convention); ``seed`` is accepted only
because every method is built with one, and recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.decomposition import PCA as SklearnPCA

from pipeline.embed.methods.base import (
    EmbeddingMethod,
    check_inputs,
    load_npz,
    npz_writer,
    read_checkpoint,
    write_checkpoint,
)
from pipeline.errors import InputError

__all__ = ["PCA"]


class PCA(EmbeddingMethod):
    """Principal components of the training bins.

    Args:
        n_components: embedding dimension (3).
        seed: unused (the full SVD involves no randomness); kept for the common constructor.

    Attributes (after ``fit``):
        components_: ``(n_components, N)`` principal axes.
        mean_: ``(N,)`` mean of the training bins.
        explained_variance_ratio_: ``(n_components,)`` fraction of the training variance.
        n_features_in_: number of input features (neurons).
    """

    name: ClassVar[str] = "pca"
    uses_labels_at_transform: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    trainable_on_gpu: ClassVar[bool] = False

    def __init__(self, *, n_components: int = 3, seed: int = 0):
        self.n_components = n_components
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> PCA:
        """Fit on ``(T, N)`` training bins (labels and ``lengths`` are not used).

        Raises:
            ValueError: fewer bins or neurons than ``n_components``, or bad inputs.
        """
        X, _ = check_inputs(X, estimator=self)
        k = int(self.n_components)
        if not 1 <= k <= min(X.shape):
            raise ValueError(f"n_components={k} needs at least {k} bins and {k} neurons, got {X.shape}")
        pca = SklearnPCA(n_components=k, svd_solver="full").fit(X.astype(np.float64))
        self.components_ = pca.components_
        self.mean_ = pca.mean_
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Project ``(T, N)`` bins on the principal axes; ``(T, n_components)`` float32."""
        self._check_fitted("components_")
        X, _ = check_inputs(X, n_features=self.n_features_in_, estimator=self)
        return ((X.astype(np.float64) - self.mean_) @ self.components_.T).astype(np.float32)

    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write ``pca.npz`` (components, mean, explained variance ratio) and ``model.json``."""
        self._check_fitted("components_")
        arrays = {
            "components": self.components_,
            "mean": self.mean_,
            "explained_variance_ratio": self.explained_variance_ratio_,
        }
        sidecar = {
            "method": self.name,
            "params": self.get_params(),
            "fit": {"n_features_in": self.n_features_in_, "explained_variance_ratio": self.explained_variance_ratio_},
            "extra": extra or {},
        }
        return write_checkpoint(folder, sidecar, {"pca.npz": npz_writer(arrays)})

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> PCA:
        """Read a checkpoint folder written by :meth:`save` (``device`` is ignored).

        Raises:
            InputError: missing, corrupted or foreign checkpoint, or arrays of the wrong shape.
        """
        folder = Path(folder)
        meta = read_checkpoint(folder, cls.name)
        model = cls(**meta["params"])
        npz = folder / "pca.npz"
        n_features = int(meta["fit"]["n_features_in"])
        arrays = load_npz(npz, "PCA", ("components", "mean", "explained_variance_ratio"))
        components, mean, ratio = arrays["components"], arrays["mean"], arrays["explained_variance_ratio"]
        if components.shape != (int(model.n_components), n_features) or mean.shape != (n_features,):
            raise InputError(
                npz,
                "components",
                f"shapes {components.shape} / {mean.shape} do not match "
                f"{model.n_components} components of {n_features} features",
            )
        model.components_, model.mean_, model.explained_variance_ratio_ = components, mean, ratio
        model.n_features_in_ = n_features
        return model

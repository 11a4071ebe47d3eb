"""UMAP with and without labels (umap-learn), with the NER paper's settings (NER_METHOD.md 8.5 and 5).

Both use ``n_neighbors=68, min_dist=0.2475, n_components=2`` (2-D, as the paper), Euclidean
metric and ``random_state=seed`` (umap-learn then runs single-threaded and is deterministic on a
given platform and library versions). :class:`UMAPLabels` is supervised by the trial direction
(label column 2) as a categorical target.

Which bins get which embedding:

* bins identical to training bins (the ``k``-th repeat of a training row maps to its ``k``-th
  occurrence) get their training embedding, the ``fit_transform`` output;
* every other bin is embedded according to ``protocol``:

  - ``"paper"``, what the authors did: one separate ``fit_transform`` of all those bins together
    (:class:`UMAPLabels`: supervised by *their* labels, so it needs test labels). That embedding
    lives in its own coordinates, so a decoder trained on the training embedding is at chance on
    it (NER_METHOD.md section 5/9.8);
  - ``"transform"``: umap-learn's ``transform`` of held-out data into the training embedding
    (labels are not used, also not by :class:`UMAPLabels`).

Checkpoints hold no pickle: the training bins, their labels and the training embedding (npz).
With protocol ``"paper"`` that is the whole model. With ``"transform"``, :meth:`UMAP.load` refits
umap-learn on the stored training bins with the stored seed and checks that the refit reproduces
the stored embedding exactly; if the platform or library versions make it differ, loading fails
with a clear error rather than returning a model that embeds new data differently.
"""

from __future__ import annotations

import importlib.metadata
import os
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

__all__ = ["PROTOCOLS", "UMAP", "UMAPLabels"]

#: protocol name -> how bins that are not training bins are embedded
PROTOCOLS: dict[str, str] = {
    "paper": "separate fit_transform of the new bins (the authors' protocol; not in the training coordinates)",
    "transform": "umap-learn transform of the new bins into the training embedding",
}


#: umap-learn modules whose numba functions are compiled on first use
_NUMBA_MODULES = (
    "umap.umap_",
    "umap.layouts",
    "umap.utils",
    "umap.distances",
    "umap.sparse",
    "umap.spectral",
    "pynndescent.pynndescent_",
    "pynndescent.utils",
    "pynndescent.rp_trees",
    "pynndescent.distances",
    "pynndescent.sparse",
    "pynndescent.graph_utils",
)


def import_umap():
    """``umap`` with the numba functions of umap-learn cached on disk.

    Most of the jitted functions of umap-learn and pynndescent (its nearest-neighbour descent) are not
    declared ``cache=True``, so every process compiled them again: about 30 s of each UMAP job
    (measured), longer than the fit. Caching them (numba's own ``Dispatcher.enable_caching``, before
    anything is compiled) makes the first job of a run compile and every later one load the machine
    code; the embeddings are identical (the same compiled code). pynndescent's ``nn_descent`` cannot be
    cached (numba: "uses dynamic globals"): data of 4 096 bins or more, which umap-learn sends through
    it, still compile it in every process (about 15 s on one core). The cache lies in numba's usual
    place (``__pycache__`` beside umap-learn, or ``NUMBA_CACHE_DIR``) and is keyed by the function's
    source and the CPU.
    """
    import importlib

    import umap
    from numba.core.registry import CPUDispatcher

    for name in _NUMBA_MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, CPUDispatcher) and not obj.signatures:  # not compiled yet in this process
                obj.enable_caching()
    return umap


def compile_cache(seed: int = 0) -> None:
    """Fill umap-learn's on-disk numba cache (:func:`import_umap`) now, e.g. right after installing
    (``make`` does): every UMAP job of a run then loads machine code, instead of the first jobs of a
    run compiling the same functions side by side (one cold compile costs about 40 s of CPU on this
    project's CI machine, and the demo starts two UMAP jobs at once, the tests more). Fits each variant
    the pipeline runs on a small random problem: unsupervised with the paper's protocol (a separate fit
    of new bins), supervised (:class:`UMAPLabels`) with both protocols; float32 inputs, as the methods
    pass them; and one unsupervised fit of more than 4 096 bins, the size from which umap-learn finds
    neighbours with pynndescent (real sessions), whose ``nn_descent`` itself numba cannot cache."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((400, 12)).astype(np.float32)
    y = np.column_stack([rng.standard_normal((400, 2)), 45.0 * rng.integers(0, 8, 400)])
    new, y_new = x[:60] + np.float32(0.5), y[:60]
    UMAP(n_neighbors=15, n_epochs=5, seed=seed).fit(x).transform(new)
    UMAP(n_neighbors=15, n_epochs=5, seed=seed).fit(rng.standard_normal((4200, 12)).astype(np.float32))
    UMAPLabels(n_neighbors=15, n_epochs=5, seed=seed).fit(x, y).transform(new, y=y_new)
    UMAPLabels(n_neighbors=15, n_epochs=5, protocol="transform", seed=seed).fit(x, y).transform(new)


class UMAP(EmbeddingMethod):
    """Unsupervised UMAP of single bins.

    Args:
        n_neighbors: size of the local neighbourhood (68).
        min_dist: minimum distance of embedded points (0.2475).
        n_components: embedding dimension (2).
        metric: input-space metric (``"euclidean"``).
        protocol: how bins other than the training bins are embedded (``"paper"`` or
            ``"transform"``, see the module docstring).
        n_epochs: layout optimisation epochs (None: umap-learn's default, 500 below 10 000 bins, as
            the paper).
        seed: umap-learn's ``random_state``.

    Attributes (after ``fit``):
        embedding_: ``(T_train, n_components)`` float32 training embedding.
        train_X_: ``(T_train, N)`` float32 training bins (to recognise them in ``transform``).
        train_target_: training target (direction) of the supervised variant, else None.
        reducer_: the fitted ``umap.UMAP`` (protocol ``"transform"`` only).
        n_features_in_: number of input features (neurons).
    """

    name: ClassVar[str] = "umap"
    uses_labels_at_transform: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    trainable_on_gpu: ClassVar[bool] = False

    def __init__(
        self,
        *,
        n_neighbors: int = 68,
        min_dist: float = 0.2475,
        n_components: int = 2,
        metric: str = "euclidean",
        protocol: str = "paper",
        n_epochs: int | None = None,
        seed: int = 0,
    ):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_components = n_components
        self.metric = metric
        self.protocol = protocol
        self.n_epochs = n_epochs
        self.seed = seed

    # ------------------------------------------------------------------ helpers
    def _target(self, y: np.ndarray | None) -> np.ndarray | None:
        """The supervision target of the bins (None: unsupervised)."""
        return None

    def _reducer(self):
        umap = import_umap()
        return umap.UMAP(
            n_neighbors=int(self.n_neighbors),
            min_dist=float(self.min_dist),
            n_components=int(self.n_components),
            metric=self.metric,
            n_epochs=None if self.n_epochs is None else int(self.n_epochs),
            random_state=int(self.seed),
            n_jobs=1,
        )

    def _check_protocol(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}")

    def _set_training(self, X: np.ndarray, target: np.ndarray | None, embedding: np.ndarray) -> None:
        self.train_X_ = X
        self.train_target_ = target
        self.embedding_ = embedding
        self.n_features_in_ = X.shape[1]
        rows: dict[bytes, list[int]] = {}
        for i, row in enumerate(X):
            rows.setdefault(row.tobytes(), []).append(i)
        self._training_rows = rows

    def _match_training(self, X: np.ndarray) -> np.ndarray:
        """Index of the training bin equal to each row of ``X``, or -1."""
        index = np.full(len(X), -1, dtype=np.int64)
        seen: dict[bytes, int] = {}
        for i, row in enumerate(X):
            key = row.tobytes()
            occurrences = self._training_rows.get(key)
            if occurrences is not None:
                k = seen.get(key, 0)
                seen[key] = k + 1
                index[i] = occurrences[min(k, len(occurrences) - 1)]
        return index

    # ------------------------------------------------------------------ fit / transform
    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> UMAP:
        """``fit_transform`` the ``(T, N)`` training bins (``lengths`` is not used).

        Raises:
            ValueError: unknown protocol, bad inputs, missing labels of the supervised variant.
        """
        self._check_protocol()
        X, y = check_inputs(X, y, estimator=self)
        target = self._target(y)
        reducer = self._reducer()
        embedding = np.asarray(reducer.fit_transform(X, y=target), dtype=np.float32)
        self._set_training(X, target, embedding)
        if self.protocol == "transform":
            self.reducer_ = reducer
        return self

    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Embed ``(T, N)`` bins; ``(T, n_components)`` float32.

        Training bins get their training embedding; the others are embedded by ``protocol``
        (:class:`UMAPLabels` with ``"paper"`` needs their labels ``y``).

        Raises:
            ValueError: too few new bins for a separate fit, or missing labels where needed.
        """
        self._check_fitted("embedding_")
        X, y = check_inputs(X, y, n_features=self.n_features_in_, estimator=self)
        index = self._match_training(X)
        out = np.empty((len(X), self.embedding_.shape[1]), dtype=np.float32)
        seen = index >= 0
        out[seen] = self.embedding_[index[seen]]
        new = ~seen
        if new.any() and self.protocol == "transform":
            out[new] = self.reducer_.transform(X[new])
        elif new.any():
            if new.sum() < int(self.n_components) + 2:
                raise ValueError(
                    f"protocol 'paper' refits UMAP on the {int(new.sum())} new bins; "
                    f"it needs at least {int(self.n_components) + 2}"
                )
            target = self._target(None if y is None else y[new])
            out[new] = self._reducer().fit_transform(X[new], y=target)
        return out

    # ------------------------------------------------------------------ checkpoints
    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write ``umap.npz`` (training bins, target, embedding; no pickle) and ``model.json``."""
        self._check_fitted("embedding_")
        arrays = {"train_x": self.train_X_, "embedding": self.embedding_}
        if self.train_target_ is not None:
            arrays["train_target"] = self.train_target_
        library = {dist: importlib.metadata.version(dist) for dist in ("umap-learn", "pynndescent", "numba")}
        sidecar = {
            "method": self.name,
            "params": self.get_params(),
            "protocol": {
                "name": self.protocol,
                "new_bins": PROTOCOLS[self.protocol],
                "training_bins": "training embedding (fit_transform output)",
            },
            "fit": {
                "n_features_in": self.n_features_in_,
                "n_training_bins": len(self.embedding_),
                "supervised": self.train_target_ is not None,
                "library": library,
            },
            "extra": extra or {},
        }
        return write_checkpoint(folder, sidecar, {"umap.npz": npz_writer(arrays)})

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> UMAP:
        """Read a checkpoint folder written by :meth:`save` (``device`` is ignored).

        With protocol ``"transform"`` umap-learn is refitted on the stored training bins (same seed)
        and must reproduce the stored embedding.

        Raises:
            InputError: missing, corrupted or foreign checkpoint, inconsistent arrays, or a refit
                that does not reproduce the stored embedding.
        """
        folder = Path(folder)
        meta = read_checkpoint(folder, cls.name)
        model = cls(**meta["params"])
        npz = folder / "umap.npz"
        arrays = load_npz(npz, "UMAP", ("train_x", "embedding"))
        train_x, embedding, target = arrays["train_x"], arrays["embedding"], arrays.get("train_target")
        if (
            train_x.ndim != 2
            or embedding.shape != (len(train_x), int(model.n_components))
            or (target is None) == bool(meta["fit"]["supervised"])
        ):
            raise InputError(
                npz,
                "embedding",
                f"arrays {train_x.shape} / {embedding.shape} do not match the "
                f"recorded model ({model.n_components} components)",
            )
        model._set_training(train_x, target, embedding)
        if model.protocol == "transform":
            reducer = model._reducer()
            refit = np.asarray(reducer.fit_transform(train_x, y=target), dtype=np.float32)
            if not np.array_equal(refit, embedding):
                raise InputError(
                    npz,
                    "embedding",
                    "refitting UMAP on the stored training bins did not reproduce "
                    f"the stored embedding (max |diff| {np.abs(refit - embedding).max():.3g}); "
                    f"recorded versions {meta['fit']['library']}",
                )
            model.reducer_ = reducer
        return model


class UMAPLabels(UMAP):
    """UMAP supervised by the trial direction (categorical target), as the paper's "UMAP with labels".

    ``uses_labels_at_transform`` is True because protocol ``"paper"`` refits new bins with their
    own labels; with protocol ``"transform"`` the labels passed to ``transform`` are ignored.

    Args:
        label_column: label column of the direction (2).
        (the others as :class:`UMAP`)
    """

    name: ClassVar[str] = "umap_labels"
    uses_labels_at_transform: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = True

    def __init__(
        self,
        *,
        n_neighbors: int = 68,
        min_dist: float = 0.2475,
        n_components: int = 2,
        metric: str = "euclidean",
        protocol: str = "paper",
        n_epochs: int | None = None,
        label_column: int = 2,
        seed: int = 0,
    ):
        super().__init__(
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            n_components=n_components,
            metric=metric,
            protocol=protocol,
            n_epochs=n_epochs,
            seed=seed,
        )
        self.label_column = label_column

    def _target(self, y: np.ndarray | None) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                f"{self.name} needs the labels y of the bins it fits (direction in column "
                f"{self.label_column})"
            )
        if not 0 <= int(self.label_column) < y.shape[1]:
            raise ValueError(f"label_column={self.label_column} is not a column of y ({y.shape[1]} columns)")
        return np.ascontiguousarray(y[:, int(self.label_column)])

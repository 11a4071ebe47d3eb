"""The interface every embedding method follows, and its checkpoint format.

A method is a scikit-learn transformer (``BaseEstimator``, ``TransformerMixin``): it works in
``sklearn.base.clone``, ``Pipeline`` and ``GridSearchCV``, and an unfitted one raises sklearn's
``NotFittedError``:

* ``__init__`` only stores its keyword arguments (no work, no validation beyond types), so
  ``get_params()`` returns exactly what the config asked for;
* ``fit(X, y=None, *, lengths=None)`` learns from ``(T, N)`` inputs of the training bins (trials
  concatenated, ``lengths`` bins per trial) and ``(T, C)`` labels, and returns ``self``;
* ``transform(X, *, y=None, lengths=None)`` returns ``(T, d)`` float32 embeddings (``y`` only for
  methods that use labels at test time, flagged by ``uses_labels_at_transform``);
* ``save(folder)`` / ``load(folder)`` write and read a checkpoint folder.

Checkpoint folder: ``model.json`` (method name, constructor parameters, what ``fit`` learned that is
not an array, versions, and the sha256 of every payload file) plus the payload files the method
writes (``model.pt`` for torch models, a state dict only, read back with ``weights_only=True``).
:func:`read_checkpoint` verifies the checksums first, so a truncated or modified file gives one
clear error naming it instead of a deserialisation traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array

from pipeline.data.atomic import atomic_path
from pipeline.data.origin import sha256_file, versions
from pipeline.errors import InputError

__all__ = [
    "CHECKPOINT_FORMAT",
    "EmbeddingMethod",
    "NotFittedError",
    "array_writer",
    "load_array",
    "load_npz",
    "load_weights",
    "npz_writer",
    "read_checkpoint",
    "seed_streams",
    "state_dict_writer",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = 1
SIDECAR = "model.json"


def seed_streams(seed: int, n: int = 2) -> list[int]:
    """``n`` independent 63-bit seeds derived from one user seed (weights, sampling, ...)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    state = np.random.SeedSequence(int(seed)).generate_state(n, dtype=np.uint64)
    return [int(s >> np.uint64(1)) for s in state]


class EmbeddingMethod(TransformerMixin, BaseEstimator):
    """Base class of the embedding methods (see the module docstring for the contract).

    Class attributes:
        name: registry name (also the folder name of its outputs).
        uses_labels_at_transform: the embedding of test data needs its labels (piVAE's posterior,
            supervised UMAP refits); recorded in every output so decoders can say so.
        trainable_on_gpu: the method can use a CUDA device (GPU-tagged training rule).
        needs_labels: ``fit`` needs the movement labels (hand velocity, direction); False for the
            unsupervised methods (PCA, UMAP), which are the only ones that run on a recording
            without behaviour.
    """

    name: ClassVar[str] = ""
    uses_labels_at_transform: ClassVar[bool] = False
    trainable_on_gpu: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = True

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.needs_labels  # fit(X) without y raises for the labelled methods
        tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings are float32 whatever X is
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return any(name.endswith("_") and not name.startswith("_") for name in vars(self))

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """Every constructor argument (sklearn's repr shows only those that differ from the defaults)."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ interface
    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> EmbeddingMethod:
        """Learn the embedding from training bins; returns ``self``."""
        raise NotImplementedError

    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Embed bins with the fitted model; ``(T, d)`` float32."""
        raise NotImplementedError

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> np.ndarray:
        """``fit`` then ``transform`` of the same bins."""
        return self.fit(X, y, lengths=lengths).transform(X, y=y, lengths=lengths)

    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write a checkpoint folder (see :func:`write_checkpoint`)."""
        raise NotImplementedError

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> EmbeddingMethod:
        """Read a checkpoint folder written by :meth:`save`."""
        raise NotImplementedError

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")


def check_inputs(
    X: Any,
    y: Any = None,
    *,
    name: str = "X",
    need_y: bool = False,
    n_features: int | None = None,
    estimator: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate ``(T, N)`` inputs and optional ``(T, C)`` labels; float32 / float64 arrays.

    ``X`` goes through scikit-learn's ``check_array`` (dense, real, finite, 2-D, at least one bin and
    one feature; its messages), so the methods answer bad input as every sklearn estimator does.

    Raises:
        ValueError: wrong dimensions, sparse or complex data, mismatched lengths, non-finite values,
            missing labels, or a feature count other than ``n_features``.
    """
    what = type(estimator).__name__ if estimator is not None else "this method"
    X = check_array(X, dtype=np.float32, input_name=name, estimator=estimator)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {what} is expecting {n_features} features as "
            f"input (fitted on {n_features})"
        )
    if y is None:
        if need_y:
            raise ValueError(
                f"{what} requires y to be passed, but the target y is None (labels y are required by this method)"
            )
        return X, None
    y = np.asarray(y)
    if np.iscomplexobj(y):
        raise ValueError("Complex data not supported in y")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be (bins, label columns) with {X.shape[0]} bins, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError(f"y contains {int((~np.isfinite(y)).sum())} NaN/inf values")
    return X, y


def _jsonable(value: Any) -> Any:
    """Plain-JSON form of numpy scalars, arrays and tuples (recursively)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_checkpoint(folder: str | os.PathLike, sidecar: dict, payload: dict[str, Callable[[Path], None]]) -> Path:
    """Write a checkpoint folder atomically (temp folder, then rename; stale temp folders removed).

    Args:
        folder: the checkpoint folder (replaced if it exists).
        sidecar: JSON-serialisable description (method, params, state); ``format``, ``versions``
            and ``files`` (sha256 per payload file) are added.
        payload: file name -> function writing that file to the given path.

    Returns:
        ``folder`` as a Path.
    """
    folder = Path(folder)
    with atomic_path(folder, folder=True) as tmp:
        files = {}
        for fname, writer in payload.items():
            writer(tmp / fname)
            files[fname] = sha256_file(tmp / fname)
        meta = {"format": CHECKPOINT_FORMAT, **_jsonable(sidecar), "versions": versions(), "files": files}
        (tmp / SIDECAR).write_text(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return folder


def read_checkpoint(folder: str | os.PathLike, method: str) -> dict:
    """Read and verify a checkpoint folder's sidecar.

    Args:
        folder: the checkpoint folder.
        method: the method name the checkpoint must belong to.

    Returns:
        The sidecar dict.

    Raises:
        InputError: the sidecar is missing, not JSON, of another method or format, or a payload
            file is missing or its sha256 differs (corrupted or modified); the message names the
            file and the field.
    """
    folder = Path(folder)
    path = folder / SIDECAR
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, None, "checkpoint sidecar not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc}); the checkpoint is corrupted") from None
    if not isinstance(meta, dict):
        raise InputError(path, None, "checkpoint sidecar must be a JSON object")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, "format", f"unsupported checkpoint format {meta.get('format')!r}")
    if meta.get("method") != method:
        raise InputError(path, "method", f"checkpoint of method {meta.get('method')!r}, expected {method!r}")
    files = meta.get("files")
    if not isinstance(files, dict):
        raise InputError(path, "files", "missing checksums of the payload files")
    for fname, digest in files.items():
        fpath = folder / fname
        if not fpath.is_file():
            raise InputError(fpath, None, "payload file of the checkpoint is missing")
        if sha256_file(fpath) != digest:
            raise InputError(
                fpath, None, f"sha256 differs from the one recorded in {SIDECAR}: the file is corrupted or was modified"
            )
    return meta


def state_dict_writer(module: Any) -> Callable[[Path], None]:
    """Payload writer of a torch module's state dict (CPU tensors only, for ``weights_only`` loads)."""
    import torch

    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return lambda path: torch.save(state, path)


def array_writer(values: Any) -> Callable[[Path], None]:
    """Payload writer of a float64 ``.npy`` array (no pickle)."""
    array = np.asarray(values, dtype=np.float64)
    return lambda path: np.save(path, array, allow_pickle=False)


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.npy`` payload written by :func:`array_writer`.

    Raises:
        InputError: the file is unreadable (naming it).
    """
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(path, None, f"unreadable array ({exc})") from None


def load_weights(path: str | os.PathLike, build: Callable[[], Any], what: str) -> Any:
    """Build a torch module and load a :func:`state_dict_writer` payload into it (``weights_only``).

    Args:
        path: the ``model.pt`` payload.
        build: makes the recorded architecture (may raise on a malformed sidecar).
        what: the module's name in the error message.

    Raises:
        InputError: the architecture cannot be built from the sidecar or the weights do not fit it.
    """
    import torch

    try:
        module = build()
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise InputError(path, None, f"weights do not load into the recorded {what} ({exc})") from None
    return module


def npz_writer(arrays: dict[str, np.ndarray]) -> Callable[[Path], None]:
    """Payload writer of named arrays as one ``.npz`` file (no pickle)."""
    return lambda path: np.savez(path, **arrays)


def load_npz(path: str | os.PathLike, what: str, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every array of a :func:`npz_writer` payload.

    Raises:
        InputError: the file is unreadable, or one of ``required`` is missing (naming it).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(path, None, f"unreadable {what} arrays ({exc})") from None
    for name in required:
        if name not in arrays:
            raise InputError(path, name, f"missing array of the {what} checkpoint")
    return arrays

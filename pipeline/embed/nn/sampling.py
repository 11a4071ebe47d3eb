"""Seeded index samplers for NER's positive pairs (CEBRA's ``time_delta`` conditional).

NER builds each training batch like this (NER_METHOD.md section 2.4):

1. draw ``B`` reference bins uniformly from all ``T`` training bins;
2. for each reference ``r`` draw a random bin ``s`` and form the empirical label change
   ``delta_s = y_s - y_(s - time_offset)`` (zero for the first ``time_offset`` bins; the changes
   across trial boundaries are kept, as in the authors' code);
3. the positive is the training bin whose label is nearest to ``q = y_r + delta_s`` in Euclidean
   distance, searching only the velocity columns (NER ignores the angle column; stock CEBRA
   searches all columns, which ``position_columns=(0, 1, 2)`` reproduces). The positive may be the
   reference itself.

Both halves of the batch get the **reference's** label: the caller builds the label tensor from
``labels[ref_idx]`` for the references *and* for the positives (never ``labels[pos_idx]``). The
"negatives" of CEBRA are not used by NER; :meth:`TimeDeltaSampler.sample_negatives` offers them for
the CEBRA baseline.

Differences from stock CEBRA, on purpose:

* Every draw comes from an explicit, caller-seeded :class:`torch.Generator` (CEBRA reseeds its
  generator non-deterministically, so its sampling cannot be repeated). No global torch or numpy
  random state is used or changed.
* The nearest-neighbour search uses a :class:`scipy.spatial.cKDTree` instead of a brute-force
  ``T x B`` distance matrix: the same neighbours, orders of magnitude faster on a CPU.

Indices are returned as CPU ``int64`` tensors; callers move them to the device of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

__all__ = ["SampleDraw", "TimeDeltaSampler"]

# Relative window in which the two nearest distances count as a (near-)tie and are re-checked
# exactly. Far above the rounding error of a distance, far below any meaningful label difference.
_TIE_RTOL = 1e-9


class SampleDraw(NamedTuple):
    """One batch of time-delta draws.

    Attributes:
        reference: ``(B,)`` int64 reference bins.
        positive: ``(B,)`` int64 positive bins.
        delta_index: ``(B,)`` int64 bins ``s`` whose label change ``delta_s`` built the query.
    """

    reference: Tensor
    positive: Tensor
    delta_index: Tensor


def _check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` as an int >= 1, or raise ValueError naming it."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)


class TimeDeltaSampler:
    """NER's time-delta positive sampler with an explicit random generator.

    Draw order of :meth:`sample` (fixed, so a draw can be reproduced from the generator state):
    first ``torch.randint(T, (B,))`` for the references, then ``torch.randint(T, (B,))`` for the
    delta bins ``s``, both from ``generator``. The deterministic rest is :meth:`positives`.

    Nearest neighbour and ties: the result equals a brute-force argmin of the squared Euclidean
    distance over all ``T`` bins, with ties going to the **lowest bin index**. ``cKDTree.query``
    alone does not guarantee that: on equal distances it keeps whichever tied point its tree
    traversal meets first, which depends on the tree layout, not on the index. So identical label
    points are merged at construction (keeping their lowest index), the tree is queried for the two
    nearest distinct points, and rows whose two distances agree to a relative 1e-9 are resolved
    exactly (ball query, exact squared distances, lowest index among the minima). With continuous
    labels such rows are rare; the result is then independent of the tree.

    Args:
        labels: ``(T, D)`` training labels, bins in trial order (trials concatenated); for NER the
            columns are ``(10*vx, 10*vy, angle_deg)``. Numpy array, tensor or nested sequence;
            copied as float64.
        generator: a CPU :class:`torch.Generator`, seeded by the caller; the only source of
            randomness.
        position_columns: label columns used in the nearest-neighbour search. Default: ``(0, 1)``
            (velocity only, as NER).
        time_offset: lag of the label change ``delta_s = y_s - y_(s - time_offset)``. Default: 1.

    Raises:
        ValueError: ``labels`` is not 2-D, has fewer than 2 rows, or has non-finite values;
            ``position_columns`` or ``time_offset`` is invalid.
        TypeError: ``generator`` is not a CPU torch.Generator.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> sampler = TimeDeltaSampler(np.random.default_rng(0).normal(size=(100, 3)), generator=g)
        >>> ref, pos = sampler.sample(4)
        >>> ref.shape, pos.dtype
        (torch.Size([4]), torch.int64)
    """

    def __init__(
        self,
        labels: Any,
        *,
        generator: torch.Generator,
        position_columns: Sequence[int] = (0, 1),
        time_offset: int = 1,
    ):
        self._labels = self._validate_labels(labels)
        n_bins, n_columns = self._labels.shape
        self.generator = self._validate_generator(generator)
        self.position_columns = self._validate_columns(position_columns, n_columns)
        if (
            isinstance(time_offset, bool)
            or not isinstance(time_offset, (int, np.integer))
            or not 1 <= time_offset < n_bins
        ):
            raise ValueError(f"time_offset must be an integer in [1, {n_bins - 1}], got {time_offset!r}")
        self.time_offset = int(time_offset)

        deltas = np.zeros_like(self._labels)
        deltas[self.time_offset :] = self._labels[self.time_offset :] - self._labels[: -self.time_offset]
        deltas.flags.writeable = False
        self._deltas = deltas

        cols = list(self.position_columns)
        # "+ 0.0" turns -0.0 into 0.0 so that equal points are merged below.
        self._points = np.ascontiguousarray(self._labels[:, cols]) + 0.0
        self._delta_points = np.ascontiguousarray(deltas[:, cols])
        self._points.flags.writeable = False
        self._delta_points.flags.writeable = False
        # np.unique sorts stably with return_index, so first_index is the lowest bin of each point.
        unique, first_index = np.unique(self._points, axis=0, return_index=True)
        self._unique_points = np.ascontiguousarray(unique)
        self._first_index = first_index.astype(np.int64)
        self._tree = cKDTree(self._unique_points)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _validate_labels(labels: Any) -> np.ndarray:
        """Return a read-only float64 copy of ``labels`` or raise ValueError naming it."""
        if isinstance(labels, Tensor):
            labels = labels.detach().cpu().numpy()
        try:
            arr = np.array(labels, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as err:
            raise ValueError(f"labels must be a numeric (T, D) array: {err}") from None
        if arr.ndim != 2:
            raise ValueError(f"labels must be 2-D (T, D), got shape {arr.shape}")
        if arr.shape[0] < 2 or arr.shape[1] < 1:
            raise ValueError(f"labels must have at least 2 rows and 1 column, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise ValueError(f"labels must be finite; found {bad} NaN/inf values")
        arr.flags.writeable = False
        return arr

    @staticmethod
    def _validate_generator(generator: Any) -> torch.Generator:
        """Check that ``generator`` is a CPU torch.Generator."""
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != "cpu":
            raise TypeError(f"generator must live on the CPU, got device {generator.device}")
        return generator

    @staticmethod
    def _validate_columns(position_columns: Any, n_columns: int) -> tuple[int, ...]:
        """Return ``position_columns`` as a tuple of distinct valid column indices."""
        try:
            cols = tuple(position_columns)
        except TypeError:
            raise ValueError(
                f"position_columns must be a sequence of column indices, got {position_columns!r}"
            ) from None
        if (
            not cols
            or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) for c in cols)
            or any(not 0 <= c < n_columns for c in cols)
            or len(set(cols)) != len(cols)
        ):
            raise ValueError(
                f"position_columns must be distinct column indices in [0, {n_columns}), got {position_columns!r}"
            )
        return tuple(int(c) for c in cols)

    # ------------------------------------------------------------------ data
    def __len__(self) -> int:
        """Number of training bins T."""
        return self._labels.shape[0]

    @property
    def n_bins(self) -> int:
        """Number of training bins T."""
        return self._labels.shape[0]

    @property
    def labels(self) -> np.ndarray:
        """``(T, D)`` read-only float64 copy of the labels; both batch halves use ``labels[ref_idx]``."""
        return self._labels

    @property
    def deltas(self) -> np.ndarray:
        """``(T, D)`` read-only label changes ``y_s - y_(s - time_offset)`` (zero for ``s < time_offset``)."""
        return self._deltas

    def __repr__(self) -> str:
        """Summarise the sampler."""
        return (
            f"TimeDeltaSampler(n_bins={self.n_bins}, position_columns={self.position_columns}, "
            f"time_offset={self.time_offset})"
        )

    # ------------------------------------------------------------------ deterministic part
    def nearest(self, query: Any) -> Tensor:
        """Index of the training bin nearest to each query point (search columns only).

        Args:
            query: ``(B, len(position_columns))`` points.

        Returns:
            ``(B,)`` int64 CPU tensor: for every row the bin minimising the squared Euclidean
            distance, the lowest such bin on ties.

        Raises:
            ValueError: ``query`` has the wrong shape or non-finite values.
        """
        q = np.ascontiguousarray(query, dtype=np.float64)
        n_cols = len(self.position_columns)
        if q.ndim != 2 or q.shape[1] != n_cols:
            raise ValueError(f"query must have shape (B, {n_cols}), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("query must be finite")
        if q.shape[0] == 0:
            return torch.empty(0, dtype=torch.long)
        if len(self._unique_points) == 1:
            return torch.full((q.shape[0],), int(self._first_index[0]), dtype=torch.long)

        dist, which = self._tree.query(q, k=2)
        result = self._first_index[which[:, 0]]
        tied = np.flatnonzero(dist[:, 1] <= dist[:, 0] * (1.0 + _TIE_RTOL))
        for row in tied:
            result[row] = self._resolve_tie(q[row], dist[row, 0])
        return torch.from_numpy(np.ascontiguousarray(result, dtype=np.int64))

    def _resolve_tie(self, point: np.ndarray, radius: float) -> int:
        """Exact nearest bin to ``point`` among the points within ``radius`` (plus a margin)."""
        candidates = np.asarray(self._tree.query_ball_point(point, radius * (1.0 + 4 * _TIE_RTOL)), dtype=np.int64)
        sq = ((self._unique_points[candidates] - point) ** 2).sum(axis=1)
        best = candidates[sq == sq.min()]
        return int(self._first_index[best].min())

    def positives(self, ref_idx: Any, delta_idx: Any) -> Tensor:
        """Positive bins for given references and delta bins (no randomness).

        Args:
            ref_idx: ``(B,)`` reference bins in ``[0, T)``.
            delta_idx: ``(B,)`` bins ``s`` in ``[0, T)`` whose label change is added.

        Returns:
            ``(B,)`` int64 CPU tensor: ``nearest(y[ref_idx] + delta[delta_idx])`` on the search
            columns. A ``delta_idx < time_offset`` (zero change) returns the reference itself
            unless an identical label sits at a lower bin.

        Raises:
            ValueError: shapes differ or indices are out of range.
        """
        ref = self._as_index(ref_idx, "ref_idx")
        delta = self._as_index(delta_idx, "delta_idx")
        if ref.shape != delta.shape:
            raise ValueError(f"ref_idx and delta_idx must have the same shape, got {ref.shape} and {delta.shape}")
        return self.nearest(self._points[ref] + self._delta_points[delta])

    def _as_index(self, idx: Any, name: str) -> np.ndarray:
        """Convert a 1-D index tensor/sequence to int64 numpy, checking the range."""
        if isinstance(idx, Tensor):
            idx = idx.detach().cpu().numpy()
        arr = np.asarray(idx)
        if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_bins):
            raise ValueError(f"{name} values must lie in [0, {self.n_bins})")
        return arr

    # ------------------------------------------------------------------ random draws
    def sample_with_deltas(self, batch_size: int) -> SampleDraw:
        """Draw references and delta bins, and return them with the positives.

        Args:
            batch_size: number of reference/positive pairs B.

        Returns:
            :class:`SampleDraw` of three ``(B,)`` int64 CPU tensors.
        """
        n = _check_batch_size(batch_size)
        reference = torch.randint(self.n_bins, (n,), generator=self.generator, dtype=torch.long)
        delta_index = torch.randint(self.n_bins, (n,), generator=self.generator, dtype=torch.long)
        return SampleDraw(reference, self.positives(reference, delta_index), delta_index)

    def sample(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Draw a batch of reference bins and their time-delta positives.

        Args:
            batch_size: number of pairs B (NER: 512).

        Returns:
            ``(ref_idx, pos_idx)``, two ``(B,)`` int64 CPU tensors. Label both halves of the batch
            with ``labels[ref_idx]``.
        """
        draw = self.sample_with_deltas(batch_size)
        return draw.reference, draw.positive

    def sample_negatives(self, batch_size: int) -> Tensor:
        """Draw bins uniformly from all training bins (CEBRA's negatives; NER does not use them).

        Args:
            batch_size: number of bins.

        Returns:
            ``(batch_size,)`` int64 CPU tensor.
        """
        n = _check_batch_size(batch_size)
        return torch.randint(self.n_bins, (n,), generator=self.generator, dtype=torch.long)

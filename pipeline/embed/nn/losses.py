"""Contrastive losses for NER: the rank (Rank-N-Contrast) loss and CEBRA-style InfoNCE.

NER trains its encoder with a Rank-N-Contrast objective on a batch of ``M`` embeddings ``z`` and
their labels (NER_METHOD.md sections 2.2-2.5). With ``D`` the label-distance matrix
(:func:`label_distance`) and ``s_ij = -||z_i - z_j||_2 / tau``::

    L = 1 / (M (M - 1)) * sum_i sum_{j != i} -log[ exp(s_ij) / sum_{k != i, D_ik >= D_ij} exp(s_ik) ]

Every other sample ``j`` is once the "positive" of anchor ``i``; its denominator holds every
sample whose label is at least as far from the anchor's as ``j``'s, ties and ``j`` itself
included, the anchor itself excluded.

Written literally this costs ``O(M^3)`` (one ``M x M`` mask per positive column, the authors'
formulation). :func:`rank_loss` computes the same number in ``O(M^2 log M)`` time and ``O(M^2)``
memory:

1. For anchor ``i`` sort the columns by ``D_i.`` ascending. The denominator of positive ``j`` is
   then a *suffix* of the sorted row that starts at the first member of ``j``'s tie group, so one
   reversed cumulative sum of ``exp(s_i.)`` per row gives every denominator; a tie group shares
   the suffix sum at its first index. On the CPU the rows are sorted by value on integer keys
   that carry the column in their lowest bits (about 2.5x cheaper than an argsort), every
   apparent tie is verified on the distances, and the rows are processed in cache-sized blocks
   (:class:`RankStructure`).
2. Samples whose rows and columns of ``D`` are exactly equal share everything but the diagonal.
   In an NER batch each positive repeats its reference's label, so every label occurs an even
   number of times and ``M = 2B`` samples fall into ``B`` sub-groups of 2 identical samples
   (groups of size 4, 6, ... when a bin was drawn twice are cut into pairs, which then simply
   tie). Rows are therefore sorted once per sub-group (``B`` rows of ``B``), the columns of a
   sub-group are summed before the cumulative sum (equal distances: always the same tie group),
   and the per-anchor work is on ``M x B`` instead of ``M x M``. In general the sub-group size is
   the gcd ``k`` of the group sizes (``k = 1``: no merging). Groups are detected from ``D`` and
   verified exactly (equal rows *and* columns), so the result never depends on the detection;
   :class:`RankLoss` takes them from the labels instead (``groups=``), which is cheaper.
3. The gradient is written out by hand (a custom :class:`torch.autograd.Function`): with
   ``Z_i(p)`` the denominator at sorted position ``p``, ``dL/ds_ij = (exp(s_ij) * sum_{starts p
   <= pos(j)} w_p / Z_i(p) - 1) / (M (M - 1))`` (``w_p`` = number of positives whose denominator
   starts at ``p``), a prefix sum, then ``ds/dz`` in closed form (one ``M x M`` by ``M x d``
   product).

Numerics. Everything after the embedding distances runs in float64 (also for float32 inputs,
whose loss and gradient are returned in float32); :class:`RankLoss` can run it in float32 instead
(``precision="float32"``, NER's default; its fast path then holds up to
:data:`EXP_RANGE_LIMIT_FLOAT32`). Because ``s_ij <= 0``, the fast path works with ``exp(s_ij)``
directly, which needs ``max_ij ||z_i - z_j|| / tau`` below :data:`EXP_RANGE_LIMIT`
(``exp(-600)`` is still a normal float64); a unit-norm embedding is therefore on the fast path
for every ``tau > 1/300`` (decided from the norms, ``||z_i - z_j|| <= 2 max ||z||``, before the
distances are scanned). Beyond that (tiny ``tau`` or huge embeddings) the same algorithm runs in
log space (``logcumsumexp``, per-group log-sum-exp), about 3-4x slower but never overflowing.
On a GPU the log-space path always runs: it needs no host synchronisation to choose, and costs
little there.

Everything that depends on the labels only (label groups, sorted distances, tie weights) is a
:class:`RankStructure`, which :meth:`RankLoss.structure` builds on the CPU; NER's training loop
builds it for the next batches in a background thread while the current step runs, and passes it
to :class:`RankLoss` (``structure=``). The step then pays only for the embedding distances, the
exponentials, one gather, two cumulative sums and two ``(M, M) x (M, d + 1)`` products.

Speed: measured by ``benchmarks/bench_rank_loss.py`` (forward + backward at M = 1024, label
structure and step separately, against the ``O(M^3)`` formulation and InfoNCE); numbers in the
README.

Euclidean distance at zero. ``||z_i - z_j||`` is not differentiable where ``z_i == z_j`` (the
diagonal always; and, e.g., a reference and its positive mapped to the same point). The gradient
implemented here uses the minimum-norm subgradient there: the pair contributes **zero** to the
gradient of both points (the analytic gradient ``(z_i - z_j) / ||z_i - z_j||`` is only formed for
``||z_i - z_j|| > 0``). No NaN or inf is produced. :func:`infonce` uses the same convention
through ``sqrt(clamp(squared distance, min=eps))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import cdist
from torch import Tensor, nn

__all__ = [
    "EXP_RANGE_LIMIT",
    "EXP_RANGE_LIMIT_FLOAT32",
    "PRECISIONS",
    "RankLoss",
    "RankStructure",
    "infonce",
    "label_distance",
    "rank_loss",
]

#: Largest ``max ||z_i - z_j|| / tau`` handled by the fast (exp-space, float64) path of
#: :func:`rank_loss`; larger ranges use the log-space path.
EXP_RANGE_LIMIT = 600.0

# Squared-distance floor of :func:`infonce` (its gradient is zero below it, never NaN).
_INFONCE_EPS = 1e-24

_WORK_DTYPE = torch.float64
#: the fast path's limit in float32 working precision (``exp(-80)`` is still a normal float32)
EXP_RANGE_LIMIT_FLOAT32 = 80.0
#: working precisions of :class:`RankLoss` (``precision=``)
PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


# --------------------------------------------------------------------------------------------
# label distance
# --------------------------------------------------------------------------------------------


def label_distance(labels_a: Tensor, labels_b: Tensor | None = None, *, angle_column: int | None = 2) -> Tensor:
    """Pairwise NER label distance (NER_METHOD.md section 2.2).

    For label rows ``a`` and ``b`` the distance is the L1 distance over the other columns (summed in
    column order) plus, for the angle column (degrees), the circular difference
    ``min(|a_t - b_t| mod 360, 360 - |a_t - b_t| mod 360)`` (0 ... 180). For angles in
    ``[0, 360)`` this is ``min(|a_t - b_t|, 360 - |a_t - b_t|)``. NER labels are
    ``(10 * v_x, 10 * v_y, theta_deg)``, giving ``|du| + |dw| + circular(dtheta)``.

    The result is exactly symmetric and has an exactly zero diagonal when ``labels_b`` is
    omitted, and equal label rows give bitwise-equal distance rows (which :func:`rank_loss` uses
    to merge duplicates).

    Args:
        labels_a: ``(M, C)`` labels (``(M,)`` is treated as one column).
        labels_b: ``(N, C)`` labels; defaults to ``labels_a`` (``M x M`` self-distances).
        angle_column: Index of the circular (degree) column, or ``None`` for plain L1 over all
            columns. Negative indices count from the end.

    Returns:
        ``(M, N)`` tensor of distances in the (floating) dtype of the labels.

    Raises:
        ValueError: On tensors that are not 1-D/2-D, mismatched column counts or devices, or an
            angle column out of range.
    """
    a = _as_label_matrix(labels_a, "labels_a")
    b = a if labels_b is None else _as_label_matrix(labels_b, "labels_b")
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"labels_a has {a.shape[1]} columns but labels_b has {b.shape[1]}")
    if b.device != a.device:
        raise ValueError(f"labels_a is on {a.device} but labels_b is on {b.device}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    a, b = a.to(dtype), b.to(dtype)
    n_cols = a.shape[1]
    angle_column = _angle_index(angle_column, n_cols)
    plain = [c for c in range(n_cols) if c != angle_column]
    if a.device.type == "cpu" and dtype == torch.float64 and labels_b is None:
        return torch.from_numpy(_label_rows(a.detach().numpy(), angle_column)(0, a.shape[0]))
    out = torch.zeros(a.shape[0], b.shape[0], dtype=dtype, device=a.device)
    # Column by column: M x N work per column, no M x N x C temporary.
    for c in plain:
        out += (a[:, c, None] - b[None, :, c]).abs_()
    if angle_column is not None:
        diff = (a[:, angle_column, None] - b[None, :, angle_column]).abs_()
        diff = torch.remainder(diff, 360.0)
        out += torch.minimum(diff, 360.0 - diff)
    return out


def _angle_index(angle_column: Any, n_cols: int) -> int | None:
    """The angle column as a non-negative index (``None`` stays ``None``), or ValueError naming it."""
    if angle_column is None:
        return None
    if isinstance(angle_column, bool) or not isinstance(angle_column, int):
        raise ValueError(f"angle_column must be an int or None, got {angle_column!r}")
    if not -n_cols <= angle_column < n_cols:
        raise ValueError(f"angle_column {angle_column} is out of range for {n_cols} label columns")
    return angle_column % n_cols


def _as_label_matrix(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (M, C) or (M,), got {tuple(x.shape)}")
    return x


# --------------------------------------------------------------------------------------------
# rank loss
# --------------------------------------------------------------------------------------------


def rank_loss(
    embeddings: Tensor, label_dist: Tensor, temperature: float = 1.0, *, groups: Tensor | None = None
) -> Tensor:
    """NER's rank (Rank-N-Contrast) loss, exact, in ``O(M^2 log M)`` time and ``O(M^2)`` memory.

    Computes::

        s_ij = -||z_i - z_j||_2 / tau
        L = 1 / (M (M - 1)) * sum_i sum_{j != i} -log[ exp(s_ij) / sum_{k != i, D_ik >= D_ij} exp(s_ik) ]

    (ties ``D_ik == D_ij`` are in the denominator, ``j`` itself included; ``k = i`` never). See
    the module docstring for the algorithm, the numerics and the gradient convention at
    ``z_i == z_j`` (zero contribution, never NaN). A pure function: no state, no randomness.

    Args:
        embeddings: ``(M, d)`` embeddings ``z`` (float32 or float64, any device), ``M >= 2``.
        label_dist: ``(M, M)`` label distances ``D`` (e.g. from :func:`label_distance`), on the
            same device, without NaN. Only the order and the exact ties within each row matter;
            it need not be symmetric. Not differentiated.
        temperature: ``tau > 0``.
        groups: Optional ``(M,)`` integer ids of samples whose rows **and** columns of
            ``label_dist`` are identical, e.g. ids of identical label rows when
            ``label_dist = label_distance(labels)`` (what :class:`RankLoss` passes; note that
            ``torch.unique(labels, dim=0)`` mis-groups rows when labels contain NaN). It only
            saves the detection of duplicates (2-3 ms at ``M = 1024`` on a CPU) and is
            **trusted**: ids that group non-identical rows give a wrong loss. ``None`` (default)
            detects duplicate rows/columns from ``label_dist`` itself, verified exactly.

    Returns:
        Scalar loss tensor in the dtype of ``embeddings``, differentiable with respect to them.

    Raises:
        ValueError: On bad shapes, a device mismatch, NaN in ``label_dist``, non-floating
            embeddings or a temperature that is not a finite positive number.
    """
    _check_rank_inputs(embeddings, label_dist, temperature, groups)
    return _RankLossFunction.apply(embeddings, label_dist, float(temperature), groups)


def _check_rank_inputs(z: Any, d: Any, temperature: Any, groups: Any) -> None:
    _check_embeddings(z, temperature)
    if not isinstance(d, Tensor):
        raise ValueError("embeddings and label_dist must be torch.Tensors")
    m = z.shape[0]
    if tuple(d.shape) != (m, m):
        raise ValueError(f"label_dist must have shape ({m}, {m}), got {tuple(d.shape)}")
    if d.device != z.device:
        raise ValueError(f"embeddings are on {z.device} but label_dist is on {d.device}")
    if d.dtype.is_complex or d.dtype == torch.bool:
        raise ValueError(f"label_dist must be real-valued, got {d.dtype}")
    if groups is not None:
        if not isinstance(groups, Tensor) or groups.dtype.is_floating_point or groups.dtype == torch.bool:
            raise ValueError("groups must be an integer tensor")
        if tuple(groups.shape) != (m,):
            raise ValueError(f"groups must have shape ({m},), got {tuple(groups.shape)}")


def _check_embeddings(z: Any, temperature: Any) -> None:
    if not isinstance(z, Tensor):
        raise ValueError("embeddings and label_dist must be torch.Tensors")
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"embeddings must have shape (M, d) with M >= 2, got {tuple(z.shape)}")
    if not z.dtype.is_floating_point:
        raise ValueError(f"embeddings must be floating point, got {z.dtype}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")


def _duplicate_groups(d: Tensor) -> Tensor:
    """Group ids of samples whose rows *and* columns of ``d`` are exactly equal.

    The candidate id of row ``i`` is the first column holding the row minimum (for a
    pseudo-metric such as :func:`label_distance`: the first sample with the same label). The
    candidates are then verified exactly; if the check fails, every sample is its own group, so
    the caller's result never depends on this guess.
    """
    rep = d.argmin(dim=1)
    if torch.equal(d.index_select(0, rep), d) and torch.equal(d.index_select(1, rep), d):
        return rep
    return torch.arange(d.shape[0], device=d.device)


def _label_groups(labels: Tensor) -> Tensor:
    """Group ids of identical label rows: one 1-D ``unique`` per column (faster than ``dim=0``, and
    rows with NaN stay apart: NaN equals nothing)."""
    x = labels if labels.dim() == 2 else labels[:, None]
    key = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    for c in range(x.shape[1]):
        values, code = torch.unique(x[:, c], return_inverse=True)
        _, key = torch.unique(key * values.numel() + code, return_inverse=True)  # stays < M
    return key


def _slot_layout(ids: Tensor) -> tuple[int, Tensor | None]:
    """Split the groups into sub-groups of a common size ``k`` and order the samples by slot.

    ``k`` is the gcd of the group sizes (2 in an NER batch, where every label appears in a
    reference and its positive). Sorting the samples by group and cutting the sorted list into
    runs of ``k`` gives ``U = M / k`` sub-groups of identical samples; ``perm.view(k, U)[s, c]`` is
    member ``s`` of sub-group ``c``. Identical samples in different sub-groups are simply tied.

    Returns:
        ``(k, perm)``, with ``perm = None`` for ``k = 1`` (identity order).
    """
    order = torch.argsort(ids, stable=True)
    sizes = torch.unique_consecutive(ids[order], return_counts=True)[1]
    k = math.gcd(*sizes.tolist())
    if k == 1:
        return 1, None
    return k, order.view(-1, k).T.reshape(-1)


#: rows per block of :func:`_structure_by_keys` (its temporaries stay in a core's L2 cache)
_BLOCK_ROWS = 128
_SIGN = np.uint64(1 << 63)
_ALL = np.uint64((1 << 64) - 1)


def _structure_by_keys(
    u: int, k: int, rows: Callable[[int, int], np.ndarray], *, zero_diagonal: bool, dtype: torch.dtype = _WORK_DTYPE
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Sorted orders and tie-group weights of ``(U, U)`` distances, on the CPU with numpy.

    ``rows(r0, r1)`` returns the float64 distance rows ``r0:r1`` (no NaN). Each row is sorted once
    by value on unsigned integer keys: floats map to integers in the same order (the bit patterns
    of non-negative floats already are; negative ones have every bit flipped, non-negative ones
    the sign bit), complemented for the farthest-first order, and their lowest
    ``ceil(log2(U))`` bits replaced by the column, so the sorted keys also give the permutation
    (about 2.5x cheaper than ``argsort``). Dropping those bits can only make *distinct* distances
    that agree to about ``2**-43`` relative share a key, so every apparent tie is checked on the
    distances themselves; if one is false the function returns ``None`` and the caller sorts
    exactly. Blocks of :data:`_BLOCK_ROWS` rows keep the temporaries in a core's cache (splitting
    them over threads gained nothing on 2 cores: the GIL; the training loop runs the whole
    structure in a background thread instead).

    Args:
        u: number of rows and columns.
        k: sub-group size (the weight of one column).
        rows: the distance rows of a block.
        zero_diagonal: the distances are non-negative (no ``-0.0``) with a zero diagonal, as label
            distances are; otherwise the keys handle negative values and the anchor's own tie
            group is looked up.
        dtype: dtype of the weights (the loss's working precision).

    Returns:
        ``(order_desc, pos, weight_desc)`` as described in :class:`RankStructure`, or ``None``.
    """
    bits = max(1, (u - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    cols = np.arange(u, dtype=np.uint64)
    flip_const = cols + _ALL  # wraps modulo 2**64: (2**64 - 1 + col) - key_asc is the descending key
    order_desc = np.empty((u, u), dtype=np.int64)
    pos = np.empty((u, u), dtype=np.int64)
    descending = np.arange(u - 1, -1, -1)[None, :]
    weight = np.full((u, u), float(k), dtype=torch.empty(0, dtype=dtype).numpy().dtype)

    def block(r0: int, r1: int) -> bool:
        d = rows(r0, r1)
        keys = np.empty(d.shape, dtype=np.uint64)
        if zero_diagonal:
            np.bitwise_or(d.view(np.uint64), low, out=keys)
        else:
            b = (d + 0.0).view(np.uint64)  # + 0.0: -0.0 becomes +0.0
            np.bitwise_xor(b, (np.uint64(0) - (b >> np.uint64(63))) | _SIGN, out=keys)
            keys |= low
        np.subtract(flip_const, keys, out=keys)
        keys.sort(axis=1)
        order = order_desc[r0:r1]
        np.bitwise_and(keys, low, out=order.view(np.uint64))
        np.put_along_axis(pos[r0:r1], order, descending, axis=1)
        keys >>= np.uint64(bits)
        # Tied neighbours (positions p, p + 1, farthest first) as flat indices of the block.
        tie = np.flatnonzero(keys[:, 1:] == keys[:, :-1])
        w = weight[r0:r1].reshape(-1)
        if tie.size:
            tie += tie // (u - 1)
            flat_rows = tie // u * u
            of = order.reshape(-1)
            dflat = d.reshape(-1)
            if not np.array_equal(dflat[flat_rows + of[tie]], dflat[flat_rows + of[tie + 1]]):
                return False
            # A tie group's weight sits at its nearest position (its last, farthest first): k
            # times its size. A run of tied neighbours p .. q - 1 is the group p .. q (runs never
            # cross rows: a row's last position has no right neighbour).
            w[tie] = 0.0
            run_end = np.flatnonzero(np.diff(tie, append=-2) != 1)
            run_start = np.concatenate([[0], run_end[:-1] + 1])
            w[tie[run_end] + 1] = k * (run_end - run_start + 2.0)
        # The anchor is no positive of itself: one less in the group of its own distance d_cc,
        # whose nearest position is U - 1 - #{j: d_cj < d_cc} (U - 1 for label distances).
        if zero_diagonal:
            weight[r0:r1, u - 1] -= 1.0
        else:
            own = d[np.arange(r1 - r0), np.arange(r0, r1)]
            below = np.count_nonzero(d < own[:, None], axis=1)
            w[np.arange(r1 - r0) * u + (u - 1 - below)] -= 1.0
        return True

    ok = all([block(r0, min(r0 + _BLOCK_ROWS, u)) for r0 in range(0, u, _BLOCK_ROWS)])
    return (order_desc, pos, weight) if ok else None


def _label_rows(labels: np.ndarray, angle_column: int | None) -> Callable[[int, int], np.ndarray]:
    """``rows(r0, r1)`` of :func:`label_distance` for float64 CPU labels (the same operations, bitwise equal).

    The L1 part is scipy's ``cityblock`` (one C pass that sums the columns in order, from zero).
    The circular part skips the remainder when every angle lies in ``[0, 360)`` (where it is the
    identity), and when there are few distinct angles (e.g. 8 reach directions) it is looked up in
    a table of their pairwise circular differences, computed by the same operations.
    """
    plain = [c for c in range(labels.shape[1]) if c != angle_column]
    flat = np.ascontiguousarray(labels[:, plain])
    table = codes = angle = None
    if angle_column is not None:
        angle = np.ascontiguousarray(labels[:, angle_column])
        in_range = bool(angle.min() >= 0 and angle.max() < 360)
        values, codes = np.unique(angle, return_inverse=True)
        if len(values) <= 64:
            table = _circular(np.subtract.outer(values, values), in_range)

    def rows(r0: int, r1: int) -> np.ndarray:
        if plain:
            out = cdist(flat[r0:r1], flat, "cityblock")
        else:
            out = np.zeros((r1 - r0, labels.shape[0]))
        if table is not None:
            out += np.take(table[codes[r0:r1]], codes, axis=1)
        elif angle is not None:
            out += _circular(np.subtract.outer(angle[r0:r1], angle), in_range)
        return out

    return rows


def _circular(diff: np.ndarray, in_range: bool) -> np.ndarray:
    """``min(|d| mod 360, 360 - |d| mod 360)`` in place (the remainder skipped when ``in_range``)."""
    np.abs(diff, out=diff)
    if not in_range:
        np.remainder(diff, 360.0, out=diff)
    return np.minimum(diff, np.subtract(360.0, diff), out=diff)


class RankStructure:
    """Everything about a batch that depends on its labels only (no gradient), for :func:`rank_loss`.

    The samples are reordered (``perm``) into ``k`` slots of ``U = M / k`` sub-groups, sample
    ``s * U + c`` being member ``s`` of sub-group ``c``; all members of a sub-group have identical
    rows and columns of ``D`` (``k = 1``: no merging, original order). Every per-anchor quantity
    is then a ``(k, U, U)`` tensor whose label structure is the same ``(U, U)`` matrix for all
    ``k`` slots, so the ``(U, U)`` tensors below are only broadcast, never copied per anchor.

    Per sub-group row, the ``U`` sub-groups are sorted by label distance; "ascending positions"
    count from the nearest label, the ``*_desc`` tensors list the positions farthest first, so
    that a cumulative sum along them gives the ascending suffix sums (the denominators).

    Built by :meth:`from_labels` (what :class:`RankLoss` does) or :meth:`from_distances`. On the
    CPU the rows are sorted by numpy on integer keys that carry the column (see
    :func:`_structure_by_keys`; every apparent tie is verified, and a row set with a false one is
    sorted exactly instead); elsewhere by ``torch.sort`` (on a GPU without host synchronisation
    when built by :meth:`from_pairs`). Both give the same structure.

    Attributes:
        k: Sub-group size.
        u: Number of sub-groups.
        perm: ``(M,)`` sample order, or ``None`` for the identity.
        order_desc: ``(U, U)`` sub-group at each position, farthest label first.
        pos: ``(U, U)`` ascending position of each sub-group.
        weight_desc: ``(U, U)`` in the working dtype, same layout as ``order_desc``: at the nearest
            position of each tie group (equal label distance) the number of positives ``j != i``
            in the tie group, zero elsewhere; the denominator of those positives is the cumulative
            sum up to there.
        work_dtype: working precision of the loss after the label structure.
    """

    k: int
    u: int
    perm: Tensor | None
    order_desc: Tensor
    pos: Tensor
    weight_desc: Tensor
    work_dtype: torch.dtype

    @classmethod
    def from_distances(
        cls, d: Tensor, groups: Tensor | None = None, work_dtype: torch.dtype = _WORK_DTYPE
    ) -> RankStructure:
        """The structure of an ``(M, M)`` label-distance matrix (``groups`` as in :func:`rank_loss`).

        Raises:
            ValueError: If ``d`` contains NaN.
        """
        self = cls.__new__(cls)
        ids = _duplicate_groups(d) if groups is None else groups.to(device=d.device, dtype=torch.int64)
        self.k, self.perm = _slot_layout(ids)
        u = d.shape[0] // self.k
        du = d if self.perm is None else d.index_select(0, self.perm[:u]).index_select(1, self.perm[:u])
        # With k = 1 all of d is checked; with k > 1 from detected groups d has no NaN (NaN != NaN
        # fails the verification); given groups are trusted.
        if du.dtype.is_floating_point and bool(torch.isnan(du).any()):
            raise ValueError("label_dist contains NaN")
        self._build(du, work_dtype)
        return self

    @classmethod
    def from_labels(
        cls, labels: Tensor, angle_column: int | None = 2, work_dtype: torch.dtype = _WORK_DTYPE
    ) -> RankStructure:
        """The structure of ``label_distance(labels)`` computed on one representative per sub-group.

        Equal label rows have equal distance rows, so only the ``U x U`` distances between
        sub-group representatives are needed (``k^2`` times less work than ``M x M``). The
        labels are trusted to be NaN-free (:class:`RankLoss` checks them).
        """
        self = cls.__new__(cls)
        self.k, self.perm = _slot_layout(_label_groups(labels))
        u = labels.shape[0] // self.k
        self._from_representatives(
            labels if self.perm is None else labels.index_select(0, self.perm[:u]), angle_column, work_dtype
        )
        return self

    @classmethod
    def from_pairs(
        cls, ref_labels: Tensor, angle_column: int | None = 2, work_dtype: torch.dtype = _WORK_DTYPE
    ) -> RankStructure:
        """The structure of an NER batch ``[references; positives]`` from the references' labels.

        Positives carry their reference's label, so samples ``c`` and ``B + c`` form sub-group
        ``c`` (``k = 2``, batch order kept) without searching for identical labels; a bin drawn
        twice gives two sub-groups with equal labels, which simply tie. The loss equals the one
        from :meth:`from_labels` of ``ref_labels.repeat(2, 1)`` (up to float summation order).
        No host synchronisation on a GPU. The labels are trusted to be finite.
        """
        self = cls.__new__(cls)
        self.k, self.perm = 2, None
        self._from_representatives(ref_labels, angle_column, work_dtype)
        return self

    def _from_representatives(self, rep: Tensor, angle_column: int | None, work_dtype: torch.dtype) -> None:
        """Sorted label distances and tie weights of one representative label row per sub-group."""
        self.work_dtype = work_dtype
        u = self.u = rep.shape[0]
        on_keys = rep.device.type == "cpu" and rep.dtype == torch.float64
        if on_keys:
            angle = _angle_index(angle_column, rep.shape[1])
            found = _structure_by_keys(u, self.k, _label_rows(rep.numpy(), angle), zero_diagonal=True, dtype=work_dtype)
            if found is not None:
                self._keep(*found)
                return
        # A false tie of the sort keys (on_keys) would only recur on the same distances: sort exactly.
        self._build(label_distance(rep, angle_column=angle_column), work_dtype, keys=not on_keys)

    def _keep(self, order_desc: np.ndarray, pos: np.ndarray, weight: np.ndarray) -> None:
        self.order_desc, self.pos = torch.from_numpy(order_desc), torch.from_numpy(pos)
        self.weight_desc = torch.from_numpy(weight).to(self.work_dtype)

    def _build(self, du: Tensor, work_dtype: torch.dtype, *, keys: bool = True) -> None:
        """Sort the ``(U, U)`` sub-group distances and derive the tie-group weights."""
        self.u = u = du.shape[0]
        self.work_dtype = work_dtype
        if keys and du.device.type == "cpu" and du.dtype in (torch.float32, torch.float64):
            d = du.numpy().astype(np.float64)
            found = _structure_by_keys(u, self.k, lambda r0, r1: d[r0:r1], zero_diagonal=False, dtype=work_dtype)
            if found is not None:
                self._keep(*found)
                return
        self._build_sorted(du)

    def _build_sorted(self, du: Tensor) -> None:
        """The same structure from ``torch.sort`` and exact comparisons (any device or dtype)."""
        dev, u = du.device, self.u
        d_sorted, order = torch.sort(du, dim=1)
        start = torch.ones(u, u, dtype=torch.bool, device=dev)
        torch.ne(d_sorted[:, 1:], d_sorted[:, :-1], out=start[:, 1:])
        ar = torch.arange(u, device=dev)
        first = (start * ar).cummax(dim=1).values  # first ascending position of each tie group
        weight = torch.zeros(u, u, dtype=torch.int64, device=dev)
        weight.scatter_add_(1, first, torch.full_like(first, self.k))
        pos = torch.empty_like(order).scatter_(1, order, ar.expand(u, u))
        weight[ar, first[ar, pos[ar, ar]]] -= 1  # the anchor is no positive of itself
        self.order_desc = order.flip(1)
        self.pos = pos
        self.weight_desc = weight.flip(1).to(self.work_dtype)

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> RankStructure:
        """This structure on ``device`` (itself if already there)."""
        device = torch.device(device)
        if self.order_desc.device == device:
            return self
        out = RankStructure.__new__(RankStructure)
        out.k, out.u, out.work_dtype = self.k, self.u, self.work_dtype
        out.perm = None if self.perm is None else self.perm.to(device, non_blocking=non_blocking)
        out.order_desc, out.pos, out.weight_desc = (
            t.to(device, non_blocking=non_blocking) for t in (self.order_desc, self.pos, self.weight_desc)
        )
        return out

    def per_anchor(self, x: Tensor) -> Tensor:
        """``(U, U)`` structure tensor broadcast to the ``(k, U, U)`` per-anchor layout (a view)."""
        return x.expand(self.k, self.u, self.u)


# Floor for the suffix sums: below every non-zero value the fast path can produce (exp(-600) per
# term), so it only turns the empty suffix (a zero-weight position) into a harmless log/division.
_SUM_FLOOR = 1e-300


class _RankLossFunction(torch.autograd.Function):
    """Autograd function of :func:`rank_loss` (forward and hand-written backward)."""

    @staticmethod
    def forward(
        ctx: Any,
        z: Tensor,
        d: Tensor | None,
        tau: float,
        groups: Tensor | None,
        structure: RankStructure | None = None,
    ) -> Tensor:
        """Loss value; saves the distances, ``exp(s)`` (or ``s``) and the denominators."""
        m = z.shape[0]
        st = structure if structure is not None else RankStructure.from_distances(d.detach(), groups)
        k, u = st.k, st.u
        wd = st.work_dtype
        zw = z.detach().to(wd)
        if st.perm is not None:
            zw = zw.index_select(0, st.perm)
        dist = _pairwise_distances(zw)
        fast = _exp_space_holds(zw, dist, tau, EXP_RANGE_LIMIT if wd == torch.float64 else EXP_RANGE_LIMIT_FLOAT32)
        order = st.per_anchor(st.order_desc)
        if fast:
            e = dist.mul(-1.0 / tau).exp_()  # exp(s_ij), in [exp(-limit), 1]
            e.fill_diagonal_(0.0)  # k = i is never in a denominator
            merged = _sum_slots(e, k, u)  # sum over identical columns
            floor = _SUM_FLOOR if wd == torch.float64 else torch.finfo(wd).tiny
            den = merged.view(k, u, u).gather(2, order).cumsum_(2).clamp_min_(floor)
            log_den = den.log()
            saved: tuple[Tensor, ...] = (e, den)
        else:
            s = dist.mul(-1.0 / tau)
            s.fill_diagonal_(-math.inf)
            merged = torch.logsumexp(s.view(m, k, u), dim=1) if k > 1 else s
            log_den = torch.logcumsumexp(merged.view(k, u, u).gather(2, order), dim=2)
            log_den = torch.where(st.weight_desc > 0, log_den, 0.0)
            saved = (s, log_den)
        # sum_i sum_{j != i} (log den_ij - s_ij), and s_ij = -dist_ij / tau (zero diagonal).
        total = (log_den.view(k, u * u) @ st.weight_desc.view(-1)).sum() + dist.sum() / tau
        ctx.st, ctx.fast, ctx.tau, ctx.z_dtype = st, fast, tau, z.dtype
        ctx.save_for_backward(zw, dist, *saved)
        return (total / (m * (m - 1))).to(z.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        """Gradient with respect to the embeddings only."""
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        zw, dist, a, b = ctx.saved_tensors
        st, tau = ctx.st, ctx.tau
        k, u, m = st.k, st.u, zw.shape[0]
        pos = st.per_anchor(st.pos)
        # dL/ds_ij * M(M-1) = prob_ij - 1 for j != i, where prob_ij = exp(s_ij) * sum of 1/den over
        # the denominators that contain j: those starting at or before j's ascending position,
        # i.e. a prefix sum over ascending positions of weight / den, read at each column's position.
        if ctx.fast:
            e, den = a, b
            q = (st.weight_desc / den).flip(2).cumsum_(2).gather(2, pos)
            # Column s * U + c gets the q of sub-group c; e_ii = 0. g = e q - 1.
            g = torch.addcmul(_MINUS_ONE.to(e.dtype), e.view(m, k, u), q.view(m, 1, u)).view(m, m)
        else:
            s, log_den = a, b
            w = st.weight_desc
            log_r = torch.where(w > 0, torch.log(w) - log_den, -math.inf)
            log_q = torch.logcumsumexp(log_r.flip(2), dim=2).gather(2, pos)
            g = torch.add(s.view(m, k, u), log_q.view(m, 1, u)).exp_().view(m, m)  # s_ii = -inf
            g.sub_(1.0)
        # Chain through s_ij = -dist_ij / tau with d dist_ij / d z_i = (z_i - z_j) / dist_ij,
        # taken as 0 where dist_ij = 0 (diagonal, coincident points): the +-inf or NaN of the
        # division by zero is replaced by 0.
        g.div_(dist)
        torch.nan_to_num_(g, nan=0.0, posinf=0.0, neginf=0.0)
        # grad_i = -(1/tau) sum_j (g_ij + g_ji) (z_i - z_j); [z, 1] gives the sums in the products.
        z1 = torch.cat([zw, torch.ones(m, 1, dtype=zw.dtype, device=zw.device)], dim=1)
        both = g @ z1 + (z1.T @ g).T  # (M, d + 1): sum_j (g_ij + g_ji) [z_j, 1]
        scale = grad_out.to(zw.dtype) * (-1.0 / (tau * m * (m - 1)))
        grad = (both[:, -1:] * zw - both[:, :-1]) * scale
        if st.perm is not None:
            grad = torch.empty_like(grad).index_copy_(0, st.perm, grad)
        return grad.to(ctx.z_dtype), None, None, None, None


_MINUS_ONE = torch.tensor(-1.0)


def _sum_slots(e: Tensor, k: int, u: int) -> Tensor:
    """``(M, U)`` sums of the ``k`` identical columns of every sub-group (``(M, M)`` for ``k = 1``).

    Added slot by slot: about 2x faster than ``e.view(M, k, U).sum(1)`` on a CPU.
    """
    if k == 1:
        return e
    slots = e.view(e.shape[0], k, u).unbind(1)
    out = torch.add(slots[0], slots[1])
    for extra in slots[2:]:
        out += extra
    return out


def _pairwise_distances(z: Tensor) -> Tensor:
    """``(M, M)`` Euclidean distances from coordinate differences (exact zeros, no cancellation).

    Unlike the ``|a|^2 + |b|^2 - 2ab`` shortcut, coincident points get exactly 0 and nearby points
    keep their relative precision. For the few dimensions of an embedding one pass per coordinate
    is about 2x faster than ``torch.cdist(compute_mode="donot_use_mm_for_euclid_dist")``.
    """
    if z.shape[1] > 8:
        return torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist")
    zt = z.T.contiguous()
    out = (zt[0, :, None] - zt[0, None, :]).square_()
    diff = torch.empty_like(out)
    for c in range(1, zt.shape[0]):
        torch.sub(zt[c, :, None], zt[c, None, :], out=diff)
        out.addcmul_(diff, diff)
    return out.sqrt_()


def _exp_space_holds(z: Tensor, dist: Tensor, tau: float, limit: float) -> bool:
    """Whether every ``||z_i - z_j|| / tau`` is at most ``limit`` (the fast path of :func:`rank_loss`).

    Decided on the CPU only: first from the norms (``||z_i - z_j|| <= 2 max ||z_i||``, enough
    for every normalised embedding), then from the distances themselves. Other devices always
    take the log-space path, which needs no host synchronisation and costs little there.
    """
    if z.device.type != "cpu":
        return False
    bound = 2.0 * float(z.norm(dim=1).max()) / tau
    if bound <= limit:
        return True
    dist_max = float(dist.max())
    return math.isfinite(dist_max) and dist_max / tau <= limit


# --------------------------------------------------------------------------------------------
# InfoNCE (CEBRA baseline)
# --------------------------------------------------------------------------------------------


def infonce(embeddings_ref: Tensor, embeddings_pos: Tensor, embeddings_neg: Tensor, temperature: float = 1.0) -> Tensor:
    """CEBRA-style InfoNCE with the negative Euclidean similarity of :func:`rank_loss`.

    With ``s(a, b) = -||a - b||_2 / tau``, reference ``r_i``, its positive ``p_i`` and the
    negatives ``n_1 .. n_K`` (shared by all references)::

        L = mean_i [ -s(r_i, p_i) + log sum_k exp(s(r_i, n_k)) ]

    As in CEBRA the denominator holds the negatives only (not the positive). Stable for any
    ``tau`` (``torch.logsumexp`` shifts by the row maximum); distances use
    ``sqrt(clamp(squared distance, min=eps))``, so coincident points give a zero gradient, not NaN.

    Args:
        embeddings_ref: ``(B, d)`` reference embeddings.
        embeddings_pos: ``(B, d)`` positive embeddings (row ``i`` pairs with reference ``i``).
        embeddings_neg: ``(K, d)`` negative embeddings, ``K >= 1``.
        temperature: ``tau > 0``.

    Returns:
        Scalar loss tensor.

    Raises:
        ValueError: On mismatched shapes or a temperature that is not a finite positive number.
    """
    r, p, n = embeddings_ref, embeddings_pos, embeddings_neg
    shapes_ok = r.dim() == 2 and p.shape == r.shape and n.dim() == 2 and n.shape[1] == r.shape[1]
    if not shapes_ok or n.shape[0] < 1 or r.shape[0] < 1:
        raise ValueError(
            f"expected ref and pos of shape (B, d) and neg of shape (K, d), got {tuple(r.shape)}, "
            f"{tuple(p.shape)}, {tuple(n.shape)}"
        )
    if isinstance(temperature, bool) or not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    pos_dist = _safe_sqrt(((r - p) ** 2).sum(1))
    neg_sq = (r * r).sum(1, keepdim=True) + (n * n).sum(1)[None, :] - 2.0 * (r @ n.T)
    neg_sim = _safe_sqrt(neg_sq) * (-1.0 / temperature)
    return (pos_dist / temperature).mean() + torch.logsumexp(neg_sim, dim=1).mean()


def _safe_sqrt(sq: Tensor) -> Tensor:
    return torch.sqrt(torch.clamp(sq, min=_INFONCE_EPS))


# --------------------------------------------------------------------------------------------
# module wrapper
# --------------------------------------------------------------------------------------------


class RankLoss(nn.Module):
    """``nn.Module`` wrapper: :func:`label_distance` of the labels, then :func:`rank_loss`.

    Args:
        temperature: ``tau > 0`` (NER uses 1).
        angle_column: Circular (degree) label column, or ``None`` for plain L1 (e.g. MC_Maze
            labels whose angle column is constant zero give the same result either way).
        precision: working precision after the label structure: ``"float64"`` (default here, the
            reference path) or ``"float32"`` (NER's default: faster on a CPU, its fast path holds up
            to :data:`EXP_RANGE_LIMIT_FLOAT32`; loss differences against float64 of the order of
            float32 rounding, measured in ``benchmarks/bench_rank_loss.py``; the same held-out scores
            after 20 000 iterations on the real sessions, see the README). The label structure
            itself (distances, order, ties) is always exact: computed from float64 labels.

    Example:
        >>> loss_fn = RankLoss()
        >>> z = torch.nn.functional.normalize(torch.randn(8, 3), dim=1)
        >>> y = torch.tensor([[0.0, 1.0, 45.0]] * 8)
        >>> loss = loss_fn(z, y)
    """

    def __init__(self, temperature: float = 1.0, angle_column: int | None = 2, precision: str = "float64") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not (math.isfinite(temperature) and temperature > 0)
        ):
            raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.angle_column = angle_column

    def structure(self, labels: Tensor) -> RankStructure:
        """The label structure of a batch (what :meth:`forward` computes from ``labels``).

        Equal label rows give bitwise-equal rows and columns of the label distances, so samples
        are grouped by identical labels and the distances are computed between one representative
        per group only (in an NER batch, 512 x 512 instead of 1024 x 1024). A training loop can
        build it ahead while the previous step runs, and pass it as ``structure=``.

        Raises:
            ValueError: labels that are not ``(M, C)`` or not finite.
        """
        return RankStructure.from_labels(self._checked(labels), self.angle_column, PRECISIONS[self.precision])

    def pair_structure(self, ref_labels: Tensor, *, check: bool = True) -> RankStructure:
        """The label structure of an NER batch ``[references; positives]`` (:meth:`RankStructure.from_pairs`).

        Args:
            ref_labels: ``(B, C)`` labels of the ``B`` references; the positives carry the same.
            check: refuse non-finite labels (a host synchronisation on a GPU; the training loop
                passes ``False``: its sampler has checked every training label once).
        """
        if check:
            ref_labels = self._checked(ref_labels)
        return RankStructure.from_pairs(ref_labels, self.angle_column, PRECISIONS[self.precision])

    @staticmethod
    def _checked(labels: Tensor) -> Tensor:
        labels = _as_label_matrix(labels, "labels")
        if labels.dtype.is_floating_point and not bool(torch.isfinite(labels).all()):
            raise ValueError("labels contain NaN or infinite values")
        return labels

    def forward(
        self, embeddings: Tensor, labels: Tensor | None = None, *, structure: RankStructure | None = None
    ) -> Tensor:
        """Rank loss of ``(M, d)`` embeddings with ``(M, C)`` labels (one row per embedding).

        Args:
            embeddings: ``(M, d)`` embeddings.
            labels: ``(M, C)`` labels on the embeddings' device, or ``None`` when ``structure`` is
                given.
            structure: :meth:`structure` of the labels, already on the embeddings' device (it
                must have been built with this module's angle column and precision).

        Returns:
            Scalar loss, differentiable with respect to ``embeddings``.
        """
        _check_embeddings(embeddings, self.temperature)
        if (labels is None) == (structure is None):
            raise ValueError("give either labels or structure")
        if structure is None:
            labels = _as_label_matrix(labels, "labels")
            if labels.shape[0] != embeddings.shape[0] or labels.device != embeddings.device:
                raise ValueError(
                    f"labels must be (M, C) on the embeddings' device; got {tuple(labels.shape)} on "
                    f"{labels.device} for embeddings {tuple(embeddings.shape)} on {embeddings.device}"
                )
            structure = self.structure(labels)
        elif structure.k * structure.u != embeddings.shape[0] or structure.order_desc.device != embeddings.device:
            raise ValueError(
                f"the structure is of {structure.k * structure.u} samples on {structure.order_desc.device}, "
                f"the embeddings {tuple(embeddings.shape)} on {embeddings.device}"
            )
        return _RankLossFunction.apply(embeddings, None, self.temperature, None, structure)

    def extra_repr(self) -> str:
        """Shown by ``repr(module)``."""
        return f"temperature={self.temperature}, angle_column={self.angle_column}, precision={self.precision}"

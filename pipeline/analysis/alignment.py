"""Orthogonal Procrustes alignment of one cell's latent space onto another's (NER_METHOD.md §5.3).

Cross-session decoding in the paper is not zero-shot: the decoder cell's embedding is rotated onto
the test cell's by an orthogonal map fitted on **direction-conditioned trial averages**. Three
variants, each labelled in every output row:

``paper``
    The authors' protocol. For each of the 8 directions, ``R_a`` = the orthogonal Procrustes map
    of the source's trial-averaged trajectory onto the target's (``scipy.linalg.orthogonal_procrustes``;
    reflections allowed), averages over **all** trials (train and test) of both cells. Then one
    ``R_a`` is picked: split the eight by the sign of their determinant; in each sign group take the
    one whose ``|det|`` is closest to 1; keep the group winner whose ``A·R`` is closer in L1 to the
    "per-direction aligned" source (each trial of direction ``a`` multiplied by its own ``R_a``).

    **Tie-break.** Every ``R_a`` is orthogonal, so ``|det R_a| − 1`` differs between them only by
    rounding noise (~1e-16): the authors' pick inside a sign group depends on the machine and the
    LAPACK build, not on the data. Here values of ``|det|`` within :data:`DET_TIE_TOL` of each other
    are ties, and a tie goes to the **highest direction index** of the sign group. The rule itself is
    indifferent, so we measured both ends on the authors' Chewie M1 embeddings (off-diagonal means,
    ours − stored, velocity / position): highest index NER +0.003 / −0.000, CEBRA-3D −0.003 / +0.002;
    lowest index NER +0.010 / +0.005, CEBRA-3D +0.021 / +0.003 (tests/realdata/test_paper_results.py), and
    kept the closer one. ``force_direction`` lets a caller impose ``R_a``
    of a given direction instead (e.g. the one the authors' machine picked).

``joint``
    One rotation fitted once on the averages of all directions stacked (``8·bins × dim``), on all
    trials of both cells: the principled least-squares version of the same idea.

``leak_free``
    ``joint`` fitted only on the **training** trials of both cells. The test cell's test trials are
    the scored trials; this variant never sees their labels (the function receives copies of the
    cells with those trials removed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import orthogonal_procrustes

from pipeline.errors import InputError

__all__ = [
    "ALIGNMENTS",
    "DET_TIE_TOL",
    "N_DIRECTIONS",
    "Alignment",
    "align",
    "direction_averages",
    "joint_rotation",
    "paper_pick",
    "per_direction_rotations",
]

#: alignment variants, in the order they are reported
ALIGNMENTS = ("paper", "joint", "leak_free")
#: number of center-out target directions (classes 0..7 = 0°, 45°, ..., 315°)
N_DIRECTIONS = 8
#: |det| values closer than this are a tie in the paper's pick (they differ by rounding only)
DET_TIE_TOL = 1e-9


@dataclass(frozen=True)
class Alignment:
    """A fitted alignment of a source cell onto a target cell.

    Attributes:
        variant: ``paper``, ``joint`` or ``leak_free`` (``none`` for the identity).
        rotation: ``(dim, dim)`` orthogonal matrix; the aligned source is ``latent @ rotation``.
        direction: index of the direction whose ``R_a`` was picked (``paper``), else -1.
        forced: whether ``direction`` was imposed by the caller.
    """

    variant: str
    rotation: np.ndarray
    direction: int = -1
    forced: bool = False

    @classmethod
    def identity(cls, dim: int) -> Alignment:
        return cls("none", np.eye(dim))


def direction_averages(latent: np.ndarray, classes: np.ndarray, n_directions: int = N_DIRECTIONS) -> np.ndarray:
    """``(n_directions, bin, dim)`` trial averages per direction class; NaN where a class has no trial.

    Args:
        latent: ``(trial, bin, dim)`` embeddings.
        classes: ``(trial,)`` integer direction classes ``0..n_directions-1``.
    """
    latent = np.asarray(latent, dtype=np.float64)
    out = np.full((n_directions,) + latent.shape[1:], np.nan)
    for a in range(n_directions):
        members = classes == a
        if members.any():
            out[a] = latent[members].mean(axis=0)
    return out


def per_direction_rotations(source_avg: np.ndarray, target_avg: np.ndarray) -> np.ndarray:
    """``(n_directions, dim, dim)`` maps ``R_a = argmin ‖Ā_a R − B̄_a‖_F`` (orthogonal); NaN for a
    direction missing in either cell."""
    n, _, dim = source_avg.shape
    rotations = np.full((n, dim, dim), np.nan)
    for a in range(n):
        if np.isfinite(source_avg[a]).all() and np.isfinite(target_avg[a]).all():
            rotations[a] = orthogonal_procrustes(source_avg[a], target_avg[a])[0]
    return rotations


def joint_rotation(source_avg: np.ndarray, target_avg: np.ndarray) -> np.ndarray:
    """One orthogonal map fitted on the averages of every direction present in both cells, stacked."""
    present = np.isfinite(source_avg).all(axis=(1, 2)) & np.isfinite(target_avg).all(axis=(1, 2))
    if not present.any():
        raise InputError(None, "direction", "no direction has trials in both cells; cannot align")
    dim = source_avg.shape[-1]
    return orthogonal_procrustes(source_avg[present].reshape(-1, dim), target_avg[present].reshape(-1, dim))[0]


def paper_pick(rotations: np.ndarray, latent: np.ndarray, classes: np.ndarray) -> int:
    """Index of the rotation the authors' rule keeps (see the module docstring for the tie-break).

    Args:
        rotations: ``(n_directions, dim, dim)`` per-direction maps (NaN for missing directions).
        latent: ``(trial, bin, dim)`` source embeddings (all trials).
        classes: ``(trial,)`` direction classes of the source trials.
    """
    valid = [a for a in range(len(rotations)) if np.isfinite(rotations[a]).all()]
    if not valid:
        raise InputError(None, "direction", "no direction has trials in both cells; cannot align")
    latent = np.asarray(latent, dtype=np.float64)
    aligned = np.empty_like(latent)  # each source trial moved by its own direction's rotation
    usable = np.zeros(len(latent), dtype=bool)
    for a in valid:
        members = classes == a
        aligned[members] = latent[members] @ rotations[a]
        usable |= members
    det = {a: np.linalg.det(rotations[a]) for a in valid}
    winners = []
    for sign in (1.0, -1.0):
        gap = {a: abs(abs(d) - 1.0) for a, d in det.items() if np.sign(d) == sign}
        if gap:
            best_gap = min(gap.values())
            winners.append(max(a for a, g in gap.items() if g - best_gap <= DET_TIE_TOL))

    def l1(a: int) -> float:  # distance of the whole source moved by R_a to the per-direction aligned one
        return float(np.abs(latent[usable] @ rotations[a] - aligned[usable]).sum())

    return min(winners, key=lambda a: (l1(a), a))


def align(
    source_latent: np.ndarray,
    source_classes: np.ndarray,
    target_latent: np.ndarray,
    target_classes: np.ndarray,
    variant: str,
    *,
    force_direction: int | None = None,
) -> Alignment:
    """Fit the ``variant`` alignment of a source cell onto a target cell.

    The caller passes exactly the trials the variant may see: all trials for ``paper`` and
    ``joint``, training trials only for ``leak_free`` (see :func:`pipeline.analysis.decoding.Cell.training_trials`).

    Args:
        source_latent, target_latent: ``(trial, bin, dim)`` embeddings (same bins and dim).
        source_classes, target_classes: ``(trial,)`` direction classes (negative = unknown, ignored).
        variant: one of :data:`ALIGNMENTS`.
        force_direction: ``paper`` only: use ``R_a`` of this direction instead of the rule's pick.

    Raises:
        InputError: unknown variant, mismatched shapes, or no direction shared by both cells.
    """
    if variant not in ALIGNMENTS:
        raise InputError(None, "alignment", f"unknown variant {variant!r}; choose from {list(ALIGNMENTS)}")
    if source_latent.shape[1:] != target_latent.shape[1:]:
        raise InputError(
            None, "latent", f"cells differ in (bin, dim): {source_latent.shape[1:]} vs {target_latent.shape[1:]}"
        )
    source_avg = direction_averages(source_latent, source_classes)
    target_avg = direction_averages(target_latent, target_classes)
    if variant != "paper":
        return Alignment(variant, joint_rotation(source_avg, target_avg))
    rotations = per_direction_rotations(source_avg, target_avg)
    if force_direction is not None:
        if not np.isfinite(rotations[force_direction]).all():
            raise InputError(None, "force_direction", f"direction {force_direction} has no trials in both cells")
        return Alignment(variant, rotations[force_direction], int(force_direction), forced=True)
    pick = paper_pick(rotations, source_latent, source_classes)
    return Alignment(variant, rotations[pick], int(pick))

"""Cross-session alignment without the new session's labels (issue 20).

The paper's protocol (:mod:`pipeline.analysis.alignment`) fits the rotation of a decoder cell A onto a
new session B on B's **direction-conditioned** trial averages: it needs B's labels, which a BCI user
does not have on a new day. The variants here need less of B:

``label_free``
    Reads B's embedding ``(trial, bin, dim)`` only (all its trials; the bin axis is the trial timing,
    bins since the go cue); never B's velocity, position or direction. The function's signature takes
    no labels of B, so none can reach it. A's labels are known (A is the decoder's session). Methods:

    ``clusters`` (kept, the default)
        k-means (k = the number of directions, 8; seeded) of B's trials on their **time-averaged
        latent** (one ``dim`` point per trial: insensitive to reaction-time jitter, which made k-means
        on whole trajectories split two NER sessions wrongly), then the cluster-mean trajectories
        ``(k, bin, dim)`` are matched to A's direction averages: for **every** assignment of clusters
        to directions (8! = 40 320) the orthogonal Procrustes fit (O(3): rotations and reflections)
        is solved in closed form (``cost = ‖Ā‖² + ‖C‖² − 2·‖Σ_i Ā_iᵀ C_p(i)‖_*``, one batched 3×3 SVD)
        and the lowest cost wins: the exact global optimum of the ICP problem (:func:`icp` reaches it
        from 48 signed permutations plus seeded random starts, and is the solver for k > 8).
    ``mean``
        Procrustes of the direction-pooled mean trajectory ``(bin, dim)`` of A onto B's.
    ``moments``
        ``mean`` plus the per-bin covariances, ``Σ_t ‖μᴬ_t R − μᴮ_t‖² + ‖Rᵀ Σᴬ_t R − Σᴮ_t‖²_F``
        minimised over O(3) from the 48 signed permutations and seeded random starts.
    ``transport``
        Optimal transport of the time-resolved point clouds: single trials of A and of B (equal
        seeded subsamples) matched one-to-one on whole trajectories (Hungarian), Procrustes refit,
        alternated from the same starts as ``moments``; lowest transport cost kept.

    **Ring symmetry.** The 8 directions lie on a ring; a cyclic shift or a mirror image of the
    assignment fits almost as well, and nothing in B's latent alone says which one is right. On the
    authors' embeddings the single-reference match is right within a hemisphere (same arm) for most
    pairs and picks a **mirror image** of the ring for most cross-hemisphere pairs (the 2015 and 2016
    Chewie sessions): the direction-specific shapes that break the symmetry are themselves mirrored.

    **References (consensus).** ``references`` are other *labelled* sessions (a user's earlier days,
    never B). Each session r (the source included) gives, for every assignment p, a Procrustes cost
    ``c_r(p)``; the consensus assignment minimises ``Σ_r c_r(p) / min_p c_r(p)²`` (each reference's
    cost relative to its best fit, weighted by how well that reference fits B at all: the closest
    sessions decide). A's rotation is then the Procrustes fit of A's averages onto B's clusters under
    that assignment. This is what reaches the paper's cross-session scores on NER (bench_labelfree).

``few_shot_k``
    k labelled trials per direction of B (a calibration block: :func:`calibration_trials` takes the
    first k *training* trials of each direction in trial order). Procrustes of A's direction averages
    onto B's k-trial averages, stacked (as ``joint``). The function receives the labelled trials'
    indices and labels only; ``guided=True`` also uses B's unlabelled trials: the exhaustive cluster
    match with the k-trial averages as eight extra correspondences (``few_shot_k_guided``).

``none``
    The identity (:meth:`pipeline.analysis.alignment.Alignment.identity`): the floor.

**Measured** (benchmarks/bench_labelfree.py, the authors' Chewie M1 embeddings, every ordered pair,
linear decoder, mean off-diagonal held-out velocity R², paper protocol = 1): NER (7 sessions)
``label_free`` 0.124 (0.585 within a hemisphere, −0.222 across; right rotation for 26/42 pairs),
``label_free`` with the other sessions as references 0.743, ``few_shot_1`` 0.739, ``leak_free``
0.743, ``paper`` 0.722; ``mean`` −0.374, ``moments`` −0.132, ``transport`` −0.294. CEBRA-3D
(10 sessions): ``label_free`` −0.064, with references 0.091, ``few_shot_1`` 0.180, ``paper`` 0.171.

Every function returns an :class:`pipeline.analysis.alignment.Alignment`; the aligned source is
``source_latent @ rotation`` (so ``decoding.score(decoder, B, B.test, rotation=R)`` scores it).
Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.optimize import linear_sum_assignment, minimize
from scipy.spatial.transform import Rotation
from scipy.stats import ortho_group
from sklearn.cluster import KMeans

from pipeline.analysis.alignment import N_DIRECTIONS, Alignment, direction_averages
from pipeline.errors import InputError

__all__ = [
    "DEFAULT_METHOD",
    "LABEL_FREE_METHODS",
    "Hypothesis",
    "assignment_costs",
    "calibration_trials",
    "few_shot",
    "hypotheses",
    "icp",
    "label_free",
    "none",
    "signed_permutations",
    "trajectory_clusters",
]

#: label-free candidates, the kept one first
LABEL_FREE_METHODS = ("clusters", "mean", "moments", "transport")
DEFAULT_METHOD = "clusters"
#: largest number of clusters whose assignments are enumerated (8! = 40 320); above it, ICP
EXHAUSTIVE_MAX = 8


@dataclass(frozen=True)
class Hypothesis:
    """One match of the source's direction averages to the target's clusters.

    Attributes:
        rotation: ``(dim, dim)`` orthogonal map; the aligned source is ``latent @ rotation``.
        assignment: ``(k,)`` ``assignment[a]`` = the target cluster matched to source direction ``a``.
        cost: ``Σ_a ‖Ā_a R − C_assignment[a]‖²_F``.
    """

    rotation: np.ndarray
    assignment: np.ndarray
    cost: float


# ----------------------------------------------------------------------------------------------- checks


def _latent(latent, name: str) -> np.ndarray:
    latent = np.asarray(latent, dtype=np.float64)
    if latent.ndim != 3 or 0 in latent.shape:
        raise InputError(None, name, f"expected a non-empty (trial, bin, dim) array, got shape {latent.shape}")
    if not np.isfinite(latent).all():
        raise InputError(None, name, "holds NaN or infinite values")
    return latent


def _source(latent, classes, n_directions: int, name: str = "source") -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(latent, direction averages)`` of a labelled session that must hold every direction."""
    latent = _latent(latent, f"{name}_latent")
    classes = np.asarray(classes)
    if classes.shape != latent.shape[:1] or not np.issubdtype(classes.dtype, np.integer):
        raise InputError(None, f"{name}_classes", f"expected {latent.shape[0]} integer classes, got {classes.shape}")
    missing = sorted(set(range(n_directions)) - set(classes.tolist()))
    if missing:
        raise InputError(None, f"{name}_classes", f"directions {missing} have no trial; every direction is needed")
    return latent, direction_averages(latent, classes, n_directions)


def _same_shape(source: np.ndarray, target: np.ndarray, name: str = "target_latent") -> None:
    if source.shape[1:] != target.shape[1:]:
        raise InputError(None, name, f"(bin, dim) {target.shape[1:]} differs from the source's {source.shape[1:]}")


# ------------------------------------------------------------------------------------------- building blocks


def signed_permutations(dim: int = 3) -> np.ndarray:
    """The ``2^dim · dim!`` signed permutation matrices (48 in 3-D): a grid of O(dim) covering both signs
    of the determinant, used as ICP starts."""
    out = []
    for perm in itertools.permutations(range(dim)):
        for signs in itertools.product((1.0, -1.0), repeat=dim):
            m = np.zeros((dim, dim))
            m[np.arange(dim), perm] = signs
            out.append(m)
    return np.array(out)


def _starts(dim: int, n_random: int, seed: int) -> np.ndarray:
    """Signed permutations plus ``n_random`` seeded random orthogonal matrices."""
    rand = ortho_group.rvs(dim, size=n_random, random_state=seed).reshape(n_random, dim, dim) if n_random else []
    return np.concatenate([signed_permutations(dim), np.asarray(rand).reshape(-1, dim, dim)])


def trajectory_clusters(latent: np.ndarray, n_clusters: int = N_DIRECTIONS, *, seed: int = 0) -> tuple:
    """k-means of single trials on their time-averaged latent, and the cluster-mean trajectories.

    Args:
        latent: ``(trial, bin, dim)`` embeddings of one session (no labels).
        n_clusters: number of clusters (the number of directions to match).
        seed: k-means seed (``n_init=10``).

    Returns:
        ``(labels (trial,), means (n_clusters, bin, dim))``.

    Raises:
        InputError: fewer distinct trials than clusters.
    """
    latent = _latent(latent, "target_latent")
    features = latent.mean(axis=1)
    if len(np.unique(features, axis=0)) < n_clusters:
        raise InputError(
            None,
            "target_latent",
            f"{len(latent)} trials ({len(np.unique(features, axis=0))} distinct) are too few for {n_clusters} clusters",
        )
    labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(features)
    return labels, np.stack([latent[labels == c].mean(axis=0) for c in range(n_clusters)])


@lru_cache(maxsize=4)
def _permutations(k: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(k))), dtype=np.int64)


def assignment_costs(
    source_avg: np.ndarray, target_means: np.ndarray, extra: np.ndarray | None = None, *, rotations: bool = True
) -> tuple:
    """Procrustes cost and map of **every** assignment of target clusters to source directions.

    For assignment ``p`` (``p[a]`` = cluster of direction ``a``), ``R_p = argmin ‖Ā R − C_p‖`` over
    O(dim) and its cost follow from the SVD of ``M_p = Σ_a Ā_aᵀ C_p(a)`` (``R = U Vᵀ``; cost
    ``‖Ā‖² + ‖C‖² − 2·Σσ``).

    Args:
        source_avg: ``(k, bin, dim)`` source direction averages.
        target_means: ``(k, bin, dim)`` target cluster means.
        extra: optional ``(k, bin, dim)`` target trajectories already labelled by direction (e.g.
            few-shot averages): fixed correspondences ``Ā_a → extra_a`` added to every assignment.
        rotations: False: only the costs (singular values without vectors, ~2.5× cheaper on 16-D);
            the rotations come back as None.

    Returns:
        ``(costs (k!,), rotations (k!, dim, dim) or None, permutations (k!, k))``, permutations in
        lexicographic order.
    """
    k, _, dim = source_avg.shape
    if k > EXHAUSTIVE_MAX:
        raise InputError(None, "n_clusters", f"{k}! assignments are too many to enumerate; use icp()")
    perms = _permutations(k)
    gram = np.einsum("atd,cte->acde", source_avg, target_means)  # (k, k, dim, dim): Ā_aᵀ C_c
    m = gram[np.arange(k)[None, :], perms].sum(axis=1)  # (k!, dim, dim)
    const = np.sum(source_avg**2) + np.sum(target_means**2)
    if extra is not None:
        present = np.isfinite(extra).all(axis=(1, 2))
        m = m + np.einsum("atd,ate->de", source_avg[present], extra[present])
        const = const + np.sum(source_avg[present] ** 2) + np.sum(extra[present] ** 2)
    if not rotations:
        return const - 2.0 * np.linalg.svd(m, compute_uv=False).sum(axis=1), None, perms
    u, s, vt = np.linalg.svd(m)
    return const - 2.0 * s.sum(axis=1), u @ vt, perms


def hypotheses(source_avg: np.ndarray, target_means: np.ndarray, n: int = 16, min_gap: float = 0.3) -> list:
    """The ``n`` lowest-cost **distinct** matches (rotations differing by more than ``min_gap`` in
    some entry), best first: how close the ring's shifted / mirrored assignments come to the best."""
    costs, rotations, perms = assignment_costs(source_avg, target_means)
    out: list[Hypothesis] = []
    for i in np.argsort(costs, kind="stable"):
        if all(np.abs(rotations[i] - h.rotation).max() > min_gap for h in out):
            out.append(Hypothesis(rotations[i], perms[i], float(costs[i])))
            if len(out) == n:
                break
    return out


def icp(
    source_avg: np.ndarray, target_means: np.ndarray, *, seed: int = 0, n_random: int = 16, max_iter: int = 100
) -> Hypothesis:
    """Iterative closest point from many orthogonal starts: alternate the Hungarian assignment of
    clusters to directions and the Procrustes refit; keep the lowest cost.

    Args:
        source_avg: ``(k, bin, dim)`` source direction averages.
        target_means: ``(k, bin, dim)`` target cluster means.
        seed: seed of the random starts.
        n_random: random O(dim) starts added to the ``2^dim · dim!`` signed permutations.
        max_iter: iterations per start.
    """
    k, bins, dim = source_avg.shape
    src, dst = source_avg.reshape(k, -1), target_means.reshape(k, -1)

    def refine(rotation):
        previous = None
        for _ in range(max_iter):
            moved = (source_avg @ rotation).reshape(k, -1)
            cost = ((moved[:, None, :] - dst[None, :, :]) ** 2).sum(axis=-1)
            _, assignment = linear_sum_assignment(cost)
            if previous is not None and np.array_equal(assignment, previous):
                break
            previous = assignment
            rotation = orthogonal_procrustes(src.reshape(-1, dim), dst[assignment].reshape(-1, dim))[0]
        total = float(np.sum((source_avg @ rotation - target_means[previous]) ** 2))
        return total, Hypothesis(rotation, previous, total)

    return _lowest(refine(start) for start in _starts(dim, n_random, seed))


def _lowest(results):
    """The value of the first ``(cost, value)`` result that no later one beats by more than 1e-12 (the
    best over an optimiser's starts, ties kept in start order)."""
    best_cost, best = np.inf, None
    for cost, value in results:
        if best is None or cost < best_cost - 1e-12:
            best_cost, best = cost, value
    return best


# ------------------------------------------------------------------------------------------- label-free


def _consensus(source_avg, reference_avgs, target_means) -> np.ndarray:
    """The assignment minimising ``Σ_r c_r(p) / min c_r²`` over the source and the references."""
    total = None
    for avg in [source_avg, *reference_avgs]:
        costs, _, perms = assignment_costs(avg, target_means, rotations=False)
        term = costs / max(costs.min(), 1e-12) ** 2
        total = term if total is None else total + term
    return perms[int(np.argmin(total))]


def _moments(source: np.ndarray, target: np.ndarray, seed: int, n_random: int = 16) -> np.ndarray:
    """O(dim) map matching the per-bin means and covariances of the pooled trials."""
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    cov_s = np.einsum("nbi,nbj->bij", source - mean_s, source - mean_s) / len(source)
    cov_t = np.einsum("nbi,nbj->bij", target - mean_t, target - mean_t) / len(target)

    def cost(rotation):
        return np.sum((mean_s @ rotation - mean_t) ** 2) + np.sum((rotation.T @ cov_s @ rotation - cov_t) ** 2)

    def refine(start):
        sign = np.diag([1.0, 1.0, np.sign(np.linalg.det(start))])  # proper part times a fixed reflection
        proper = start @ sign

        def f(w):
            return cost(Rotation.from_rotvec(w).as_matrix() @ proper @ sign)

        w = minimize(f, np.zeros(3), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10}).x
        rotation = Rotation.from_rotvec(w).as_matrix() @ proper @ sign
        return cost(rotation), rotation

    return _lowest(refine(start) for start in _starts(source.shape[-1], n_random, seed))


def _transport(
    source: np.ndarray, target: np.ndarray, seed: int, n_random: int = 8, max_trials: int = 128, max_iter: int = 30
) -> np.ndarray:
    """O(dim) map minimising the one-to-one transport cost between single-trial trajectories."""
    rng = np.random.default_rng(seed)
    m = min(len(source), len(target), max_trials)
    src = source[np.sort(rng.choice(len(source), m, replace=False))]
    dst = target[np.sort(rng.choice(len(target), m, replace=False))]
    dim = source.shape[-1]
    flat_dst = dst.reshape(m, -1)

    def refine(rotation):
        previous = None
        for _ in range(max_iter):
            moved = (src @ rotation).reshape(m, -1)
            cost = (moved**2).sum(1)[:, None] + (flat_dst**2).sum(1)[None, :] - 2.0 * moved @ flat_dst.T
            _, match = linear_sum_assignment(cost)
            if previous is not None and np.array_equal(match, previous):
                break
            previous = match
            rotation = orthogonal_procrustes(src.reshape(-1, dim), dst[match].reshape(-1, dim))[0]
        return float(np.sum((src @ rotation - dst[previous]) ** 2)), rotation

    return _lowest(refine(start) for start in _starts(dim, n_random, seed))


def label_free(
    source_latent: np.ndarray,
    source_classes: np.ndarray,
    target_latent: np.ndarray,
    *,
    method: str = DEFAULT_METHOD,
    references: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    seed: int = 0,
    n_directions: int = N_DIRECTIONS,
) -> Alignment:
    """Align a labelled source session onto a target session from the target's embedding alone.

    Args:
        source_latent: ``(trial, bin, dim)`` embeddings of the decoder session A (e.g. its training
            trials).
        source_classes: ``(trial,)`` direction classes of A's trials (every direction present).
        target_latent: ``(trial, bin, dim)`` embeddings of the new session B, its trials in any order;
            the bin axis is the trial timing (bins since the go cue). Nothing else of B is read.
        method: one of :data:`LABEL_FREE_METHODS` (module docstring).
        references: ``clusters`` only: other labelled sessions ``(latent, classes)`` (never B) whose
            consensus picks the assignment of B's clusters (module docstring).
        seed: seed of k-means, random starts and subsamples.
        n_directions: number of direction classes (= clusters).

    Returns:
        An :class:`Alignment` named ``label_free`` (``clusters``), ``label_free_<method>`` otherwise,
        with ``_consensus`` appended when references were used.

    Raises:
        InputError: unknown method, bad shapes, different (bin, dim), a direction missing from the
            source or a reference, too few target trials for the clusters, references with another method.
    """
    if method not in LABEL_FREE_METHODS:
        raise InputError(
            None, "method", f"unknown label-free method {method!r}; choose from {list(LABEL_FREE_METHODS)}"
        )
    source, source_avg = _source(source_latent, source_classes, n_directions)
    target = _latent(target_latent, "target_latent")
    _same_shape(source, target)
    if references and method != "clusters":
        raise InputError(None, "references", f"references need method 'clusters', not {method!r}")
    reference_avgs = []
    for i, (latent, classes) in enumerate(references):
        ref, avg = _source(latent, classes, n_directions, name=f"references[{i}]")
        _same_shape(source, ref, f"references[{i}]_latent")
        reference_avgs.append(avg)
    name = "label_free" + ("" if method == "clusters" else f"_{method}") + ("_consensus" if references else "")
    if method == "mean":
        return Alignment(name, orthogonal_procrustes(source.mean(axis=0), target.mean(axis=0))[0])
    if method == "moments":
        if source.shape[-1] != 3:
            raise InputError(None, "method", f"'moments' needs a 3-D latent, not {source.shape[-1]}-D")
        return Alignment(name, _moments(source, target, seed))
    if method == "transport":
        return Alignment(name, _transport(source, target, seed))
    if len(target) < n_directions:
        raise InputError(None, "target_latent", f"{len(target)} trials are too few for {n_directions} clusters")
    _, means = trajectory_clusters(target, n_directions, seed=seed)
    if n_directions > EXHAUSTIVE_MAX:
        if references:
            raise InputError(None, "references", f"a consensus needs at most {EXHAUSTIVE_MAX} directions")
        return Alignment(name, icp(source_avg, means, seed=seed).rotation)
    if references:
        assignment = _consensus(source_avg, reference_avgs, means)
        dim = source.shape[-1]
        return Alignment(
            name, orthogonal_procrustes(source_avg.reshape(-1, dim), means[assignment].reshape(-1, dim))[0]
        )
    costs, rotations, _ = assignment_costs(source_avg, means)
    return Alignment(name, rotations[int(np.argmin(costs))])


# ------------------------------------------------------------------------------------------- few-shot


def calibration_trials(classes: np.ndarray, train: np.ndarray, k: int, n_directions: int = N_DIRECTIONS) -> np.ndarray:
    """Indices of the first ``k`` training trials of each direction, in trial order (a calibration
    block); test trials are never taken and their labels never read.

    Args:
        classes: ``(trial,)`` direction classes of the target session.
        train: ``(trial,)`` bool, True for training trials.
        k: labelled trials per direction.

    Raises:
        InputError: ``k < 1``, shapes disagree, or a direction has fewer than ``k`` training trials.
    """
    classes, train = np.asarray(classes), np.asarray(train, dtype=bool)
    if classes.shape != train.shape or classes.ndim != 1:
        raise InputError(None, "classes", f"classes {classes.shape} and train {train.shape} must be equal 1-D shapes")
    if int(k) != k or k < 1:
        raise InputError(None, "k", f"k must be a positive integer, got {k!r}")
    train_idx = np.flatnonzero(train)
    train_classes = classes[train_idx]  # the labels of training trials only
    picked = []
    for a in range(n_directions):
        members = train_idx[train_classes == a]
        if len(members) < k:
            raise InputError(None, "k", f"k = {k} but direction {a} has only {len(members)} training trials")
        picked.append(members[:k])
    return np.sort(np.concatenate(picked))


def few_shot(
    source_latent: np.ndarray,
    source_classes: np.ndarray,
    target_latent: np.ndarray,
    labelled: np.ndarray,
    labels: np.ndarray,
    *,
    guided: bool = False,
    seed: int = 0,
    n_directions: int = N_DIRECTIONS,
) -> Alignment:
    """Align a labelled source session onto a target session with a few labelled target trials.

    Args:
        source_latent: ``(trial, bin, dim)`` embeddings of the decoder session A.
        source_classes: ``(trial,)`` direction classes of A (every direction present).
        target_latent: ``(trial, bin, dim)`` embeddings of B. Without ``guided`` only the rows
            ``labelled`` are read.
        labelled: integer indices of B's labelled trials (e.g. :func:`calibration_trials`).
        labels: ``(len(labelled),)`` their direction classes: the only labels of B the function gets.
        guided: also use B's unlabelled trials: the exhaustive cluster match of :func:`label_free`
            with the labelled averages added as fixed correspondences.
        seed: k-means seed (``guided``).

    Returns:
        An :class:`Alignment` named ``few_shot_{k}`` (``k`` = the most labelled trials of a direction),
        ``few_shot_{k}_guided`` with ``guided``.

    Raises:
        InputError: bad shapes or indices, labels outside ``0..n_directions-1``, a direction without a
            labelled trial, too few target trials for the clusters (``guided``).
    """
    source, source_avg = _source(source_latent, source_classes, n_directions)
    target = np.asarray(target_latent)
    if target.ndim != 3:
        raise InputError(None, "target_latent", f"expected a (trial, bin, dim) array, got shape {target.shape}")
    _same_shape(source, target)
    labelled, labels = np.asarray(labelled), np.asarray(labels)
    if labelled.ndim != 1 or labels.shape != labelled.shape or not np.issubdtype(labelled.dtype, np.integer):
        raise InputError(
            None,
            "labelled",
            f"expected matching 1-D integer indices and labels, got {labelled.shape} and {labels.shape}",
        )
    if (
        len(np.unique(labelled)) != len(labelled)
        or labelled.min(initial=0) < 0
        or labelled.max(initial=0) >= len(target)
    ):
        raise InputError(None, "labelled", f"indices must be distinct and within 0..{len(target) - 1}")
    if not np.isin(labels, np.arange(n_directions)).all():
        raise InputError(None, "labels", f"labels must be direction classes 0..{n_directions - 1}")
    counts = np.bincount(labels.astype(np.int64), minlength=n_directions)
    if (counts == 0).any():
        raise InputError(None, "labels", f"directions {np.flatnonzero(counts == 0).tolist()} have no labelled trial")
    shots = _latent(target[labelled], "target_latent")
    shot_avg = direction_averages(shots, labels.astype(np.int64), n_directions)
    name = f"few_shot_{int(counts.max())}"
    dim = source.shape[-1]
    if not guided:
        return Alignment(name, orthogonal_procrustes(source_avg.reshape(-1, dim), shot_avg.reshape(-1, dim))[0])
    target = _latent(target, "target_latent")
    if len(target) < n_directions:
        raise InputError(None, "target_latent", f"{len(target)} trials are too few for {n_directions} clusters")
    _, means = trajectory_clusters(target, n_directions, seed=seed)
    costs, rotations, _ = assignment_costs(source_avg, means, extra=shot_avg)
    return Alignment(f"{name}_guided", rotations[int(np.argmin(costs))])


def none(dim: int) -> Alignment:
    """The identity alignment (the floor)."""
    return Alignment.identity(dim)

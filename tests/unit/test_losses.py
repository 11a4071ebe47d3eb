"""NER rank loss, label distance and InfoNCE (pipeline.embed.nn.losses) against naive references."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.embed.nn.losses import (  # internals: which path runs
    EXP_RANGE_LIMIT,
    RankLoss,
    RankStructure,
    _label_groups,
    _structure_by_keys,
    infonce,
    label_distance,
    rank_loss,
)

F64 = torch.float64


# --------------------------------------------------------------------------- naive references
def naive_rank_loss(z, d, tau):
    """O(M^3) reference straight from the formula (3-D mask), float64, differentiable.

    ``terms[i, j] = log sum_{k != i, D_ik >= D_ij} exp(s_ik) - s_ij``, averaged over ``j != i``.
    """
    m = z.shape[0]
    eye = torch.eye(m, dtype=torch.bool)
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    # Zero distance (diagonal, coincident points): value 0 and gradient 0, the documented convention.
    positive = sq > 0
    s = -torch.where(positive, torch.sqrt(torch.where(positive, sq, 1.0)), 0.0) / tau
    keep = d[:, None, :] >= d[:, :, None]  # [i, j, k]: D_ik >= D_ij
    keep = (keep | eye[:, :, None]) & ~eye[:, None, :]  # k != i; rows j == i are dropped below
    log_den = torch.logsumexp(torch.where(keep, s[:, None, :], -math.inf), dim=2)
    terms = torch.where(eye, 0.0, log_den - s)
    return terms.sum() / (m * (m - 1))


def loop_rank_loss(z, d, tau):
    """Even more literal reference with Python floats and loops (tiny M only), no gradient."""
    m = z.shape[0]
    dist = [[math.dist(z[i].tolist(), z[j].tolist()) for j in range(m)] for i in range(m)]
    total = 0.0
    for i in range(m):
        for j in range(m):
            if j == i:
                continue
            den = sum(math.exp(-dist[i][k] / tau) for k in range(m) if k != i and d[i, k] >= d[i, j])
            total += -math.log(math.exp(-dist[i][j] / tau) / den)
    return total / (m * (m - 1))


def _unit(m, d=3, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(m, d, generator=g, dtype=F64), dim=1).to(dtype)


def _continuous_labels(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    vel = torch.randn(m, 2, generator=g, dtype=F64) * 100
    return torch.cat([vel, torch.rand(m, 1, generator=g, dtype=F64) * 360], 1)


def _tied_labels(m, seed=0):
    """Few distinct values: small integers for velocity, directions on the 45-degree grid."""
    g = torch.Generator().manual_seed(seed)
    vel = torch.randint(-2, 3, (m, 2), generator=g).to(F64)
    ang = torch.randint(0, 8, (m, 1), generator=g).to(F64) * 45
    return torch.cat([vel, ang], 1)


def _ner_batch_labels(m, seed=0, tied=True):
    """NER layout: B references, then B positives carrying their reference's label (M odd: one extra)."""
    b = m // 2
    ref = _tied_labels(b, seed) if tied else _continuous_labels(b, seed)
    extra = _continuous_labels(m - 2 * b, seed + 1)
    return torch.cat([ref, ref, extra])


def _grad(fn, z, *args):
    z = z.detach().clone().requires_grad_(True)
    loss = fn(z, *args)
    (g,) = torch.autograd.grad(loss, z)
    return loss.detach(), g


# --------------------------------------------------------------------------- label distance
def test_label_distance_circular_angle_and_l1():
    a = torch.tensor([[0.0, 0.0, 315.0], [1.0, -2.0, 0.0], [0.5, 0.5, 180.0], [0.0, 0.0, 45.0]], dtype=F64)
    d = label_distance(a)
    assert d[0, 1] == pytest.approx(1 + 2 + 45)  # 315 vs 0 wraps to 45
    assert d[1, 2] == pytest.approx(0.5 + 2.5 + 180)  # 0 vs 180 = 180
    assert d[0, 3] == pytest.approx(90)  # 315 vs 45 = 90, not 270
    assert d[2, 3] == pytest.approx(1 + 135)
    assert torch.equal(d, d.T) and torch.all(d.diagonal() == 0)
    b = torch.tensor([[0.0, 0.0, -45.0], [0.0, 0.0, 675.0]], dtype=F64)  # outside [0, 360)
    assert label_distance(b, a[:1]).flatten().tolist() == [0.0, 0.0]
    plain = label_distance(a, angle_column=None)
    assert plain[0, 1] == pytest.approx(1 + 2 + 315)
    assert torch.allclose(plain, torch.cdist(a, a, p=1))
    assert torch.equal(label_distance(a, angle_column=-1), d)


def test_label_distance_shapes_dtypes_and_errors():
    a, b = _tied_labels(7), _tied_labels(4, seed=1)
    assert label_distance(a, b).shape == (7, 4)
    assert torch.equal(label_distance(a, b), label_distance(b, a).T)
    x = torch.tensor([0.0, 90.0, 350.0])
    assert label_distance(x, angle_column=0)[:, 2].tolist() == [10.0, 100.0, 0.0]
    assert label_distance(torch.tensor([[1, 2, 0], [3, 4, 90]])).dtype == torch.get_default_dtype()
    with pytest.raises(ValueError, match="out of range"):
        label_distance(a, angle_column=3)
    with pytest.raises(ValueError, match="columns"):
        label_distance(a, a[:, :2])
    with pytest.raises(ValueError):
        label_distance(torch.zeros(2, 3, 4))


def test_duplicate_labels_give_bitwise_equal_rows():
    lab = _ner_batch_labels(40, tied=False)
    d = label_distance(lab)
    assert torch.equal(d[:20], d[20:]) and torch.equal(d[:, :20], d[:, 20:]) and torch.equal(d, d.T)


# --------------------------------------------------------------------------- rank loss vs naive
def test_naive_references_agree():
    z, lab = _unit(6, seed=3), _ner_batch_labels(6)
    d = label_distance(lab)
    for tau in (0.5, 1.0):
        assert naive_rank_loss(z, d, tau).item() == pytest.approx(loop_rank_loss(z, d, tau), abs=1e-12)


@pytest.mark.parametrize("m", [2, 3, 8, 33, 64])
@pytest.mark.parametrize("kind", ["distinct", "tied", "ner", "ner_continuous"])
def test_matches_naive_loss_and_gradient(m, kind):
    labels = {
        "distinct": lambda: _continuous_labels(m, seed=m),
        "tied": lambda: _tied_labels(m, seed=m),
        "ner": lambda: _ner_batch_labels(m, seed=m),
        "ner_continuous": lambda: _ner_batch_labels(m, seed=m, tied=False),
    }[kind]()
    d = label_distance(labels)
    z = _unit(m, seed=m + 1)
    for tau in (0.1, 1.0, 2.0):
        ours, g_ours = _grad(rank_loss, z, d, tau)
        ref, g_ref = _grad(naive_rank_loss, z, d, tau)
        assert ours.dtype == F64
        assert abs(ours.item() - ref.item()) <= 1e-10
        assert torch.allclose(g_ours, g_ref, rtol=0, atol=1e-8)


def test_matches_naive_with_irregular_duplicates_and_given_groups():
    # Duplicate groups of sizes 1..4 in shuffled order, few distinct distances (many ties).
    g = torch.Generator().manual_seed(7)
    base = _tied_labels(12, seed=5)
    idx = torch.randint(0, 12, (41,), generator=g)
    labels = base[idx]
    d = label_distance(labels)
    z = _unit(41, seed=8)
    z[3] = z[17]  # coincident embeddings too
    groups = torch.unique(labels, dim=0, return_inverse=True)[1]
    ref, g_ref = _grad(naive_rank_loss, z, d, 0.5)
    for kwargs in ({}, {"groups": groups}, {"groups": groups * 10 + 3}):
        ours, g_ours = _grad(lambda zz, dd, t: rank_loss(zz, dd, t, **kwargs), z, d, 0.5)
        assert abs(ours.item() - ref.item()) <= 1e-10
        assert torch.allclose(g_ours, g_ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    ("multiplicities", "k"),
    [((2, 2, 4, 6, 2, 4), 2), ((3, 6, 3, 3), 3), ((2, 2, 2, 1), 1), ((9,), 9), ((1,) * 9, 1)],
)
def test_sub_group_layouts(multiplicities, k):
    """Labels repeated 2/4/6 times (pairs after splitting), 3/6 times, mixed, all equal, distinct."""
    base = _tied_labels(len(multiplicities), seed=len(multiplicities))
    base[:, 0] += torch.arange(len(multiplicities), dtype=F64) * 7  # distinct label rows
    labels = base.repeat_interleave(torch.tensor(multiplicities), dim=0)
    perm = torch.randperm(labels.shape[0], generator=torch.Generator().manual_seed(k))
    labels = labels[perm]  # members of a group scattered over the batch
    d = label_distance(labels)
    assert RankStructure.from_distances(d).k == k
    z = _unit(labels.shape[0], seed=k)
    ref, g_ref = _grad(naive_rank_loss, z, d, 0.8)
    for kwargs in ({}, {"groups": _label_groups(labels)}):
        ours, g_ours = _grad(lambda zz, dd, t: rank_loss(zz, dd, t, **kwargs), z, d, 0.8)
        assert abs(ours.item() - ref.item()) <= 1e-10
        assert torch.allclose(g_ours, g_ref, rtol=0, atol=1e-8)
    small, g_small = _grad(rank_loss, z * 1000, d, 0.8)  # log-space path, same layout
    ref, g_ref = _grad(naive_rank_loss, z * 1000, d, 0.8)
    assert small.item() == pytest.approx(ref.item(), rel=1e-12)
    assert torch.allclose(g_small, g_ref, rtol=1e-9, atol=1e-10)


def test_label_groups_partition_equals_identical_rows():
    labels = _tied_labels(200, seed=1)
    labels[5:7] = float("nan")  # NaN rows equal nothing, not even each other
    ours = _label_groups(labels)
    same_ours = ours[:, None] == ours[None, :]
    same_ref = (labels[:, None, :] == labels[None, :, :]).all(-1)  # NaN rows equal nothing
    off = ~torch.eye(200, dtype=torch.bool)
    assert torch.equal(same_ours & off, same_ref & off)
    assert torch.equal(_label_groups(torch.tensor([3.0, 1.0, 3.0])), torch.tensor([1, 0, 1]))


def test_generic_label_dist_asymmetric_and_duplicated():
    g = torch.Generator().manual_seed(11)
    m = 20
    asym = torch.randint(0, 4, (m, m), generator=g).to(F64)  # not symmetric, nonzero diagonal
    gid = torch.randint(0, 6, (m,), generator=g)
    base = torch.randint(0, 5, (6, 6), generator=g).to(F64)
    dup = base[gid][:, gid]  # identical rows/columns per group, arbitrary diagonal
    z = _unit(m, seed=12)
    for d in (asym, dup, -dup, torch.zeros(m, m, dtype=F64)):
        ours, g_ours = _grad(rank_loss, z, d, 1.0)
        ref, g_ref = _grad(naive_rank_loss, z, d, 1.0)
        assert abs(ours.item() - ref.item()) <= 1e-10
        assert torch.allclose(g_ours, g_ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("tau", [1e-3, 0.01])  # log-space path, fast path
def test_small_temperature(tau):
    m = 24
    d = label_distance(_ner_batch_labels(m, seed=2))
    z = _unit(m, seed=4)
    assert (torch.cdist(z, z).max().item() / tau > EXP_RANGE_LIMIT) == (tau == 1e-3)
    ours, g_ours = _grad(rank_loss, z, d, tau)
    ref, g_ref = _grad(naive_rank_loss, z, d, tau)
    assert torch.isfinite(ours) and torch.isfinite(g_ours).all()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12, abs=1e-10)
    assert torch.allclose(g_ours, g_ref, rtol=1e-9, atol=1e-8)


def test_fast_and_log_space_paths_agree_at_the_switch():
    m = 16
    d = label_distance(_ner_batch_labels(m, seed=9))
    z = _unit(m, seed=10) * 100.0
    span = torch.cdist(z, z).max().item()
    a, ga = _grad(rank_loss, z, d, span / EXP_RANGE_LIMIT * 1.0001)  # fast path
    b, gb = _grad(rank_loss, z, d, span / EXP_RANGE_LIMIT * 0.9999)  # log-space path
    ref, gr = _grad(naive_rank_loss, z, d, span / EXP_RANGE_LIMIT * 0.9999)
    assert b.item() == pytest.approx(ref.item(), rel=1e-12)
    assert torch.allclose(gb, gr, rtol=1e-9, atol=1e-10)
    assert a.item() == pytest.approx(b.item(), rel=1e-3)


def test_gradcheck_fast_and_log_space():
    d = label_distance(_ner_batch_labels(7, seed=1))
    z = _unit(7, seed=2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: rank_loss(x, d, 0.7), (z,))
    big = (_unit(7, seed=3) * 800).requires_grad_(True)  # distances / tau > 600: log-space path
    assert torch.autograd.gradcheck(lambda x: rank_loss(x, d, 1.0), (big,))
    ties = torch.zeros(7, 7, dtype=F64)  # one big tie group
    assert torch.autograd.gradcheck(lambda x: rank_loss(x, ties, 1.0), (z,))


# --------------------------------------------------------------------------- robustness
def test_no_nan_gradient_for_coincident_embeddings():
    m = 10
    d = label_distance(_ner_batch_labels(m, seed=0))
    z = _unit(m, seed=1)
    z[5:] = z[:5]  # every positive lands on its reference
    for tau in (1.0, 1e-4):
        loss, g = _grad(rank_loss, z, d, tau)
        assert torch.isfinite(loss) and torch.isfinite(g).all()
    same = torch.ones(m, 3, dtype=F64)  # all embeddings identical: loss = mean log(den size)
    loss, g = _grad(rank_loss, same, d, 1.0)
    assert torch.equal(g, torch.zeros_like(g))
    assert loss.item() == pytest.approx(naive_rank_loss(same, d, 1.0).item(), abs=1e-12)


def test_float32_close_to_float64():
    m = 64
    d64 = label_distance(_ner_batch_labels(m, seed=3))
    z64 = _unit(m, seed=4)
    l64, g64 = _grad(rank_loss, z64, d64, 1.0)
    l32, g32 = _grad(rank_loss, z64.float(), d64.float(), 1.0)
    assert l32.dtype == torch.float32 and g32.dtype == torch.float32
    assert l32.item() == pytest.approx(l64.item(), rel=1e-6)
    assert torch.allclose(g32.double(), g64, rtol=1e-4, atol=1e-6)


def test_label_dist_dtypes_and_torch_sort_path():
    # Integer-valued distances are exact in every dtype; float16 goes through torch.argsort (the
    # path CUDA tensors take) instead of numpy's sort.
    m = 26
    d = label_distance(_ner_batch_labels(m, seed=5))
    z = _unit(m, seed=6)
    ref = rank_loss(z, d)
    for dtype in (torch.float16, torch.float32, torch.int64, torch.int32):
        assert rank_loss(z, d.to(dtype)).item() == pytest.approx(ref.item(), abs=1e-12)


def test_pure_and_permutation_invariant():
    m = 30
    lab = _ner_batch_labels(m, seed=6)
    z = _unit(m, seed=7)
    d = label_distance(lab)
    first = rank_loss(z, d, 1.0)
    assert torch.equal(rank_loss(z, d, 1.0), first)
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(0))
    assert rank_loss(z[perm], d[perm][:, perm], 1.0).item() == pytest.approx(first.item(), abs=1e-12)


def test_rank_loss_input_errors():
    z, d = _unit(4), torch.zeros(4, 4, dtype=F64)
    with pytest.raises(ValueError, match="M >= 2"):
        rank_loss(z[:1], d[:1, :1])
    with pytest.raises(ValueError, match="shape"):
        rank_loss(z, d[:3])
    with pytest.raises(ValueError, match="temperature"):
        rank_loss(z, d, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        rank_loss(z, d, float("nan"))
    bad = d.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        rank_loss(z, bad)
    with pytest.raises(ValueError, match="groups"):
        rank_loss(z, d, groups=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="floating"):
        rank_loss(torch.zeros(4, 3, dtype=torch.long), d)


def test_rank_loss_module():
    m = 20
    lab = _ner_batch_labels(m, seed=2)
    z = _unit(m, seed=3)
    mod = RankLoss(temperature=0.5)
    assert "temperature=0.5" in repr(mod)
    assert mod(z, lab).item() == pytest.approx(rank_loss(z, label_distance(lab), 0.5).item(), abs=1e-12)
    plain = RankLoss(angle_column=None)
    assert plain(z, lab).item() == pytest.approx(rank_loss(z, label_distance(lab, angle_column=None)).item(), abs=1e-12)
    with pytest.raises(ValueError):
        RankLoss(temperature=-1.0)
    nan_labels = lab.clone()
    nan_labels[:2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mod(z, nan_labels)


@pytest.mark.parametrize("tau", [1.0, 0.02])
def test_float32_working_precision_close_to_the_reference(tau):
    """RankLoss(precision="float32") (fast path at tau 1, log space at tau 0.02: 2 / 0.02 > 80) against
    the O(M^3) reference and the default float64 path, on an NER batch of float32 embeddings."""
    m = 96
    lab = _ner_batch_labels(m, seed=8)
    z = _unit(m, seed=9, dtype=torch.float32)
    ref, g_ref = _grad(naive_rank_loss, z.double(), label_distance(lab), tau)
    l64, g64 = _grad(RankLoss(temperature=tau), z, lab)
    l32, g32 = _grad(RankLoss(temperature=tau, precision="float32"), z, lab)
    assert "precision=float32" in repr(RankLoss(precision="float32"))
    assert l32.dtype == g32.dtype == torch.float32 and torch.isfinite(g32).all()
    assert l64.item() == pytest.approx(ref.item(), rel=1e-6)
    assert l32.item() == pytest.approx(ref.item(), rel=2e-5)
    assert torch.allclose(g32.double(), g_ref, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="precision"):
        RankLoss(precision="float16")


# --------------------------------------------------------------------------- label structure
def _exact_structure(du, k):
    """The structure from torch.sort and exact comparisons (the path every non-CPU device takes)."""
    st = RankStructure.__new__(RankStructure)
    st.k = k
    st._build(du, F64, keys=False)
    return st


def _assert_same_structure(a, b, du):
    """Equal up to the order inside tie groups: sorted distances, weights, and pos inverting the order."""
    assert torch.equal(du.gather(1, a.order_desc), du.gather(1, b.order_desc))
    assert torch.equal(a.weight_desc, b.weight_desc)
    u = du.shape[0]
    desc = torch.arange(u - 1, -1, -1).expand(u, u)
    assert torch.equal(a.pos.gather(1, a.order_desc), desc) and torch.equal(b.pos.gather(1, b.order_desc), desc)


@pytest.mark.parametrize("kind", ["normal", "integers", "signed_zeros", "near_ties", "labels"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_sort_key_structure_equals_the_exact_sort(kind, k):
    """The CPU structure (integer sort keys, verified ties) against torch.sort on the same distances:
    negative values, -0.0 next to +0.0, many ties, distances one ulp apart, and NER label distances,
    sizes across the 128-row blocks, float64 and float32."""
    g = torch.Generator().manual_seed(k)
    for u in (1, 2, 37, 128, 300):
        if kind == "normal":
            d = torch.randn(u, u, generator=g, dtype=F64)
        elif kind == "integers":
            d = torch.randint(0, 4, (u, u), generator=g).to(F64)
        elif kind == "signed_zeros":
            d = torch.randn(u, u, generator=g, dtype=F64).abs()
            d[d < 0.7] = -0.0
            d[d < 1.0] = 0.0
        elif kind == "near_ties":
            d = torch.randn(u, u, generator=g, dtype=F64)
            d[:, 1::2] = torch.nextafter(d[:, ::2][:, : d[:, 1::2].shape[1]], torch.tensor(9.0, dtype=F64))
        else:
            d = label_distance(_ner_batch_labels(u, seed=u, tied=u % 2 == 0)[:u])
        for dtype in (F64, torch.float32):
            du = d.to(dtype)
            fast = RankStructure.__new__(RankStructure)
            fast.k = k
            fast._build(du, F64)
            _assert_same_structure(fast, _exact_structure(du, k), du)


def test_false_ties_of_the_sort_keys_fall_back_to_the_exact_sort():
    """Distances one ulp apart share a sort key; the check finds it and the loss stays exact."""
    d = torch.tensor([[0.0, 1.0, math.nextafter(1.0, 2.0), 3.0]] * 4, dtype=F64)
    d.fill_diagonal_(0.0)
    assert _structure_by_keys(4, 1, lambda r0, r1: d[r0:r1].numpy(), zero_diagonal=False) is None
    z = _unit(4, seed=1)
    ours, g_ours = _grad(rank_loss, z, d, 1.0)
    ref, g_ref = _grad(naive_rank_loss, z, d, 1.0)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-12) and torch.allclose(g_ours, g_ref, atol=1e-12)


def test_label_structure_equals_the_structure_of_the_label_distances():
    """RankLoss's label path (numpy rows, angle table or circular formula) against label_distance +
    torch.sort, with angles on the grid, continuous, outside [0, 360), in any column, and many ties."""
    g = torch.Generator().manual_seed(0)
    for trial in range(24):
        b, n_cols = 20 + 13 * trial, 1 + trial % 4
        y = torch.randn(b, n_cols, generator=g, dtype=F64) * 100
        angle = None if trial % 4 == 0 else (trial % n_cols) - (n_cols if trial % 3 == 0 else 0)
        if angle is not None:
            y[:, angle] = (
                torch.randint(0, 8, (b,), generator=g).to(F64) * 45
                if trial % 2
                else torch.rand(b, generator=g, dtype=F64) * 1400 - 500
            )
        if trial % 5 == 1:
            y = torch.round(y / 50) * 50  # many exact ties
        labels = torch.cat([y, y]) if trial % 3 else y[torch.randint(0, b, (b,), generator=g)]
        st = RankStructure.from_labels(labels, angle)
        rep = labels if st.perm is None else labels.index_select(0, st.perm[: st.u])
        du = label_distance(rep, angle_column=angle)
        exact = _exact_structure(du, st.k)
        _assert_same_structure(st, exact, du)


def test_label_distance_numpy_and_torch_paths_are_bitwise_equal():
    """Self-distances of float64 CPU labels go through numpy/scipy; cross-distances through torch."""
    g = torch.Generator().manual_seed(3)
    for n_cols, angle in [(1, None), (2, 0), (3, 2), (4, 1), (5, -1), (3, None)]:
        y = torch.randn(70, n_cols, generator=g, dtype=F64) * 100
        if angle is not None:
            y[:, angle] = torch.rand(70, generator=g, dtype=F64) * 1000 - 300
        assert torch.equal(label_distance(y, angle_column=angle), label_distance(y, y, angle_column=angle))


def test_rank_loss_refuses_a_bad_angle_column_on_every_path():
    """The CPU label path (numpy) validates the angle column as label_distance does: an index out of
    range or a bool is refused, not wrapped around."""
    z = _unit(8, seed=1)
    for labels in (_continuous_labels(8, seed=2), _continuous_labels(8, seed=2).float()):
        for bad, words in ((5, "out of range"), (-4, "out of range"), (True, "must be an int")):
            with pytest.raises(ValueError, match=words):
                RankLoss(angle_column=bad)(z, labels)
            with pytest.raises(ValueError, match=words):
                RankLoss(angle_column=bad).pair_structure(labels)
    assert (
        RankLoss(angle_column=-1)(z, _continuous_labels(8, seed=2)).item()
        == RankLoss()(z, _continuous_labels(8, seed=2)).item()
    )


def test_rank_loss_module_with_a_prepared_structure():
    lab = _ner_batch_labels(40, seed=2, tied=False)
    z = _unit(40, seed=3)
    for precision in ("float64", "float32"):
        mod = RankLoss(precision=precision)
        assert mod(z, structure=mod.structure(lab)).item() == mod(z, lab).item()
    mod = RankLoss()
    with pytest.raises(ValueError, match="either labels or structure"):
        mod(z)
    with pytest.raises(ValueError, match="either labels or structure"):
        mod(z, lab, structure=mod.structure(lab))
    with pytest.raises(ValueError, match="structure is of 20 samples"):
        mod(z, structure=mod.structure(lab[:20]))
    with pytest.raises(ValueError, match="infinite"):
        mod.structure(torch.full((4, 3), math.inf, dtype=F64))


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_pair_structure_of_an_ner_batch_gives_the_same_loss(precision):
    """The training loop's structure ([references; positives], no label grouping; bins drawn twice
    become tied sub-groups) against the grouped one and the O(M^3) reference."""
    g = torch.Generator().manual_seed(4)
    ref = _tied_labels(60, seed=4)[torch.randint(0, 60, (60,), generator=g)]  # repeated bins and labels
    labels = ref.repeat(2, 1)
    z = _unit(120, seed=5)
    mod = RankLoss(precision=precision)
    pairs = mod.pair_structure(ref)
    assert pairs.k == 2 and pairs.perm is None and pairs.u == 60
    a, ga = _grad(lambda x: mod(x, structure=pairs), z)
    b, gb = _grad(lambda x: mod(x, labels), z)
    r, gr = _grad(naive_rank_loss, z, label_distance(labels), 1.0)
    tol = 1e-12 if precision == "float64" else 1e-6
    assert a.item() == pytest.approx(b.item(), rel=tol) and a.item() == pytest.approx(r.item(), rel=tol)
    assert torch.allclose(ga, gr, atol=tol) and torch.allclose(gb, gr, atol=tol)
    with pytest.raises(ValueError, match="infinite"):
        mod.pair_structure(torch.full((4, 3), math.inf, dtype=F64))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_pair_structure_built_on_the_device_matches_the_cpu():
    """What training on a GPU does: the structure built by the device from its resident labels."""
    ref = _continuous_labels(128, seed=6)
    z = _unit(256, seed=7, dtype=torch.float32)
    mod = RankLoss(precision="float32")
    cpu_loss, cpu_g = _grad(lambda x: mod(x, structure=mod.pair_structure(ref)), z)
    on_device = mod.pair_structure(ref.cuda(), check=False)
    assert on_device.order_desc.is_cuda and torch.equal(
        on_device.to("cpu").weight_desc, mod.pair_structure(ref).weight_desc
    )
    loss, g = _grad(lambda x: mod(x, structure=on_device), z.cuda())
    assert loss.item() == pytest.approx(cpu_loss.item(), rel=1e-5)
    assert torch.allclose(g.cpu(), cpu_g, rtol=1e-3, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    m = 64
    lab = _ner_batch_labels(m, seed=4)
    z = _unit(m, seed=5, dtype=torch.float32)
    cpu_loss, cpu_g = _grad(lambda x, y: RankLoss()(x, y), z, lab)
    loss, g = _grad(lambda x, y: RankLoss()(x, y), z.cuda(), lab.cuda())
    assert loss.device.type == "cuda"
    assert loss.item() == pytest.approx(cpu_loss.item(), rel=1e-6)
    assert torch.allclose(g.cpu(), cpu_g, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- InfoNCE
def test_infonce_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    ref, pos, neg = (torch.randn(n, 3, generator=g, dtype=F64) for n in (3, 3, 4))
    for tau in (1.0, 0.3):
        expected = 0.0
        for i in range(3):
            s_pos = -math.dist(ref[i].tolist(), pos[i].tolist()) / tau
            den = sum(math.exp(-math.dist(ref[i].tolist(), n.tolist()) / tau) for n in neg)
            expected += (-s_pos + math.log(den)) / 3
        assert infonce(ref, pos, neg, tau).item() == pytest.approx(expected, abs=1e-12)


def test_infonce_stable_and_no_nan_gradient():
    ref = _unit(5, seed=1).requires_grad_(True)
    pos = ref.detach().clone()  # positives coincide with references
    neg = torch.cat([ref.detach()[:2], _unit(3, seed=2)])  # some negatives coincide too
    loss = infonce(ref, pos, neg, temperature=1e-3)  # exp(2000) would overflow
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(ref.grad).all()
    with pytest.raises(ValueError):
        infonce(ref, pos[:4], neg)

"""Alignment without the new session's labels (issue 20) on the authors' own embeddings.

``label_free`` must not be able to read session B's labels (it takes B's latent only) and must
recover a known orthogonal map; ``few_shot`` must read exactly the k labelled training trials per
direction it is given; bad input is refused in one line. Fixture: ../shared/data/real/ner_paper_results
(see tests/support/authors.py). Scores on all pairs: benchmarks/bench_labelfree.py.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import ortho_group

from pipeline.analysis.alignment import Alignment, direction_averages
from pipeline.analysis.crossdecode import cross_decode, pair_alignment
from pipeline.analysis.decoding import DecoderSpec, fit, score
from pipeline.analysis.labelfree import (
    LABEL_FREE_METHODS,
    assignment_costs,
    calibration_trials,
    few_shot,
    icp,
    label_free,
    none,
    trajectory_clusters,
)
from pipeline.errors import InputError
from tests.support.authors import authors_cell
from tests.support.paths import requires_real

pytestmark = [requires_real, pytest.mark.realdata]

#: measured on the authors' NER embeddings (benchmarks/bench_labelfree.py): held-out velocity R² of
#: the 161007 decoder on 161014's test trials (same hemisphere), aligned label-free: 0.820 (paper
#: protocol 0.789, leak_free 0.820)
PAIR, PAIR_BOUND = ("161007", "161014"), 0.78
#: across hemispheres the single-reference match picks a mirror image of the direction ring (161007 ->
#: 150629: -0.375); with the other five NER sessions as labelled references the consensus reaches 0.641
#: (paper protocol 0.586, leak_free 0.640)
CONSENSUS_PAIR, CONSENSUS_BOUND = ("161007", "150629"), 0.60
NER_DATES = ("150313", "150319", "150629", "150630", "161007", "161014", "161021")


@pytest.fixture(scope="module")
def ner():
    return {d: authors_cell("NER", d) for d in ("161007", "161014", "150629")}


def scrambled(cell, rng, delete=False):
    """``cell`` with its labels replaced by noise (or deleted: unknown classes, NaN velocity)."""
    if delete:
        return replace(cell, velocity=np.full_like(cell.velocity, np.nan), classes=np.full_like(cell.classes, -1))
    return replace(
        cell, velocity=rng.normal(size=cell.velocity.shape), classes=rng.integers(0, 8, size=cell.classes.shape)
    )


def test_label_free_takes_no_labels_of_the_target():
    """No parameter of ``label_free`` can carry B's labels: B enters as ``target_latent`` only."""
    params = list(inspect.signature(label_free).parameters)
    assert params == [
        "source_latent",
        "source_classes",
        "target_latent",
        "method",
        "references",
        "seed",
        "n_directions",
    ]


@pytest.mark.parametrize("method", ["clusters", "mean"])
def test_label_free_ignores_target_labels(ner, method):
    """Scrambled or deleted labels of B give the identical rotation (bit for bit), and it is seeded."""
    a, b = ner["161007"].training_trials(), ner["161014"]
    rng = np.random.default_rng(1)
    base = label_free(a.latent, a.classes, b.latent, method=method, seed=3)
    for other in (scrambled(b, rng), scrambled(b, rng, delete=True)):
        again = label_free(a.latent, a.classes, other.latent, method=method, seed=3)
        assert np.array_equal(again.rotation, base.rotation)
    assert base.variant == ("label_free" if method == "clusters" else f"label_free_{method}")


def test_consensus_ignores_target_labels(ner):
    a, b, ref = ner["161007"].training_trials(), ner["150629"], ner["161014"].training_trials()
    base = label_free(a.latent, a.classes, b.latent, references=[(ref.latent, ref.classes)])
    other = scrambled(b, np.random.default_rng(2))
    again = label_free(a.latent, a.classes, other.latent, references=[(ref.latent, ref.classes)])
    assert np.array_equal(again.rotation, base.rotation) and base.variant == "label_free_consensus"


@pytest.mark.parametrize("det", [1.0, -1.0])
def test_label_free_recovers_a_known_orthogonal_map(ner, det):
    """B = A·Q + noise (trials shuffled): the fitted map is Q, and A's decoder scores B as it scores A."""
    cell = ner["161007"]
    q = ortho_group.rvs(3, random_state=7)
    q = q if np.sign(np.linalg.det(q)) == det else q @ np.diag([1.0, 1.0, -1.0])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(cell.latent))
    b = cell.trials(order)
    b = replace(b, latent=b.latent @ q + rng.normal(scale=0.02, size=b.latent.shape))
    a = cell.training_trials()
    alignment = label_free(a.latent, a.classes, b.latent)
    assert isinstance(alignment, Alignment) and np.linalg.det(alignment.rotation) == pytest.approx(det)
    assert np.abs(alignment.rotation - q).max() < 0.05
    decoder = fit(cell, DecoderSpec("linear"))
    own = score(decoder, cell, cell.test).values["velocity", "r2"]
    moved = score(decoder, b, b.test, rotation=alignment.rotation).values["velocity", "r2"]
    assert moved == pytest.approx(own, abs=0.03)


def test_exhaustive_match_is_the_icp_optimum(ner):
    """Enumerating the 8! assignments gives the lowest cost ICP finds from its starts (or lower)."""
    a, b = ner["161007"].training_trials(), ner["161014"]
    avg = direction_averages(a.latent, a.classes)
    _, means = trajectory_clusters(b.latent, seed=0)
    costs, rotations, perms = assignment_costs(avg, means)
    best = icp(avg, means, seed=0)
    assert costs.min() <= best.cost + 1e-9
    assert np.allclose(rotations[np.argmin(costs)], best.rotation, atol=1e-8)
    assert np.allclose(np.sum((avg @ rotations[0] - means[perms[0]]) ** 2), costs[0])
    only, none_, same = assignment_costs(avg, means, rotations=False)  # the cheaper costs-only path
    assert none_ is None and np.array_equal(same, perms)
    np.testing.assert_allclose(only, costs, rtol=1e-12, atol=1e-9)


def test_label_free_on_a_real_pair(ner):
    """Label-free alignment of one real NER pair decodes about as well as the paper's protocol."""
    a, b = (ner[d] for d in PAIR)
    alignment = label_free(a.training_trials().latent, a.training_trials().classes, b.latent)
    r2 = score(fit(a, DecoderSpec("linear")), b, b.test, rotation=alignment.rotation).values["velocity", "r2"]
    assert r2 >= PAIR_BOUND
    assert score(fit(a, DecoderSpec("linear")), b, b.test, rotation=none(3).rotation).values["velocity", "r2"] < 0


def test_label_free_consensus_on_a_real_pair(ner):
    a, b = (ner[d] for d in CONSENSUS_PAIR)
    refs = [authors_cell("NER", d).training_trials() for d in NER_DATES if d not in CONSENSUS_PAIR]
    at = a.training_trials()
    alignment = label_free(at.latent, at.classes, b.latent, references=[(r.latent, r.classes) for r in refs])
    r2 = score(fit(a, DecoderSpec("linear")), b, b.test, rotation=alignment.rotation).values["velocity", "r2"]
    assert r2 >= CONSENSUS_BOUND


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_calibration_trials_are_the_first_k_training_trials_per_direction(ner, k):
    b = ner["161014"]
    idx = calibration_trials(b.classes, b.train, k)
    assert len(idx) == 8 * k and b.train[idx].all()
    assert np.array_equal(np.bincount(b.classes[idx], minlength=8), np.full(8, k))
    for d in range(8):
        first = np.flatnonzero(b.train & (b.classes == d))[:k]
        assert np.array_equal(np.sort(idx[b.classes[idx] == d]), first)
    # the labels of test trials are never read
    noisy = b.classes.copy()
    noisy[b.test] = np.random.default_rng(0).integers(0, 8, b.test.sum())
    assert np.array_equal(calibration_trials(noisy, b.train, k), idx)


@pytest.mark.parametrize("k", [1, 4])
def test_few_shot_reads_only_the_labelled_trials(ner, k):
    """Labels, velocity and even the latent of every other trial of B can change: same rotation."""
    a, b = ner["161007"].training_trials(), ner["161014"]
    idx = calibration_trials(b.classes, b.train, k)
    base = few_shot(a.latent, a.classes, b.latent, idx, b.classes[idx])
    assert base.variant == f"few_shot_{k}"
    others = np.setdiff1d(np.arange(len(b.latent)), idx)
    latent = b.latent.copy()
    latent[others] = np.nan
    classes = b.classes.copy()
    classes[others] = np.random.default_rng(0).integers(0, 8, len(others))
    assert np.array_equal(few_shot(a.latent, a.classes, latent, idx, classes[idx]).rotation, base.rotation)
    flipped = b.classes[idx].copy()
    flipped[[0, 1]] = flipped[[1, 0]] if flipped[0] != flipped[1] else (flipped[[0, 1]] + 1) % 8
    if np.bincount(flipped, minlength=8).min() > 0:  # the labels it does read matter
        assert not np.allclose(few_shot(a.latent, a.classes, b.latent, idx, flipped).rotation, base.rotation)


def test_guided_few_shot_ignores_labels_of_unlabelled_trials(ner):
    a, b = ner["161007"].training_trials(), ner["161014"]
    idx = calibration_trials(b.classes, b.train, 1)
    base = few_shot(a.latent, a.classes, b.latent, idx, b.classes[idx], guided=True)
    other = scrambled(b, np.random.default_rng(3))
    again = few_shot(a.latent, a.classes, other.latent, idx, b.classes[idx], guided=True)
    assert np.array_equal(again.rotation, base.rotation) and base.variant == "few_shot_1_guided"


def refuses(match, fn, *args, **kwargs):
    with pytest.raises(InputError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_input_is_refused(ner):
    a, b = ner["161007"].training_trials(), ner["161014"]
    refuses("trial, bin, dim", label_free, a.latent, a.classes, b.latent[0])
    refuses("differs from the source", label_free, a.latent, a.classes, b.latent[:, :30])
    refuses("differs from the source", label_free, a.latent, a.classes, b.latent[..., :2])
    refuses("too few for 8 clusters", label_free, a.latent, a.classes, b.latent[:5])
    refuses("unknown label-free method", label_free, a.latent, a.classes, b.latent, method="magic")
    refuses("no trial", label_free, a.latent[a.classes != 3], a.classes[a.classes != 3], b.latent)
    refuses("integer classes", label_free, a.latent, a.classes[:-1], b.latent)
    nan = b.latent.copy()
    nan[0, 0, 0] = np.nan
    refuses("NaN", label_free, a.latent, a.classes, nan)
    refuses(
        "references need method",
        label_free,
        a.latent,
        a.classes,
        b.latent,
        method="mean",
        references=[(a.latent, a.classes)],
    )
    refuses("only", calibration_trials, b.classes, b.train, 1000)
    refuses("positive integer", calibration_trials, b.classes, b.train, 0)
    idx = calibration_trials(b.classes, b.train, 1)
    refuses("distinct and within", few_shot, a.latent, a.classes, b.latent, idx + 10_000, b.classes[idx])
    refuses("no labelled trial", few_shot, a.latent, a.classes, b.latent, idx[:7], b.classes[idx][:7])
    refuses("direction classes", few_shot, a.latent, a.classes, b.latent, idx, b.classes[idx] + 8)
    assert set(LABEL_FREE_METHODS) >= {"clusters", "mean", "moments", "transport"}


# ----------------------------------------------------------------------------- in the decode matrices
def test_pair_alignment_of_the_matrices_reads_no_test_label_of_the_new_session(ner):
    """What the workflow's matrices call: ``label_free`` (and its consensus) never read B's labels,
    ``few_shot_k`` only B's first k training trials per direction; the scored test trials never."""
    rng = np.random.default_rng(1)
    a, b, other = ner["161007"], ner["161014"], ner["150629"]
    for variant in ("label_free", "label_free_consensus"):
        kept = pair_alignment(a, b, variant, references=[a, b, other]).rotation
        for delete in (False, True):
            again = pair_alignment(a, scrambled(b, rng, delete), variant, references=[a, b, other]).rotation
            np.testing.assert_array_equal(again, kept)
    shots = calibration_trials(b.classes, b.train, 2)
    assert b.train[shots].all() and len(shots) == 16
    # the calibration block: B's trials up to its last shot are labelled (those of a direction already
    # complete are skipped); every later trial, and so every scored test trial, is read unlabelled
    later = np.arange(len(b.classes)) > shots.max()
    assert later[b.test].all()
    noisy = replace(
        b,
        velocity=rng.normal(size=b.velocity.shape),
        classes=np.where(later, rng.integers(0, 8, len(b.classes)), b.classes),
    )
    np.testing.assert_array_equal(
        pair_alignment(a, noisy, "few_shot_2").rotation, pair_alignment(a, b, "few_shot_2").rotation
    )


def test_matrices_of_a_two_cell_group_give_the_consensus_as_nan_with_its_reason(ner):
    cells = [ner["161007"], ner["161014"]]
    scores, _ = cross_decode(cells, [DecoderSpec("linear")], group="pair", alignments=["label_free_consensus", "none"])
    off = scores[scores.pair == "off_diagonal"]
    consensus = off[off.alignment == "label_free_consensus"]
    assert len(consensus) and consensus.value.isna().all() and consensus.note.str.contains("third labelled cell").all()
    assert off.loc[off.alignment == "none", "value"].notna().all()
    with pytest.raises(InputError, match="unknown variant 'few_shot_x'"):
        pair_alignment(cells[0], cells[1], "few_shot_x")


def test_rule_published_alignment_decodes_every_pair_of_the_published_embeddings(tmp_path):
    from pipeline.analysis.published import published_cell
    from pipeline.stages.rules.published_alignment import run
    from tests.support.authors import RESULTS

    out = {"scores": tmp_path / "s.tsv", "figure": tmp_path / "f.png"}
    scores = run(RESULTS, out, alignments=["label_free", "few_shot_1"], methods=["NER"])
    off = scores[(scores.pair == "off_diagonal") & (scores.target == "velocity") & (scores.metric == "r2")]
    assert off.groupby("alignment").size().eq(len(NER_DATES) * (len(NER_DATES) - 1)).all()
    means = off.groupby("alignment").value.mean()
    # benchmarks/bench_labelfree.py: label_free 0.124, few_shot_1 0.739 (mean over the 42 NER pairs)
    assert means["label_free"] == pytest.approx(0.124, abs=0.002) and means["few_shot_1"] == pytest.approx(
        0.739, abs=0.002
    )
    assert out["figure"].stat().st_size > 10_000
    with pytest.raises(InputError, match="Subject"):
        published_cell(tmp_path / "s.tsv")

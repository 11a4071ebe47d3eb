"""Decoders, alignment and cross-decode matrices on hand-made cells with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.linear_model import LinearRegression

from pipeline.analysis.alignment import ALIGNMENTS, align, direction_averages, paper_pick, per_direction_rotations
from pipeline.analysis.crossdecode import KEY_COLUMNS, cross_decode, within_table
from pipeline.analysis.decoding import (
    Cell,
    DecoderSpec,
    accuracy_over_time,
    direction_classes,
    fit,
    fit_velocity,
    integrate,
    score,
    within_session,
)
from pipeline.errors import InputError


def make_cell(
    name, rng, *, n_trials=48, n_bins=12, rotation=None, noise=0.05, year=2015, hemisphere="right", area="M1"
):
    """Center-out reaches with bell-shaped speed and slightly curved paths; latent = (vx, vy, time) + noise.

    The curvature and the time ramp make each direction's average trajectory span all three
    dimensions, so every per-direction Procrustes problem has a unique solution.
    """
    classes = np.arange(n_trials) % 8
    t = np.linspace(0, 1, n_bins)
    angle = np.deg2rad(45.0 * classes)[:, None] + 0.6 * (t - 0.5)[None, :]
    speed = np.sin(np.pi * t) ** 2
    velocity = np.stack([np.cos(angle) * speed, np.sin(angle) * speed], axis=-1)
    latent = np.concatenate([velocity, np.broadcast_to(t[None, :, None], (n_trials, n_bins, 1))], axis=-1)
    latent = latent + noise * rng.standard_normal(latent.shape)
    if rotation is not None:
        latent = latent @ rotation
    train = np.arange(n_trials) < int(0.75 * n_trials)
    session = name.split("/")[0]
    return Cell(
        name,
        latent,
        velocity,
        classes,
        train,
        0.03 * np.arange(n_bins),
        meta=dict(session=session, area=area, subject="S", year=year, hemisphere=hemisphere, method="ner", seed=0),
    )


def test_direction_classes_integrate_and_accuracy_by_hand():
    assert direction_classes(np.array([0, 45, 315, -45, 360, 89.9, np.nan])).tolist() == [0, 1, 7, 7, 0, 2, -1]
    v = np.array([[[1.0, 0.0], [2.0, 1.0], [3.0, -1.0]]])
    assert integrate(v).tolist() == [[[1.0, 0.0], [3.0, 1.0], [6.0, 0.0]]]
    predicted = np.array([[0, 1, 2], [0, 0, 2], [5, 0, 2]])
    np.testing.assert_allclose(accuracy_over_time(predicted, np.array([0, 0, 1])), [200 / 3, 100 / 3, 0.0])


def test_linear_velocity_and_position_r2_by_hand():
    # one latent dimension; training trials lie on v = 2z + 1, the test trial does not
    z = np.array([[[0.0], [1.0]], [[2.0], [3.0]], [[1.0], [2.0]]])
    v = np.concatenate([2 * z + 1, 2 * z + 1], axis=-1)
    v[2] = [[2.0, 2.0], [6.0, 6.0]]  # test trial: prediction (3, 5) per axis
    cell = Cell("s/M1", z, v, np.array([0, 1, 0]), np.array([True, True, False]), np.array([0.0, 0.03]))
    s = within_session(cell, DecoderSpec("linear"))
    assert s["in_sample"].values[("velocity", "r2")] == pytest.approx(1.0)
    assert ("velocity", "r2_swapped") not in s["in_sample"].values
    held = s["held_out"].values
    true, pred = np.array([2.0, 6.0]), np.array([3.0, 5.0])
    assert held[("velocity", "r2")] == pytest.approx(1 - ((true - pred) ** 2).sum() / ((true - true.mean()) ** 2).sum())
    assert held[("velocity", "r2_swapped")] == pytest.approx(
        1 - ((true - pred) ** 2).sum() / ((pred - pred.mean()) ** 2).sum()
    )
    ptrue, ppred = np.cumsum(true), np.cumsum(pred)  # (2, 8) vs (3, 8)
    assert held[("position", "r2")] == pytest.approx(
        1 - ((ptrue - ppred) ** 2).sum() / ((ptrue - ptrue.mean()) ** 2).sum()
    )
    # the velocity half of fit, alone: the same line, fitted on the training trials only
    regressor = fit_velocity(cell, DecoderSpec("linear"))
    np.testing.assert_allclose(regressor.coef_, [[2.0], [2.0]])
    np.testing.assert_allclose(regressor.intercept_, [1.0, 1.0], atol=1e-12)
    np.testing.assert_array_equal(regressor.coef_, fit(cell, DecoderSpec("linear")).velocity.coef_)


def test_direction_decoder_peaks_when_the_reach_is_fastest():
    cell = make_cell("a/M1", np.random.default_rng(0), noise=0.02)
    s = within_session(cell, DecoderSpec("linear"))["held_out"]
    assert s.values[("direction", "peak_accuracy")] == 100.0
    assert s.accuracy[0] < 50  # at the go cue the hand has not moved: directions are indistinguishable
    assert 0.03 <= s.values[("direction", "peak_time_s")] <= 0.3


def test_knn_grid_is_cut_to_the_smallest_training_fold():
    spec = DecoderSpec("knn")
    assert spec.regressor(5480).param_grid["n_neighbors"] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert spec.regressor(100).param_grid["n_neighbors"] == [2, 4, 8, 16, 32, 64]  # folds of 80
    with pytest.raises(InputError, match="knn_neighbors"):
        spec.regressor(2)
    with pytest.raises(InputError, match="decoder"):
        DecoderSpec("svm")


@pytest.mark.parametrize("variant", ALIGNMENTS)
def test_procrustes_recovers_a_known_rotation(variant):
    rng = np.random.default_rng(1)
    q = ortho_group.rvs(3, random_state=2)
    q[:, 0] *= -1  # an improper rotation (reflection): allowed, as scipy's orthogonal Procrustes
    a = make_cell("a/M1", rng, noise=0.0)
    b = make_cell("b/M1", rng, noise=0.0, rotation=q)
    fitted = align(a.latent, a.classes, b.latent, b.classes, variant)
    np.testing.assert_allclose(fitted.rotation, q, atol=1e-10)


def test_paper_pick_rule_and_forced_direction():
    rng = np.random.default_rng(3)
    a, b = make_cell("a/M1", rng), make_cell("b/M1", rng, rotation=ortho_group.rvs(3, random_state=4))
    rotations = per_direction_rotations(
        direction_averages(a.latent, a.classes), direction_averages(b.latent, b.classes)
    )
    pick = paper_pick(rotations, a.latent, a.classes)
    dets = np.linalg.det(rotations)
    # each sign group's candidate is its highest direction (|det| ties); the smaller L1 distance wins
    aligned = np.concatenate([a.latent[a.classes == d] @ rotations[d] for d in range(8)])
    stacked = np.concatenate([a.latent[a.classes == d] for d in range(8)])
    firsts = {int(np.flatnonzero(np.sign(dets) == s)[-1]) for s in (1, -1) if (np.sign(dets) == s).any()}
    assert pick == min(firsts, key=lambda d: np.abs(stacked @ rotations[d] - aligned).sum())
    forced = align(a.latent, a.classes, b.latent, b.classes, "paper", force_direction=5)
    assert forced.direction == 5 and forced.forced
    np.testing.assert_array_equal(forced.rotation, rotations[5])


def test_rotating_the_scored_cell_equals_refitting_on_the_rotated_decoder_cell():
    rng = np.random.default_rng(5)
    a, b = make_cell("a/M1", rng, noise=0.2), make_cell("b/M1", rng, noise=0.2)
    r = ortho_group.rvs(3, random_state=6)
    for kind in ("linear", "knn"):
        spec = DecoderSpec(kind)
        ours = score(fit(a, spec), b, b.test, rotation=r).values
        rotated = Cell(a.name, a.latent @ r, a.velocity, a.classes, a.train, a.bin_time)
        refit = score(fit(rotated, spec), b, b.test).values
        for key in (("velocity", "r2"), ("velocity", "r2_swapped"), ("position", "r2")):
            assert ours[key] == pytest.approx(refit[key], abs=1e-9), (kind, key)
        assert abs(ours[("direction", "peak_accuracy")] - refit[("direction", "peak_accuracy")]) <= 100 / b.test.sum()
    # and the same for a plain sklearn refit: the decoder is an ordinary LinearRegression
    reg = LinearRegression().fit((a.latent @ r)[a.train].reshape(-1, 3), a.velocity[a.train].reshape(-1, 2))
    assert reg.predict(b.latent[b.test].reshape(-1, 3)) == pytest.approx(
        fit(a, DecoderSpec()).velocity.predict(b.latent[b.test].reshape(-1, 3) @ r.T)
    )


def test_leak_free_alignment_never_reads_the_test_cells_test_trial_labels():
    rng = np.random.default_rng(7)
    a = make_cell("a/M1", rng)
    b = make_cell("b/M1", rng, rotation=ortho_group.rvs(3, random_state=8))
    shuffled = b.classes.copy()
    shuffled[b.test] = rng.permutation(8)[shuffled[b.test]]  # corrupt the labels of the scored trials
    b_corrupt = Cell(b.name, b.latent, b.velocity, shuffled, b.train, b.bin_time, b.meta)
    spec = [DecoderSpec("linear")]

    def velocity(cells, variant):
        t = cross_decode(cells, spec, group="g", alignments=[variant])[0]
        sel = (t.train_cell == "a/M1") & (t.test_cell == "b/M1") & (t.metric == "r2") & (t.target == "velocity")
        return float(t.loc[sel, "value"].iloc[0])

    assert velocity([a, b], "leak_free") == velocity([a, b_corrupt], "leak_free")
    assert velocity([a, b], "paper") != velocity([a, b_corrupt], "paper")  # the paper's protocol does read them
    # the variant only ever receives the training trials
    assert not b.training_trials().test.any() and len(b.training_trials().classes) == b.train.sum()


def test_cross_decode_matrix_has_every_cell_and_label():
    rng = np.random.default_rng(9)
    cells = [
        make_cell("s1/M1", rng, year=2015, hemisphere="right"),
        make_cell("s2/M1", rng, year=2016, hemisphere="left"),
        make_cell("s2/PMd", rng, year=2016, hemisphere="left", area="PMd"),
    ]
    specs = [DecoderSpec("linear"), DecoderSpec("knn")]
    scores, acc = cross_decode(cells, specs, group="g")
    assert list(scores.columns[:5]) == ["group", "method", "seed", "decoder", "target"]
    assert set(KEY_COLUMNS) <= set(scores.columns)
    # 9 (train, test) pairs x 3 alignments x 2 decoders x 5 values
    assert len(scores) == 9 * 3 * 2 * 5
    assert scores.groupby(["train_cell", "test_cell", "alignment", "decoder"]).size().eq(5).all()
    diag = scores[scores.pair == "diagonal"]
    assert set(diag.train_cell) == {c.name for c in cells} and (diag.train_cell == diag.test_cell).all()
    assert (diag.rotation_direction == -1).all()
    # the diagonal is the plain held-out decoder, identical under every alignment label
    assert diag.groupby(["train_cell", "decoder", "target", "metric"])["value"].nunique().eq(1).all()
    pair = scores[(scores.train_cell == "s1/M1") & (scores.test_cell == "s2/PMd")].iloc[0]
    assert pair.cross_session and pair.cross_area and pair.cross_hemisphere and pair.cross_year
    pair = scores[(scores.train_cell == "s2/M1") & (scores.test_cell == "s2/PMd")].iloc[0]
    assert not pair.cross_session and pair.cross_area and not pair.cross_year
    paper = scores[(scores.alignment == "paper") & (scores.pair == "off_diagonal")]
    assert paper.rotation_direction.between(0, 7).all()
    assert (scores.evaluation == "held_out").all() and (scores.n_test_trials == 12).all()
    assert set(scores.metric) == {"r2", "r2_swapped", "peak_accuracy", "peak_time_s"}
    assert len(acc) == 9 * 3 * 2 * 12 and acc.accuracy.between(0, 100).all()
    # the same reaches in every cell: decoders transfer
    assert paper[(paper.target == "velocity") & (paper.metric == "r2")].value.min() > 0.8


def test_within_table_labels_in_sample_and_held_out():
    cell = make_cell("a/M1", np.random.default_rng(10))
    scores, acc = within_table([cell], [DecoderSpec("linear")])
    assert set(scores.evaluation) == {"in_sample", "held_out"} and (scores.alignment == "none").all()
    assert set(scores[scores.evaluation == "in_sample"].metric) == {"r2", "peak_accuracy", "peak_time_s"}
    assert (scores[scores.evaluation == "in_sample"].n_test_trials == cell.train.sum()).all()
    assert set(acc.evaluation) == {"in_sample", "held_out"}


def test_bad_cells_are_named():
    rng = np.random.default_rng(11)
    cell = make_cell("a/M1", rng)
    with pytest.raises(InputError, match="a/M1"):
        Cell("a/M1", cell.latent, cell.velocity[:, :-1], cell.classes, cell.train, cell.bin_time)
    with pytest.raises(InputError, match="split"):
        fit(cell.trials(cell.test), DecoderSpec())
    with pytest.raises(InputError, match="alignment"):
        align(cell.latent, cell.classes, cell.latent, cell.classes, "procrustes")

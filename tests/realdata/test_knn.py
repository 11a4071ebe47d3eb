"""The one-query kNN grid search (pipeline.analysis.knn) gives exactly GridSearchCV's numbers.

Exact means ``np.array_equal``: the chosen ``k``, every mean CV score, every fold score, the ranks and
the predictions, on the authors' real embeddings (velocity regression and direction classification)
and on a constructed set full of distance ties (integer grid points, duplicated points).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, NearestNeighbors

import pipeline.analysis.decoding as decoding
from pipeline.analysis.decoding import Cell, DecoderSpec, FittedDecoder, fit, score
from pipeline.analysis.knn import KNeighborsClassifierCV, KNeighborsRegressorCV, auto_algorithm, predict_pair
from tests.support.paths import REAL, requires_real

pytestmark = pytest.mark.xdist_group("knn")  # one pytest worker: its module fixtures run once

RESULTS = REAL / "ner_paper_results"
CV_KEYS = ("mean_test_score", "std_test_score", "rank_test_score", *(f"split{i}_test_score" for i in range(5)))


def assert_same_search(ref: GridSearchCV, ours, X_eval=()):
    """Everything GridSearchCV decides equals ours, bit for bit (nan where a candidate failed)."""
    assert ours.best_params_ == ref.best_params_
    assert ours.best_index_ == ref.best_index_
    assert ours.cv_results_["params"] == ref.cv_results_["params"]
    for key in CV_KEYS:
        assert np.array_equal(ours.cv_results_[key], ref.cv_results_[key], equal_nan=True), key
    assert np.array_equal(ours.mean_test_score, ref.cv_results_["mean_test_score"], equal_nan=True)
    assert ours.best_score_ == ref.best_score_
    assert ours.n_splits_ == ref.n_splits_
    assert ours.best_estimator_.get_params() == ref.best_estimator_.get_params()
    for X in X_eval:
        assert np.array_equal(ours.predict(X), ref.predict(X))


# --- the authors' embeddings ----------------------------------------------------------------------
def small_real_cell() -> Cell:
    """NER Chewie 2016-10-07 M1 (tests/realdata/test_paper_results.py), cut to 60 training and 20 test trials.

    The whole session (5,360 training bins) takes GridSearchCV about 5 s for the two searches; 60
    training trials (2,400 bins, CV folds of 1,920) keep the paper's full grid 2 … 1024 and exercise
    both of sklearn's algorithms (k-d tree up to k = 512, brute force at k = 1024 >= 1,920 // 2).
    """
    from tests.support.authors import authors_cell

    cell = authors_cell("NER", "161007")
    keep = (cell.train & (np.cumsum(cell.train) <= 60)) | (cell.test & (np.cumsum(cell.test) <= 20))
    return cell.trials(keep)


@pytest.fixture(scope="module")
def real_searches():
    """GridSearchCV and ours, regressor (velocity) and classifier (direction), on the cut cell."""
    if not RESULTS.is_dir():
        pytest.skip(f"{RESULTS} is absent (the authors' embeddings)")
    cell = small_real_cell()
    train = cell.training_trials()
    x = train.latent.reshape(-1, 3)
    grid = DecoderSpec("knn")._grid(len(x))
    models = {
        "regressor": (KNeighborsRegressor, KNeighborsRegressorCV, train.velocity.reshape(-1, 2)),
        "classifier": (KNeighborsClassifier, KNeighborsClassifierCV, np.repeat(train.classes, train.latent.shape[1])),
    }
    out = {
        kind: (GridSearchCV(base(), grid, cv=5).fit(x, y), ours(grid, cv=5).fit(x, y))
        for kind, (base, ours, y) in models.items()
    }
    return cell, x, grid, out


@requires_real
@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_search_equals_gridsearchcv_on_a_real_embedding(real_searches, kind):
    cell, x, grid, searches = real_searches
    ref, ours = searches[kind]
    ks = grid["n_neighbors"]
    assert ks == [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    fold = len(x) - len(x) // 5
    assert auto_algorithm(ks[0], fold, 3) == "kd_tree" and auto_algorithm(ks[-1], fold, 3) == "brute"
    held_out = cell.latent[cell.test].reshape(-1, 3)
    assert_same_search(ref, ours, X_eval=(held_out, x))
    assert type(ours.best_estimator_) is type(ref.best_estimator_)


@requires_real
@pytest.mark.realdata
def test_decoder_scores_equal_the_gridsearchcv_decoder_on_a_real_embedding(real_searches, monkeypatch):
    """fit/score through DecoderSpec("knn") (our search + the shared query) = GridSearchCV + two predicts."""
    cell, _, _, searches = real_searches
    spec = DecoderSpec("knn")
    ours = fit(cell, spec)
    assert isinstance(ours.velocity, KNeighborsRegressorCV) and isinstance(ours.direction, KNeighborsClassifierCV)
    for kind, model in (("regressor", ours.velocity), ("classifier", ours.direction)):
        assert_same_search(searches[kind][0], model)
    plain = FittedDecoder(spec, searches["regressor"][0], searches["classifier"][0], cell.name)

    def both(decoder):
        return score(decoder, cell, cell.train, held_out=False), score(decoder, cell, cell.test)

    ours_scores = both(ours)
    monkeypatch.setattr(decoding, "predict_pair", lambda reg, clf, x: (reg.predict(x), clf.predict(x)))
    for mine, ref in zip(ours_scores, both(plain)):
        assert mine.values == ref.values
        assert np.array_equal(mine.accuracy, ref.accuracy)


# --- constructed ties ------------------------------------------------------------------------------
def tied_points(seed=0, n=150):
    """Integer grid points in {0..3}³ (64 sites for 150 points: every neighbourhood is full of equal
    distances) with a block of exact duplicates; targets whose sums depend on the adding order."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 4, size=(n, 3)).astype(float)
    X[::7] = X[1::7][: len(X[::7])]
    y_velocity = rng.normal(size=(n, 2)) * 1e3 + rng.normal(size=(n, 2)) * 1e-3
    y_class = rng.integers(0, 3, size=n)
    return X, y_velocity, y_class, rng.integers(0, 4, size=(60, 3)).astype(float)


def test_distance_ties_still_equal_gridsearchcv():
    X, y_velocity, y_class, X_new = tied_points()
    # ties everywhere (the equality below is not by luck) ...
    dist = NearestNeighbors(n_neighbors=9).fit(X[:120]).kneighbors(X[120:])[0]
    assert (dist[:, 1:] == dist[:, :-1]).any(axis=1).all()
    # ... a k of 1, k-d tree and brute-force k (folds of 120: brute from 60), k = the fold (no k + 1-th
    # neighbour), a k too large for the fold (nan, ranked last), in an unsorted grid
    grid = {"n_neighbors": [4, 1, 2, 3, 8, 16, 32, 59, 60, 100, 120, 121]}
    for base, ours, y in (
        (KNeighborsRegressor, KNeighborsRegressorCV, y_velocity),
        (KNeighborsClassifier, KNeighborsClassifierCV, y_class),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # both warn about the failing k = 241
            ref = GridSearchCV(base(), grid, cv=5).fit(X, y)
            mine = ours(grid, cv=5).fit(X, y)
        assert np.isnan(mine.mean_test_score[-1])
        assert_same_search(ref, mine, X_eval=(X_new, X))
        assert mine.score(X_new, y[: len(X_new)]) == ref.score(X_new, y[: len(X_new)])
    # an all-kd-tree grid, small enough that several k tie in mean score (first one wins, as sklearn)
    grid = {"n_neighbors": [6, 2, 4, 8, 10]}
    for base, ours, y in (
        (KNeighborsRegressor, KNeighborsRegressorCV, y_velocity),
        (KNeighborsClassifier, KNeighborsClassifierCV, y_class),
    ):
        assert_same_search(GridSearchCV(base(), grid, cv=5).fit(X, y), ours(grid, cv=5).fit(X, y), X_eval=(X_new,))


def test_shared_query_of_two_decoders_equals_their_own_predictions():
    X, y_velocity, y_class, X_new = tied_points(seed=1)
    for k_velocity, k_class in ((5, 8), (8, 5), (4, 4), (1, 2)):  # even k: vote ties too
        reg = KNeighborsRegressor(n_neighbors=k_velocity).fit(X, y_velocity)
        clf = KNeighborsClassifier(n_neighbors=k_class).fit(X, y_class)
        for points in (X_new, X, X @ np.eye(3)[::-1]):
            velocity, direction = predict_pair(reg, clf, points)
            assert np.array_equal(velocity, reg.predict(points)) and np.array_equal(direction, clf.predict(points))
    # fitted on different points, or by brute force: each predicts on its own, still equal
    reg = KNeighborsRegressor(n_neighbors=3).fit(X[:100], y_velocity[:100])
    clf = KNeighborsClassifier(n_neighbors=100).fit(X, y_class)
    velocity, direction = predict_pair(reg, clf, X_new)
    assert np.array_equal(velocity, reg.predict(X_new)) and np.array_equal(direction, clf.predict(X_new))


def test_estimators_are_sklearn_compatible():
    grid = {"n_neighbors": [2, 4, 8]}
    for cls, kind in ((KNeighborsRegressorCV, is_regressor), (KNeighborsClassifierCV, is_classifier)):
        est = cls(grid, cv=3)
        assert kind(est)
        assert est.get_params() == {"param_grid": grid, "cv": 3}
        copy = clone(est)
        assert copy is not est and copy.get_params() == est.get_params()
        assert copy.set_params(cv=4).cv == 4 and est.cv == 3
        X, y_velocity, y_class, X_new = tied_points()
        fitted = est.fit(X, y_velocity if kind is is_regressor else y_class)
        assert set(fitted.best_params_) == {"n_neighbors"} and len(fitted.mean_test_score) == 3
        assert not hasattr(clone(fitted), "best_estimator_")
        assert "param_grid" in repr(est)
    assert isinstance(DecoderSpec("knn").regressor(100), KNeighborsRegressorCV)
    assert isinstance(DecoderSpec("knn").classifier(100), KNeighborsClassifierCV)
    with pytest.raises(ValueError, match="n_neighbors"):
        KNeighborsRegressorCV({"weights": ["uniform"]}).fit(*tied_points()[:2])

"""kNN decoders whose ``n_neighbors`` grid search costs one neighbour query per CV fold.

:class:`KNeighborsRegressorCV` and :class:`KNeighborsClassifierCV` give exactly — bit for bit — what
``GridSearchCV(KNeighborsRegressor(), {"n_neighbors": grid}, cv=cv)`` (resp. the classifier) gives
with every other setting at sklearn's default: the same CV splits (``check_cv(cv, y,
classifier=...)``), the same fold scores (the estimator's default ``score``: ``r2_score``
uniform average / ``accuracy_score``), the same means (``np.average``), ranks (``rankdata(-mean,
"min")``, failures ranked last), the same choice (``rank_test_score.argmin()``: the first candidate
of the grid among equal means) and the same refit (a plain sklearn estimator on all data).

GridSearchCV refits and queries a kNN model for every ``k`` of the grid in every fold. Here, per fold:

* the ``k`` values that sklearn's ``algorithm="auto"`` serves with a k-d tree (``k < n_fit // 2``
  for our low-dimensional embeddings) share **one** query of the validation fold at
  ``k_max + 1``, made by a real ``KNeighbors*`` estimator fitted on the training fold (same tree,
  same query code). The prediction for a smaller ``k`` is made from the first ``k`` sorted neighbours
  with sklearn's own arithmetic: regression ``np.mean(_y[neigh_ind[:, :k]], axis=1)`` over the
  whole fold at once; classification the majority class, ties to the lowest class index
  (``scipy.stats.mode``, what ``KNeighborsClassifier.predict`` uses outside its brute-force path).
* a query row whose sorted distances hold a tie among its first ``k + 1`` neighbours (at the ``k``
  boundary the neighbour *set* is then the tree's arbitrary pick; inside the set the summation order
  is) is recomputed with a real sklearn estimator fitted on the fold with ``n_neighbors=k``: such
  rows equal sklearn's by construction. A k-d tree query treats every row on its own, so asking for
  those rows alone gives the rows sklearn computes for the whole fold. Rows without such a tie have
  one set of ``k`` nearest neighbours in one sorted order, whatever ``k`` the tree was asked for.
* ``k`` values sklearn serves by brute force (``k >= n_fit // 2``, or more than 15 features; its
  brute-force classifier goes through ``ArgKminClassMode``) and ``k`` larger than the training fold
  (a failed fit, scored ``nan`` as GridSearchCV's ``error_score``) are fitted and scored by a real
  sklearn estimator, as GridSearchCV does.

:func:`predict_pair` predicts a fitted regressor and classifier on the same points with one shared
neighbour query, under the same rules (bit-identical to calling both ``predict`` methods).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import check_cv
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

__all__ = ["KNeighborsClassifierCV", "KNeighborsRegressorCV", "auto_algorithm", "predict_pair"]

#: sklearn's ``algorithm="auto"`` uses brute force above this many features (sklearn.neighbors._base)
_TREE_MAX_FEATURES = 15


def auto_algorithm(n_neighbors: int, n_fit: int, n_features: int) -> str:
    """The algorithm sklearn's ``algorithm="auto"`` picks for a default (Euclidean) kNN estimator.

    ``NeighborsBase._fit``: brute force for more than 15 features or ``n_neighbors >= n_fit // 2``,
    else a k-d tree. It only proposes which ``k`` share a query: the fitted estimators' own
    ``_fit_method`` decides, and anything not served by a k-d tree goes through plain sklearn.
    """
    if n_features > _TREE_MAX_FEATURES or n_neighbors >= n_fit // 2:
        return "brute"
    return "kd_tree"


def _first_tie(dist: np.ndarray) -> np.ndarray:
    """Per row, the first position ``i`` with ``dist[i] == dist[i + 1]`` (sorted rows); ``inf`` if none.

    A row's first ``k`` neighbours are well defined and in a well-defined order exactly when its first
    ``k + 1`` distances are all distinct, i.e. when ``first_tie >= k``.
    """
    out = np.full(len(dist), np.inf)
    if dist.shape[1] < 2:
        return out
    equal = dist[:, 1:] == dist[:, :-1]
    has = equal.any(axis=1)
    out[has] = np.argmax(equal[has], axis=1)
    return out


def _mean_prediction(y_fit: np.ndarray, neigh_ind: np.ndarray) -> np.ndarray:
    """``KNeighborsRegressor.predict`` (uniform weights) from its neighbour indices, same arithmetic."""
    _y = y_fit.reshape((-1, 1)) if y_fit.ndim == 1 else y_fit
    y_pred = np.mean(_y[neigh_ind], axis=1)
    return y_pred.ravel() if y_fit.ndim == 1 else y_pred


class _VoteCounter:
    """Class counts of the first ``k`` neighbours of every row, for increasing ``k`` (one pass in all)."""

    def __init__(self, codes: np.ndarray, n_classes: int):
        self.codes, self.n_classes = codes, n_classes
        self.offset = (np.arange(len(codes)) * n_classes)[:, None]
        self.counts = np.zeros(len(codes) * n_classes, dtype=np.int64)
        self.k = 0

    def mode(self, k: int) -> np.ndarray:
        """Per row, the most frequent class code among the first ``k``; ties to the lowest code."""
        if k < self.k:  # grids are not required to be sorted
            self.counts[:] = 0
            self.k = 0
        block = self.codes[:, self.k : k] + self.offset
        self.counts += np.bincount(block.ravel(), minlength=self.counts.size)
        self.k = k
        return np.argmax(self.counts.reshape(-1, self.n_classes), axis=1)  # first maximum = lowest code


def _tree_predictions(est, X_train, y_train, X_query: np.ndarray, ks, kind: str) -> dict[int, np.ndarray]:
    """Predictions at every ``k`` in ``ks`` from one k-d tree query of ``X_query``.

    ``est`` is a real ``KNeighbors*`` estimator fitted on ``X_train, y_train`` that uses a k-d tree;
    ``kind`` ``"regressor"`` or ``"classifier"``. Rows with a distance tie among their first ``k + 1``
    neighbours are recomputed by a real estimator with ``n_neighbors=k`` fitted on the same data (see
    the module docstring).
    """
    ks = list(ks)
    n_fit = est.n_samples_fit_
    query = min(max(ks) + 1, n_fit)
    dist, ind = est.kneighbors(X_query, n_neighbors=query)
    first_tie = _first_tie(dist)
    out = {}
    if kind == "regressor":
        _y = est._y.reshape((-1, 1)) if est._y.ndim == 1 else est._y
        # sklearn's `_y[neigh_ind]` for every k at once: the first k columns of one gather, and
        # np.mean over them adds the same numbers in the same order as over a fresh (n, k, outputs) copy
        gathered = _y[ind]
    else:
        votes = _VoteCounter(est._y[ind], len(est.classes_))
    for k in sorted(set(ks)):
        tied = np.flatnonzero(first_tie < k)
        if kind == "regressor":
            pred = np.mean(gathered[:, :k], axis=1)
            if est._y.ndim == 1:
                pred = pred.ravel()
        else:
            pred = est.classes_.take(np.asarray(votes.mode(k), dtype=np.intp))
        if len(tied):
            exact = clone(est).set_params(n_neighbors=k).fit(X_train, y_train)
            if _uses_tree(exact):  # a k-d tree answers each row on its own
                pred[tied] = exact.predict(X_query[tied])
            else:  # (not with sklearn's present rule) the whole fold, as GridSearchCV
                pred = exact.predict(X_query)
        out[k] = pred
    return out


def _uses_tree(est) -> bool:
    """Whether a fitted sklearn kNN estimator answers queries with its k-d tree."""
    return getattr(est, "_fit_method", None) == "kd_tree"


class _KNeighborsSearchCV(BaseEstimator):
    """Shared code of the regressor and classifier (not for direct use)."""

    _base: type = KNeighborsRegressor
    _kind = "regressor"

    def __init__(self, param_grid=None, cv=5):
        self.param_grid = param_grid
        self.cv = cv

    # -- parameters ----------------------------------------------------------------------------
    def _candidates(self) -> list[int]:
        grid = self.param_grid if self.param_grid is not None else {"n_neighbors": [5]}
        if set(grid) != {"n_neighbors"}:
            raise ValueError(f"param_grid may only search 'n_neighbors', got {sorted(grid)}")
        ks = list(grid["n_neighbors"])
        if not ks or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and k > 0 for k in ks):
            raise ValueError(f"n_neighbors must be a non-empty list of positive integers, got {ks}")
        return [int(k) for k in ks]

    # -- fitting -------------------------------------------------------------------------------
    def _fold_scores(self, X_train, y_train, X_test, y_test, ks) -> dict[int, float]:
        """Scores of every ``k`` on one fold, as GridSearchCV's ``_fit_and_score`` gets them."""
        n_fit, n_features = len(X_train), X_train.shape[1]
        scores: dict[int, float] = {}
        shared = self._kind == "regressor" or np.ndim(y_train) == 1  # multi-output votes: plain sklearn
        tree_ks = [k for k in ks if shared and k <= n_fit and auto_algorithm(k, n_fit, n_features) == "kd_tree"]
        for k in ks:
            if k in tree_ks:
                continue
            try:  # a real estimator, scored by its own `score`, as GridSearchCV
                est = self._base(n_neighbors=k).fit(X_train, y_train)
                scores[k] = float(est.score(X_test, y_test))
            except ValueError as err:  # k > fold: GridSearchCV's error_score=np.nan
                warnings.warn(
                    f"n_neighbors={k} failed on a CV fold of {n_fit} samples and scores nan: {err}",
                    UserWarning,
                    stacklevel=3,
                )
                scores[k] = np.nan
        if tree_ks:
            est = self._base(n_neighbors=max(tree_ks)).fit(X_train, y_train)
            if _uses_tree(est):
                for k, pred in _tree_predictions(est, X_train, y_train, X_test, tree_ks, self._kind).items():
                    scores[k] = float(self._score_function(y_test, pred))
            else:  # sklearn chose otherwise than auto_algorithm expects: plain sklearn for every k
                for k in tree_ks:
                    scores[k] = float(self._base(n_neighbors=k).fit(X_train, y_train).score(X_test, y_test))
        return scores

    def fit(self, X, y):
        """Search the grid with cross-validation, then refit the best ``k`` on all of ``X, y``."""
        ks = self._candidates()
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (samples, features), got shape {X.shape}")
        cv = check_cv(self.cv, y, classifier=is_classifier(self))
        splits = list(cv.split(X, y))
        per_fold = []
        for train, test in splits:
            per_fold.append(
                self._fold_scores(
                    _safe_indexing(X, train),
                    _safe_indexing(y, train),
                    _safe_indexing(X, test),
                    _safe_indexing(y, test),
                    ks,
                )
            )
        # GridSearchCV: (candidate, split) scores -> np.average -> rankdata(min) -> argmin
        array = np.array([[fold[k] for fold in per_fold] for k in ks], dtype=np.float64).reshape(len(ks), len(splits))
        means = np.average(array, axis=1)
        if not np.isfinite(means).all():
            warnings.warn(f"One or more of the test scores are non-finite: {means}", UserWarning, stacklevel=2)
        if np.isnan(means).all():
            rank = np.ones_like(means, dtype=np.int32)
        else:
            ranked = np.nan_to_num(means, nan=np.nanmin(means) - 1)
            rank = rankdata(-ranked, method="min").astype(np.int32, copy=False)
        results = {
            "params": [{"n_neighbors": k} for k in ks],
            "param_n_neighbors": np.ma.MaskedArray(np.array(ks, dtype=object), mask=False),
        }
        for i in range(len(splits)):
            results[f"split{i}_test_score"] = array[:, i]
        results["mean_test_score"] = means
        results["std_test_score"] = np.sqrt(np.average((array - means[:, np.newaxis]) ** 2, axis=1))
        results["rank_test_score"] = rank
        self.cv_results_ = results
        self.n_splits_ = len(splits)
        self.best_index_ = int(rank.argmin())
        self.best_score_ = means[self.best_index_]
        self.best_params_ = results["params"][self.best_index_]
        self.best_estimator_ = self._base(**self.best_params_).fit(X, y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        """``best_estimator_.predict``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @property
    def mean_test_score(self) -> np.ndarray:
        """``cv_results_["mean_test_score"]``: mean CV score of every grid value, in grid order."""
        check_is_fitted(self, "cv_results_")
        return self.cv_results_["mean_test_score"]


class KNeighborsRegressorCV(RegressorMixin, _KNeighborsSearchCV):
    """``GridSearchCV(KNeighborsRegressor(), param_grid, cv=cv)``, bit-identical, one query per fold.

    Args:
        param_grid: ``{"n_neighbors": [k, ...]}`` (the only parameter searched); candidates are tried
            in this order and the first of equal mean scores wins, as GridSearchCV.
        cv: folds or a splitter, as GridSearchCV (``KFold`` for an int).

    Attributes after ``fit``: ``best_params_``, ``best_score_``, ``best_index_``, ``cv_results_`` (the
    GridSearchCV keys ``params``, ``param_n_neighbors``, ``split{i}_test_score``, ``mean_test_score``,
    ``std_test_score``, ``rank_test_score``; no timings), ``mean_test_score``, ``best_estimator_`` (a
    plain ``KNeighborsRegressor(n_neighbors=best)`` fitted on all data), ``n_splits_``.
    """

    _base = KNeighborsRegressor
    _kind = "regressor"

    @staticmethod
    def _score_function(y_true, y_pred):
        return r2_score(y_true, y_pred)  # RegressorMixin.score


class KNeighborsClassifierCV(ClassifierMixin, _KNeighborsSearchCV):
    """``GridSearchCV(KNeighborsClassifier(), param_grid, cv=cv)``, bit-identical, one query per fold.

    As :class:`KNeighborsRegressorCV` (``StratifiedKFold`` for an int ``cv``), plus ``classes_``,
    ``predict_proba``.
    """

    _base = KNeighborsClassifier
    _kind = "classifier"

    @staticmethod
    def _score_function(y_true, y_pred):
        return accuracy_score(y_true, y_pred)  # ClassifierMixin.score

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    def predict_proba(self, X):
        """``best_estimator_.predict_proba``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)


def _fitted_tree_estimator(model):
    """The plain sklearn kNN estimator behind ``model`` (one of ours, or a plain default kNN model) when
    it predicts through a k-d tree, else None."""
    est = (
        model.best_estimator_ if isinstance(model, _KNeighborsSearchCV) and hasattr(model, "best_estimator_") else model
    )
    if (
        isinstance(est, (KNeighborsRegressor, KNeighborsClassifier))
        and _uses_tree(est)
        and est.get_params()["weights"] == "uniform"
        and est.effective_metric_ == "euclidean"
        and est.get_params()["leaf_size"] == 30
        and not getattr(est, "outputs_2d_", False)
    ):
        return est
    return None


def predict_pair(regressor, classifier, X) -> tuple[np.ndarray, np.ndarray]:
    """``(regressor.predict(X), classifier.predict(X))``, bit-identical, with one neighbour query.

    When both are default kNN models (or our searches of them) fitted on the same points through a
    k-d tree, one query of ``X`` at ``max(k) + 1`` serves both (the two trees are the same tree: same
    points, same leaf size); otherwise each model predicts on its own.
    """
    reg, clf = _fitted_tree_estimator(regressor), _fitted_tree_estimator(classifier)
    X = np.asarray(X)
    if reg is None or clf is None or reg._fit_X.shape != clf._fit_X.shape or not np.array_equal(reg._fit_X, clf._fit_X):
        return regressor.predict(X), classifier.predict(X)
    k_reg, k_clf = reg.n_neighbors, clf.n_neighbors
    # one query on the larger model's tree; the classifier's neighbours come from the same query
    host = reg if k_reg >= k_clf else clf
    query = min(max(k_reg, k_clf) + 1, host.n_samples_fit_)
    dist, ind = host.kneighbors(X, n_neighbors=query)
    first_tie = _first_tie(dist)
    velocity = _mean_prediction(reg._y, np.ascontiguousarray(ind[:, :k_reg]))
    tied = np.flatnonzero(first_tie < k_reg)
    if len(tied):
        velocity[tied] = reg.predict(X[tied])
    codes = clf._y[ind[:, :k_clf]]
    direction = clf.classes_.take(np.asarray(_VoteCounter(codes, len(clf.classes_)).mode(k_clf), dtype=np.intp))
    tied = np.flatnonzero(first_tie < k_clf)
    if len(tied):
        direction[tied] = clf.predict(X[tied])
    return velocity, direction

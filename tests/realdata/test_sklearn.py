"""The embedding methods as scikit-learn estimators: parameters, clone, Pipeline and GridSearchCV on the
real Chewie 2016-10-07 M1 bins, and scikit-learn's own estimator checks (each skipped check listed with
its reason)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import pipeline as ner
from pipeline.embed.methods import METHODS, get_method
from tests.support.paths import requires_real


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_is_a_clonable_sklearn_transformer(name):
    cls = get_method(name)
    model = cls(seed=3)
    params = model.get_params(deep=True)
    assert params == model.get_params(deep=False) and params["seed"] == 3
    copy = clone(model)
    assert type(copy) is cls and copy is not model and copy.get_params() == params
    assert copy.set_params(seed=5) is copy and copy.seed == 5 and model.seed == 3
    assert repr(model).startswith(f"{cls.__name__}(") and "seed=3" in repr(model)
    with pytest.raises(NotFittedError):
        model.transform(np.zeros((4, 3), dtype=np.float32))
    assert getattr(ner, cls.__name__) is cls  # the notebook face exports it


@pytest.fixture(scope="module")
def chewie_bins(chewie_prepared):
    """Real M1 bins of the training trials with the movement labels (10 vx, 10 vy, direction)."""
    from pipeline.data.store import as_object_strings, open_store
    from pipeline.embed.fit import area_inputs
    from pipeline.preprocess.labels import movement_labels

    ds = open_store(chewie_prepared, layout="prepared")
    train = as_object_strings(ds["split"].values) == "train"
    x = area_inputs(ds, "M1")[train]
    y = movement_labels(ds)[train]
    return x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])


@requires_real
def test_methods_work_inside_pipeline_and_gridsearchcv_on_real_data(chewie_bins):
    """An embedding followed by a linear velocity decoder is one sklearn estimator: GridSearchCV picks
    its parameters by held-out R² on contiguous folds (the labels pass through to the embedding)."""
    x, y = chewie_bins
    folds = KFold(n_splits=2, shuffle=False)
    search = GridSearchCV(
        Pipeline([("embed", ner.PCA()), ("decode", LinearRegression())]),
        {"embed__n_components": [1, 3, 8]},
        cv=folds,
        scoring="r2",
    )
    search.fit(x, y[:, :2])
    means = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(means)) and search.best_params_ == {"embed__n_components": 8}
    assert means[0] < means[1] < means[2]  # more principal components keep more of the velocity

    model = Pipeline([("scale", StandardScaler()), ("embed", ner.NER(max_iterations=50, seed=0))])
    search = GridSearchCV(
        model,
        {"embed__temperature": [0.5, 1.0]},
        cv=folds,
        scoring=lambda est, X, Y: float(
            LinearRegression().fit(est.transform(X), Y[:, :2]).score(est.transform(X), Y[:, :2])
        ),
    )
    search.fit(x, y)
    assert set(search.best_params_) == {"embed__temperature"}
    z = search.best_estimator_.transform(x)
    assert z.shape == (len(x), 3) and z.dtype == np.float32
    again = clone(search.best_estimator_).fit(x, y)  # same parameters, same seed: the same embedding
    np.testing.assert_array_equal(again.transform(x), z)


# --- scikit-learn's estimator checks ----------------------------------------------------------------
#: instances the checks can fit quickly: short training; the labelled methods read y's only column
#: (the checks pass one-column targets) as direction / label, NER searches positives along it
CHECKED = [
    ner.PCA(n_components=2),
    ner.DPCA(n_components=2, direction_column=0),
    ner.UMAP(n_neighbors=5, n_epochs=10),
    ner.UMAPLabels(n_neighbors=5, n_epochs=10, label_column=0, protocol="transform"),
    ner.NER(max_iterations=3, batch_size=8, angle_column=None, search_columns=(0,)),
    ner.CEBRA(max_iterations=3, batch_size=8),
    ner.PiVAE(output_dimension=1, epochs=1, batch_size=8, validation_fraction=0.0),
]

_LABELS_AT_TRANSFORM = (
    "piVAE embeds through its posterior q(z | x, u), which needs the labels of the bins "
    "it embeds (uses_labels_at_transform): transform(X) without y is refused"
)
_TRIALS = (
    "dPCA averages each direction's trials: fit needs the trial structure (lengths=...), which the "
    "checks' plain (X, y) cannot give"
)
#: method name -> {check: why it does not apply}; every other check of scikit-learn passes
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "pivae": dict.fromkeys(
        [
            "check_dict_unchanged",
            "check_dtype_object",
            "check_estimators_dtypes",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_fit_idempotent",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_preserve_dtypes",
        ],
        _LABELS_AT_TRANSFORM,
    ),
    "dpca": dict.fromkeys(
        [
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_positive_only_tag_during_fit",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_nan_inf",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_preserve_dtypes",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1sample",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
        ],
        _TRIALS,
    ),
}


def _expected(estimator) -> dict[str, str]:
    return EXPECTED_FAILURES.get(estimator.name, {})


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)

"""kNN decoding: plain ``GridSearchCV`` against :mod:`pipeline.analysis.knn`'s one-query grid search, side by side.

On one of the authors' real embeddings (``../shared/data/real/ner_paper_results``; NER, Chewie
2016-10-07 M1 by default: 5,360 training bins in 3-D, the paper's grid 2, 4, …, 1024, 5-fold CV):

* the velocity regressor and the direction classifier search, each timed as plain
  ``GridSearchCV(KNeighbors*(), grid, cv=5)`` and as ``KNeighbors*CV(grid, cv=5)``, with the ratio
  and a check that the chosen ``k``, every mean CV score and the held-out predictions are identical;
* ``within_session`` (fit, in-sample and held-out scores) of the ``linear`` and ``knn`` decoders,
  ``before`` (GridSearchCV, one predict per decoder) and ``now``, and whether the scores are identical;
* with ``--cross``: ``cross_decode`` of a 6-cell group (CEBRA-3D, the 6 sessions of 134–167
  training trials), per decoder, before and now, and whether both tables are identical (slow: the
  ``knn`` "before" takes about a minute).

BLAS runs single-threaded (``--blas-threads 1``), as in the workflow, where Snakemake sets
``OPENBLAS_NUM_THREADS`` to the decode rules' ``threads: 1``. Wall times are best of ``--repeats``.

    python -m benchmarks.bench_decoding [--method NER] [--date 161007] [--repeats 1] [--cross]
        [--blas-threads 1] [--data ../shared/data/real/ner_paper_results]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from threadpoolctl import threadpool_limits

import pipeline.analysis.decoding as decoding
from benchmarks.timing import best_of
from pipeline.analysis.crossdecode import cross_decode
from pipeline.analysis.decoding import DecoderSpec, within_session
from pipeline.analysis.knn import KNeighborsClassifierCV, KNeighborsRegressorCV
from tests.support.authors import authors_cell

REAL = Path(os.environ.get("NER_REAL_DATA", Path(__file__).resolve().parents[1].parent / "shared/data/real"))
RESULTS = REAL / "ner_paper_results"
CROSS_GROUP = ("CEBRA3D", ("150629", "150630", "160929", "161005", "161006", "161007"))


@contextlib.contextmanager
def gridsearchcv_decoders():
    """The decoders as they were: GridSearchCV searches, velocity and direction predicted separately."""

    def regressor(spec, n):
        return (
            decoding.LinearRegression()
            if spec.kind == "linear"
            else GridSearchCV(KNeighborsRegressor(), spec._grid(n), cv=spec.cv)
        )

    def classifier(spec, n):
        return (
            decoding.LogisticRegression(max_iter=spec.logistic_max_iter)
            if spec.kind == "linear"
            else GridSearchCV(KNeighborsClassifier(), spec._grid(n), cv=spec.cv)
        )

    with (
        mock.patch.object(DecoderSpec, "regressor", regressor),
        mock.patch.object(DecoderSpec, "classifier", classifier),
        mock.patch.object(decoding, "predict_pair", lambda reg, clf, x: (reg.predict(x), clf.predict(x))),
    ):
        yield


def report(label, t_ref, t_ours, same, names=("GridSearchCV", "ours")):
    print(
        f"{label:<46} {names[0]} {t_ref:7.2f} s   {names[1]} {t_ours:7.2f} s   ratio {t_ref / t_ours:5.1f}x   "
        f"identical: {same}"
    )


def same_scores(a: dict, b: dict) -> bool:
    return all(a[e].values == b[e].values and np.array_equal(a[e].accuracy, b[e].accuracy) for e in a)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="NER", choices=["NER", "CEBRA3D"])
    ap.add_argument("--date", default="161007")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--cross", action="store_true", help="also time cross_decode of a 6-cell group")
    ap.add_argument("--data", type=Path, default=RESULTS)
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data} is absent: the benchmark needs the authors' embeddings")
    warnings.simplefilter("ignore")  # lbfgs at the paper's max_iter
    with threadpool_limits(args.blas_threads):
        cell = authors_cell(args.method, args.date, args.data)
        train = cell.training_trials()
        x = train.latent.reshape(-1, train.latent.shape[-1])
        held_out = cell.latent[cell.test].reshape(-1, x.shape[1])
        grid = DecoderSpec("knn")._grid(len(x))
        print(
            f"{args.method} Chewie {args.date} M1: {len(x):,} training bins, {len(held_out):,} held-out bins, "
            f"dim {x.shape[1]}, grid {grid['n_neighbors'][0]}..{grid['n_neighbors'][-1]}, 5-fold; "
            f"BLAS threads {args.blas_threads}; best of {args.repeats}"
        )
        for label, base, ours, y in (
            (
                "velocity KNeighborsRegressor search",
                KNeighborsRegressor,
                KNeighborsRegressorCV,
                train.velocity.reshape(-1, 2),
            ),
            (
                "direction KNeighborsClassifier search",
                KNeighborsClassifier,
                KNeighborsClassifierCV,
                np.repeat(train.classes, train.latent.shape[1]),
            ),
        ):
            t_ref, ref = best_of(lambda: GridSearchCV(base(), grid, cv=5).fit(x, y), args.repeats)
            t_ours, mine = best_of(lambda: ours(grid, cv=5).fit(x, y), args.repeats)
            same = (
                ref.best_params_ == mine.best_params_
                and np.array_equal(ref.cv_results_["mean_test_score"], mine.mean_test_score)
                and np.array_equal(ref.predict(held_out), mine.predict(held_out))
            )
            report(f"{label} (best k {mine.best_params_['n_neighbors']})", t_ref, t_ours, same)

        for kind in ("linear", "knn"):
            with gridsearchcv_decoders():
                t_ref, ref = best_of(lambda: within_session(cell, DecoderSpec(kind)), args.repeats)
            t_ours, mine = best_of(lambda: within_session(cell, DecoderSpec(kind)), args.repeats)
            report(f"within_session, {kind}", t_ref, t_ours, same_scores(ref, mine), names=("before", "now"))

        if args.cross:
            method, dates = CROSS_GROUP
            cells = [authors_cell(method, d, args.data) for d in dates]
            for kind in ("linear", "knn"):
                with gridsearchcv_decoders():
                    t_ref, ref = best_of(lambda: cross_decode(cells, [DecoderSpec(kind)], group="g"), 1)
                t_ours, mine = best_of(lambda: cross_decode(cells, [DecoderSpec(kind)], group="g"), 1)
                report(
                    f"cross_decode, {method} 6 cells, {kind}",
                    t_ref,
                    t_ours,
                    ref[0].equals(mine[0]) and ref[1].equals(mine[1]),
                    names=("before", "now"),
                )


if __name__ == "__main__":
    main()

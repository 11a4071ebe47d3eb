"""Straight versus curved reaches: the paper's maze analysis (NER_METHOD.md §4 last paragraph, §6.2, §7.4).

The maze recordings (NLB MC_Maze layout, DANDI 000128/000138-000140) are prepared a second time with
the paper's maze settings (5 ms bins, Gaussian smoothing sd 50 ms, -50 ... +450 ms around movement
onset; config ``maze.preprocessing``), into ``results/maze/prepared/{session}.zarr``.

A **subset** (config ``maze.subsets.<name>``; :mod:`pipeline.preprocess.subsets` selects it) is a set of maze
*conditions* ``(trial_type, trial_version)``: the trials of the listed ``trial_types`` whose version
is in ``versions``. Version 0 is the straight reach without a barrier; versions >= 1 reach around
barriers (curved). The paper's subsets are the six straight conditions, straight-curve pairs of one
maze (``versions: [0, 1]``) and curve-curve pairs (two curved conditions). Each subset is its own
experiment: NER and CEBRA are trained on its trials only (M1 and PMd units pooled, as the paper's
182 units), with the paper's chronological 80/20 split *within the subset*, and scored by

* in-sample and held-out linear **velocity/position R²** (:mod:`pipeline.analysis.decoding`, as §5.1:
  decoder fitted on the training trials; held-out adds the paper's swapped-argument variant);
* **separation** of the conditions' latent trajectories (:func:`separation`):

  ``condition_accuracy``
      cross-validated accuracy (stratified k-fold over trials, k <= 5) of a multinomial logistic
      regression that names a trial's condition from its latent trajectory (the trajectory averaged
      in :data:`SEGMENTS` equal time segments of the window, standardised); ``chance_accuracy`` is
      the share of the most common condition;
  ``straight_curved_accuracy``
      the same with two classes, straight vs curved (subsets that hold both);
  ``distance_ratio``
      the mean over condition pairs of the time-averaged Euclidean distance between the two
      condition-mean trajectories, divided by the mean distance of a trial's trajectory from its own
      condition mean (the within-condition spread). Scale-free; > 1 means that condition averages lie
      farther apart than single trials scatter around them.

Both measures use every trial of the subset (training trials included: the encoder saw their
labels, as the paper's Fig. 8 plots do), latents are the embeddings as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from os import PathLike

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.analysis.decoding import Cell, DecoderSpec, within_session
from pipeline.data.store import as_object_strings, open_store, validate_embedding
from pipeline.errors import InputError

__all__ = ["SEGMENTS", "condition_labels", "maze_scores", "separation", "subset_table"]

#: time segments of the window whose latent means are the features of the condition classifier
SEGMENTS = 10


def condition_labels(trial_type: np.ndarray, trial_version: np.ndarray) -> np.ndarray:
    """``"type/version"`` string per trial (e.g. ``"38/0"``)."""
    return np.array([f"{int(t)}/{int(v)}" for t, v in zip(trial_type, trial_version)], dtype=object)


def _features(latent: np.ndarray, segments: int = SEGMENTS) -> np.ndarray:
    """``(trial, segments * dim)``: the trajectory's mean in each of ``segments`` equal time segments."""
    parts = np.array_split(np.arange(latent.shape[1]), min(segments, latent.shape[1]))
    return np.concatenate([latent[:, idx].mean(axis=1) for idx in parts], axis=1)


def _cv_accuracy(features: np.ndarray, classes: np.ndarray, seed: int) -> float:
    """Stratified k-fold (k = min(5, smallest class)) accuracy of a standardised multinomial logistic
    regression; NaN with fewer than two classes or a class of one trial."""
    _, counts = np.unique(classes, return_counts=True)
    if len(counts) < 2 or counts.min() < 2:
        return float("nan")
    folds = StratifiedKFold(n_splits=int(min(5, counts.min())), shuffle=True, random_state=int(seed))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, features, classes, cv=folds, scoring="accuracy").mean())


def separation(latent: np.ndarray, conditions: np.ndarray, straight: np.ndarray, *, seed: int = 0) -> dict:
    """Separation of condition trajectories (module docstring): ``condition_accuracy``,
    ``chance_accuracy``, ``straight_curved_accuracy`` (NaN unless both kinds are present) and
    ``distance_ratio`` (NaN with one condition).

    Args:
        latent: ``(trial, bin, dim)`` latents.
        conditions: ``(trial,)`` condition label of each trial.
        straight: ``(trial,)`` True for straight reaches.
        seed: seed of the cross-validation folds.
    """
    latent = np.asarray(latent, dtype=np.float64)
    conditions = np.asarray(conditions).astype(str)
    straight = np.asarray(straight, dtype=bool)
    features = _features(latent)
    names, counts = np.unique(conditions, return_counts=True)
    out = {
        "condition_accuracy": _cv_accuracy(features, conditions, seed),
        "chance_accuracy": float(counts.max() / counts.sum()),
        "straight_curved_accuracy": (
            _cv_accuracy(features, straight, seed) if straight.any() and (~straight).any() else float("nan")
        ),
    }
    means = {c: latent[conditions == c].mean(axis=0) for c in names}  # (bin, dim) each
    spread = np.mean([np.linalg.norm(latent[conditions == c] - means[c], axis=-1).mean() for c in names])
    between = [np.linalg.norm(means[a] - means[b], axis=-1).mean() for a, b in combinations(names, 2)]
    out["distance_ratio"] = float(np.mean(between) / spread) if between and spread > 0 else float("nan")
    return out


def _subset_cell(embedding: xr.Dataset, prepared: xr.Dataset, source: str) -> Cell:
    """A decoding cell of a subset embedding: velocity of its trials from the maze prepared store."""
    trials = embedding["trial"].values
    missing = np.setdiff1d(trials, prepared["trial"].values)
    if missing.size:
        raise InputError(source, "trial", f"trials {missing[:5].tolist()} are not in the maze prepared store")
    velocity = np.asarray(prepared["velocity"].sel(trial=trials).values, dtype=np.float64)
    if not np.isfinite(velocity).all():
        raise InputError(source, "velocity", "decoding needs finite hand velocity in every bin")
    attrs = embedding.attrs
    return Cell(
        name=f"{attrs['session']}/{attrs['subset']}",
        latent=np.asarray(embedding["latent"].values, dtype=np.float64),
        velocity=velocity,
        classes=np.full(len(trials), -1),
        train=as_object_strings(embedding["split"].values) == "train",
        bin_time=np.asarray(embedding["bin_time"].values, dtype=np.float64),
        meta={"session": attrs["session"], "method": attrs["method"], "seed": int(attrs["seed"])},
    )


def subset_table(
    embedding_path: str | PathLike, prepared_path: str | PathLike, decoders: Sequence[str] = ("linear",)
) -> pd.DataFrame:
    """Tidy scores of one subset embedding: R² per decoder and evaluation, and the separation measures.

    Columns: ``method, seed, session, subset, area, n_trials, n_conditions, decoder, evaluation,
    target, metric, value, note`` (separation rows: decoder ``logistic``, evaluation ``cross_validated``;
    ``note``: why a value is NaN, as in the decode tables).
    """
    emb = open_store(embedding_path, layout="embedding")
    validate_embedding(emb, embedding_path)
    if "subset" not in emb.attrs:
        raise InputError(embedding_path, "attrs.subset", "not a maze subset embedding")
    prepared = open_store(prepared_path, layout="prepared")
    cell = _subset_cell(emb, prepared, str(embedding_path))
    conditions = condition_labels(emb["trial_type"].values, emb["trial_version"].values)
    base = {
        "method": emb.attrs["method"],
        "seed": int(emb.attrs["seed"]),
        "session": emb.attrs["session"],
        "subset": emb.attrs["subset"],
        "area": emb.attrs["area"],
        "n_trials": len(conditions),
        "n_conditions": len(set(conditions)),
    }
    rows = []
    for kind in decoders:
        for evaluation, scores in within_session(cell, DecoderSpec(kind)).items():
            rows += [
                dict(
                    base,
                    decoder=kind,
                    evaluation=evaluation,
                    target=target,
                    metric=metric,
                    value=value,
                    note=scores.notes.get((target, metric), ""),
                )
                for (target, metric), value in scores.values.items()
            ]
    sep = separation(cell.latent, conditions, np.asarray(emb["trial_version"].values) == 0, seed=int(emb.attrs["seed"]))
    rows += [
        dict(base, decoder="logistic", evaluation="cross_validated", target="separation", metric=k, value=v, note="")
        for k, v in sep.items()
    ]
    return pd.DataFrame(rows)


def maze_scores(
    stores: Sequence[tuple[str | PathLike, str | PathLike]], decoders: Sequence[str] = ("linear",)
) -> pd.DataFrame:
    """:func:`subset_table` of every ``(subset embedding, maze-prepared store)`` pair, concatenated."""
    return pd.concat([subset_table(e, p, decoders) for e, p in stores], ignore_index=True)

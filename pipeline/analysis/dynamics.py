"""The paper's analyses of latent dynamics besides its decode matrices (issue 19; docs/analyses.md).

Three analyses of embedded cells (:class:`pipeline.analysis.decoding.Cell`), each a tidy table:

**Similarity of trial-averaged latent dynamics** (the paper's Tables 1 / 3), :func:`similarity_table`.
The authors' code does not contain it (NER_METHOD.md §10); the paper's caption describes correlations
of trial-averaged latent dynamics between cells, diagonal and off-diagonal, with t-tests. Defined here
as a train → test comparison, like the decoders:

* the *source* trajectory = the source cell's **training** trials averaged per direction
  ``(direction, bin, dim)``; the *target* trajectory = the target cell's **test** trials averaged the
  same way;
* off-diagonal, the source is first rotated onto the target by the ``leak_free`` Procrustes alignment
  (:mod:`pipeline.analysis.alignment`: one orthogonal map fitted on the training-trial averages of
  both cells), so no test trial shapes the rotation; on the diagonal there is no rotation (the same
  model embeds both halves);
* ``r`` = correlation of the two trajectories over every (direction, bin, coordinate) value of the
  directions both have, each coordinate centred on its own mean (:func:`centred_correlation`: a
  rotation of either cell leaves it unchanged); ``consistency_r2`` = CEBRA's own
  ``cebra.sklearn.metrics.consistency_score`` (``between="runs"``: linear-regression R² of the target
  trajectory on the unrotated source trajectory), with the rows matched by (direction, bin) — its
  between-datasets mode matches rows by a quantised 1-D label instead, which a direction × time
  condition is not.

The rows have the columns of the decode ``scores`` table (``target = latent_trajectory``,
``evaluation = train_vs_test``, ``decoder = none``), so :mod:`pipeline.analysis.stats` gives mean, sd, t
and p per method and block unchanged: paired t-tests between methods, diagonal vs off-diagonal.

**Direction accuracy over time against hand speed** (Figs 4b / 12b),
:func:`accuracy_speed_correlation`: the Pearson correlation of a method's accuracy-over-time curve
(averaged over the cells) with the trial-averaged ``|v_x|``, ``|v_y|`` and speed profiles (averaged
over every training trial of those cells, pooled). From the authors' stored Chewie 2016 M1 training
arrays this gives NER 0.925, CEBRA-3D 0.279, piVAE 0.849 for ``|v_x|`` (tests/realdata/test_dynamics.py).

**Coverage of the velocity range** (Fig. 1a), :func:`velocity_coverage`: the cell's linear velocity
decoder (fitted on its training bins) predicts every bin; the bins are split into quantiles of the
true hand speed and each quantile gets the mean true and mean predicted speed. A decoder that follows
the rare fast movements has a ratio near 1 in the top quantile; the paper's point is that CEBRA's falls
short there and NER's does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analysis.alignment import align, direction_averages
from pipeline.analysis.crossdecode import KEY_COLUMNS, pair_columns
from pipeline.analysis.decoding import Cell, DecoderSpec, fit
from pipeline.errors import InputError

__all__ = [
    "COVERAGE_COLUMNS",
    "SIMILARITY_COLUMNS",
    "SPEED_COLUMNS",
    "accuracy_speed_correlation",
    "centred_correlation",
    "curve_correlations",
    "speed_profiles",
    "similarity_table",
    "trajectory_similarity",
    "velocity_coverage",
]

#: the rows of :func:`similarity_table` (the decode ``scores`` columns the statistics read)
SIMILARITY_COLUMNS = [
    *(
        c
        for c in KEY_COLUMNS
        if c not in ("rotation_direction", "labels_at_transform", "n_train_trials", "n_test_trials")
    ),
    "n_directions",
    "metric",
    "value",
    "note",
]
#: the rows of :func:`accuracy_speed_correlation`
SPEED_COLUMNS = ["group", "method", "seed", "decoder", "evaluation", "profile", "n_cells", "n_bins", "r", "p", "note"]
#: the rows of :func:`velocity_coverage`
COVERAGE_COLUMNS = [
    "group",
    "method",
    "seed",
    "cell",
    "session",
    "area",
    "decoder",
    "evaluation",
    "quantile",
    "n_bins",
    "true_speed",
    "predicted_speed",
    "ratio",
]
#: the speed profiles :func:`speed_profiles` computes, by name
PROFILES = ("abs_vx", "abs_vy", "speed")


# ----------------------------------------------------------------------------- similarity (Tables 1 / 3)
def trajectory_similarity(source: Cell, target: Cell) -> tuple[dict[str, float], int, str]:
    """``r`` and ``consistency_r2`` of the source's training-trial averages against the target's
    test-trial averages (module docstring), rotated by the ``leak_free`` alignment off the diagonal.

    Args:
        source, target: cells of one method and seed (the same cell for the diagonal).

    Returns:
        ``({"r": ..., "consistency_r2": ...}, directions compared, note)``; NaN values and the reason in
        ``note`` when fewer than 2 directions have training trials in the source and test trials in
        the target.
    """
    if source.latent.shape[1:] != target.latent.shape[1:]:
        raise InputError(
            target.name,
            "latent",
            f"cells differ in (bin, dim): {source.name} {source.latent.shape[1:]} vs {target.latent.shape[1:]}",
        )
    train, test = source.training_trials(), target.trials(target.test)
    mean_source = direction_averages(train.latent, train.classes)
    mean_target = direction_averages(test.latent, test.classes)
    rotation = None
    if source.name != target.name:
        dst = target.training_trials()
        rotation = align(train.latent, train.classes, dst.latent, dst.classes, "leak_free").rotation
    shared = np.isfinite(mean_source).all(axis=(1, 2)) & np.isfinite(mean_target).all(axis=(1, 2))
    n = int(shared.sum())
    if n < 2:
        note = f"{n} direction(s) with training trials in {source.name} and test trials in {target.name}: need 2"
        return {"r": math.nan, "consistency_r2": math.nan}, n, note
    a, b = mean_source[shared], mean_target[shared]
    rotated = a if rotation is None else a @ rotation
    r = centred_correlation(rotated, b)
    return {"r": r, "consistency_r2": _consistency(a, b)}, n, ""


def centred_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two ``(..., dim)`` trajectories over all their values after each coordinate is
    centred on its own mean: ``Σ a_c b_c / sqrt(Σ a_c² Σ b_c²)``. Unlike a Pearson r of the flattened
    values (one mean for all coordinates), it does not change when both are rotated alike."""
    a_c = a - a.reshape(-1, a.shape[-1]).mean(axis=0)
    b_c = b - b.reshape(-1, b.shape[-1]).mean(axis=0)
    return float((a_c * b_c).sum() / np.sqrt((a_c**2).sum() * (b_c**2).sum()))


def _consistency(source: np.ndarray, target: np.ndarray) -> float:
    """CEBRA's ``consistency_score`` (between runs) of the target trajectory regressed on the source's."""
    from cebra.integrations.sklearn.metrics import consistency_score

    dim = source.shape[-1]
    scores, pairs, _ = consistency_score([source.reshape(-1, dim), target.reshape(-1, dim)], between="runs")
    for value, (i, j) in zip(np.atleast_1d(scores), np.atleast_2d(pairs)):
        if (int(i), int(j)) == (0, 1):  # regression of embedding 1 (target) on embedding 0 (source)
            return float(value)
    raise RuntimeError(f"cebra's consistency_score returned no (0, 1) pair: {pairs!r}")


def similarity_table(cells: Sequence[Cell], *, group: str) -> pd.DataFrame:
    """Similarity of every ordered pair of ``cells`` (one method and seed), diagonal included.

    Args:
        cells: the group's cells of one method and seed.
        group: the comparison group written in every row.

    Returns:
        Tidy rows (:data:`SIMILARITY_COLUMNS`), metrics ``r`` and ``consistency_r2``.
    """
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise InputError(group, "cells", f"a cell is given twice: {names}")
    rows = []
    for a in cells:
        for b in cells:
            values, n, note = trajectory_similarity(a, b)
            key = {
                "group": group,
                "method": a.meta.get("method"),
                "seed": a.meta.get("seed"),
                "decoder": "none",
                "target": "latent_trajectory",
                "evaluation": "train_vs_test",
                "alignment": "leak_free",  # the diagonal is not rotated (labelled like the decode matrices')
                **pair_columns(a, b),
                "n_directions": n,
            }
            rows += [{**key, "metric": metric, "value": value, "note": note} for metric, value in values.items()]
    return pd.DataFrame(rows, columns=SIMILARITY_COLUMNS)


# ----------------------------------------------------------------------------- accuracy vs speed (Figs 4b / 12b)
def speed_profiles(velocity: np.ndarray) -> dict[str, np.ndarray]:
    """Trial-averaged ``|v_x|``, ``|v_y|`` and speed per bin of ``(trial, bin, 2)`` velocities."""
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.ndim != 3 or velocity.shape[-1] != 2 or len(velocity) == 0:
        raise InputError(None, "velocity", f"expected (trial, bin, 2) velocities, got shape {velocity.shape}")
    return {
        "abs_vx": np.abs(velocity[..., 0]).mean(axis=0),
        "abs_vy": np.abs(velocity[..., 1]).mean(axis=0),
        "speed": np.linalg.norm(velocity, axis=-1).mean(axis=0),
    }


def curve_correlations(curve: np.ndarray, profiles: dict[str, np.ndarray]) -> dict[str, tuple[float, float, str]]:
    """Pearson ``(r, p, note)`` of an accuracy-over-time curve with each speed profile (same bins);
    NaN and the reason in ``note`` when the curve or the profile is flat (no correlation exists)."""
    curve = np.asarray(curve, dtype=np.float64)
    out = {}
    for name, profile in profiles.items():
        if profile.shape != curve.shape:
            raise InputError(None, "bin", f"the accuracy curve has {curve.shape} bins, profile {name} {profile.shape}")
        if np.ptp(curve) == 0:
            out[name] = (math.nan, math.nan, f"the accuracy is {curve[0]:g} % at every bin: no correlation")
            continue
        if np.ptp(profile) == 0:
            out[name] = (math.nan, math.nan, f"the {name} profile is constant: no correlation")
            continue
        result = stats.pearsonr(curve, profile)
        out[name] = (float(result.statistic), float(result.pvalue), "")
    return out


def accuracy_speed_correlation(
    accuracy: pd.DataFrame, cells: Sequence[Cell], *, group: str, evaluation: str = "in_sample", decoder: str = "linear"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Correlate each method's accuracy over time with the hand-speed profiles of ``cells``.

    Args:
        accuracy: the within-session ``accuracy_time`` table (rows of other cells are ignored).
        cells: the group's cells (one per (session, area); their training trials give the profiles).
        group: written in every row.
        evaluation: ``in_sample`` (the paper's Fig. 4b: training data) or ``held_out``.
        decoder: decoder family of the curves.

    Returns:
        ``(correlations, curves)``: :data:`SPEED_COLUMNS` rows, and the long table of what was
        correlated (``series`` = a method's mean accuracy or a speed profile; ``bin``, ``time_s``, ``value``).

    Raises:
        InputError: no accuracy row for these cells, or cells with different bins.
    """
    names = {c.name for c in cells}
    rows = accuracy[
        accuracy["train_cell"].isin(names)
        & (accuracy["test_cell"] == accuracy["train_cell"])
        & (accuracy["evaluation"] == evaluation)
        & (accuracy["decoder"] == decoder)
    ]
    if rows.empty:
        raise InputError(None, "accuracy", f"no {decoder} {evaluation} accuracy rows for the cells {sorted(names)}")
    bins = {c.latent.shape[1] for c in cells}
    if len(bins) != 1:
        raise InputError(group, "bin", f"the cells have different numbers of bins {sorted(bins)}")
    pooled = np.concatenate([c.training_trials().velocity for c in cells])
    profiles = speed_profiles(pooled)
    times = next(iter(cells)).bin_time
    out, curves = (
        [],
        [
            {"series": name, "bin": i, "time_s": float(t), "value": float(v)}
            for name, profile in profiles.items()
            for i, (t, v) in enumerate(zip(times, profile))
        ],
    )
    for (method, seed), sub in rows.groupby(["method", "seed"], sort=False):
        per_bin = sub.groupby("bin")["accuracy"].mean()
        if len(per_bin) != len(times):
            raise InputError(
                None, "bin", f"{method} seed {seed}: accuracy for {len(per_bin)} bins, cells have {len(times)}"
            )
        curve = per_bin.sort_index().to_numpy()
        for name, (r, p, note) in curve_correlations(curve, profiles).items():
            out.append(
                {
                    "group": group,
                    "method": method,
                    "seed": seed,
                    "decoder": decoder,
                    "evaluation": evaluation,
                    "profile": name,
                    "n_cells": int(sub["train_cell"].nunique()),
                    "n_bins": len(curve),
                    "r": r,
                    "p": p,
                    "note": note,
                }
            )
        curves += [
            {"series": f"accuracy:{method}:seed{seed}", "bin": i, "time_s": float(t), "value": float(v)}
            for i, (t, v) in enumerate(zip(times, curve))
        ]
    return pd.DataFrame(out, columns=SPEED_COLUMNS), pd.DataFrame(curves, columns=["series", "bin", "time_s", "value"])


# ----------------------------------------------------------------------------- velocity range (Fig. 1a)
def velocity_coverage(cell: Cell, *, group: str, quantiles: int = 10, spec: DecoderSpec | None = None) -> pd.DataFrame:
    """Mean true vs mean decoded hand speed per quantile of the true speed, in-sample and held-out.

    Args:
        cell: one embedded cell.
        group: written in every row.
        quantiles: number of speed quantiles (10 = deciles), computed on the scored bins.
        spec: the velocity decoder (the paper's linear decoder by default).

    Returns:
        :data:`COVERAGE_COLUMNS` rows; ``ratio`` = predicted / true mean speed of the quantile.
    """
    if quantiles < 2:
        raise InputError(None, "quantiles", f"need at least 2 speed quantiles, got {quantiles}")
    spec = spec or DecoderSpec("linear")
    decoder = fit(cell, spec)
    rows = []
    for evaluation, mask in (("in_sample", cell.train), ("held_out", cell.test)):
        scored = cell.trials(mask)
        if len(scored.latent) == 0:
            continue
        x = scored.latent.reshape(-1, scored.latent.shape[-1])
        true = np.linalg.norm(scored.velocity.reshape(-1, 2), axis=1)
        predicted = np.linalg.norm(np.asarray(decoder.velocity.predict(x)).reshape(-1, 2), axis=1)
        edges = np.quantile(true, np.linspace(0.0, 1.0, quantiles + 1))
        which = np.clip(np.searchsorted(edges, true, side="right") - 1, 0, quantiles - 1)
        for q in range(quantiles):
            members = which == q
            if not members.any():
                continue
            t, p = float(true[members].mean()), float(predicted[members].mean())
            rows.append(
                {
                    "group": group,
                    "method": cell.meta.get("method"),
                    "seed": cell.meta.get("seed"),
                    "cell": cell.name,
                    "session": cell.meta.get("session"),
                    "area": cell.meta.get("area"),
                    "decoder": spec.kind,
                    "evaluation": evaluation,
                    "quantile": q + 1,
                    "n_bins": int(members.sum()),
                    "true_speed": t,
                    "predicted_speed": p,
                    "ratio": p / t if t > 0 else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)

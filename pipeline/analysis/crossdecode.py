"""Within-session tables and cross-cell decode matrices as tidy tables (NER_METHOD.md §5.1–5.3).

A *cell* is one embedded ``(session, area)`` of one method and seed (:class:`pipeline.analysis.decoding.Cell`).
:func:`within_table` scores each cell on itself (in-sample and held-out). :func:`cross_decode` fills
the ``(train cell, test cell)`` matrix of a comparison group: the decoder is fitted on the training
trials of the train cell (rotated onto the test cell by each alignment variant of
:mod:`pipeline.analysis.alignment`) and scored on the test trials of the test cell; the diagonal is the plain
within-session held-out decoder, repeated under each alignment label so that every matrix is complete.

Every row carries the cells' session, area, subject, year and hemisphere and the derived pair kinds
(cross-session, cross-area, cross-hemisphere, cross-year) so that block summaries and statistics
need nothing but the table. Column meanings: ``docs/tables.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from pipeline.analysis import labelfree
from pipeline.analysis.alignment import ALIGNMENTS, Alignment, align
from pipeline.analysis.decoding import Cell, DecoderSpec, Scores, fit, score, within_session
from pipeline.errors import InputError

__all__ = [
    "KEY_COLUMNS",
    "NEW_SESSION_ALIGNMENTS",
    "pair_alignment",
    "cross_decode",
    "decoder_specs",
    "pair_columns",
    "within_table",
]

#: columns that identify a score (everything but metric/value and the accuracy curve's bin columns)
KEY_COLUMNS = (
    "group",
    "method",
    "seed",
    "decoder",
    "target",
    "evaluation",
    "alignment",
    "train_cell",
    "test_cell",
    "train_session",
    "train_area",
    "test_session",
    "test_area",
    "train_subject",
    "test_subject",
    "train_year",
    "test_year",
    "train_hemisphere",
    "test_hemisphere",
    "pair",
    "cross_session",
    "cross_area",
    "cross_hemisphere",
    "cross_year",
    "rotation_direction",
    "labels_at_transform",
    "n_train_trials",
    "n_test_trials",
)


#: variants that align a new session without its labels or with a few of them (:mod:`pipeline.analysis.labelfree`),
#: besides the label-based :data:`pipeline.analysis.alignment.ALIGNMENTS`; ``few_shot_{k}`` takes any k >= 1
NEW_SESSION_ALIGNMENTS = (
    "none",
    "label_free",
    "label_free_consensus",
    "few_shot_1",
    "few_shot_2",
    "few_shot_4",
    "few_shot_8",
)


def _few_shot_k(variant: str) -> int | None:
    prefix, _, k = variant.rpartition("_")
    return int(k) if prefix == "few_shot" and k.isdigit() and int(k) >= 1 else None


def pair_alignment(
    a: Cell,
    b: Cell,
    variant: str,
    *,
    references: Sequence[Cell] = (),
    force_direction: int | None = None,
    seed: int = 0,
) -> Alignment:
    """The ``variant`` alignment of decoder cell ``a`` onto test cell ``b``, given exactly what it may read.

    * ``paper``, ``joint``: every trial of both cells, with labels; ``leak_free``: their training trials
      (:func:`pipeline.analysis.alignment.align`);
    * ``none``: the identity;
    * ``label_free``: ``a``'s training trials with their directions and ``b``'s embedding of every trial
      (no label of ``b``: :func:`pipeline.analysis.labelfree.label_free` takes none);
      ``label_free_consensus``: the same, with the training trials of the ``references`` (the group's
      other cells, never ``a`` or ``b``) choosing the assignment;
    * ``few_shot_{k}``: ``a``'s training-trial averages onto the averages of ``b``'s first ``k`` training
      trials per direction (:func:`pipeline.analysis.labelfree.calibration_trials`): a calibration block
      at the start of the session; only labels of ``b``'s trials up to its last calibration trial are
      read (the shots, and the earlier trials of a direction already complete, to skip them), so
      never those of the scored test trials.

    Raises:
        InputError: an unknown variant, a consensus without a reference cell, or what the variant's
            function refuses (e.g. ``k`` above a direction's training trials).
    """
    if variant in ALIGNMENTS:
        src, dst = (a.training_trials(), b.training_trials()) if variant == "leak_free" else (a, b)
        forced = force_direction if variant == "paper" else None
        return align(src.latent, src.classes, dst.latent, dst.classes, variant, force_direction=forced)
    if variant == "none":
        return labelfree.none(a.latent.shape[-1])
    train = a.training_trials()
    if variant in ("label_free", "label_free_consensus"):
        others = [r.training_trials() for r in references if r.name not in (a.name, b.name)]
        if variant == "label_free_consensus" and not others:
            raise InputError(b.name, "alignment", "label_free_consensus needs a third labelled cell in the group")
        refs = [(r.latent, r.classes) for r in others] if variant == "label_free_consensus" else ()
        return labelfree.label_free(train.latent, train.classes, b.latent, references=refs, seed=seed)
    k = _few_shot_k(variant)
    if k is None:
        known = [*ALIGNMENTS, *NEW_SESSION_ALIGNMENTS[:3], "few_shot_{k}"]
        raise InputError(None, "alignment", f"unknown variant {variant!r}; choose from {known}")
    shots = labelfree.calibration_trials(b.classes, b.train, k)
    return labelfree.few_shot(train.latent, train.classes, b.latent, shots, b.classes[shots])


def pair_columns(a: Cell, b: Cell) -> dict:
    """The columns that name a (train cell, test cell) pair and its kinds (cross-session, -area, ...)."""
    cols = {}
    for side, c in (("train", a), ("test", b)):
        cols[f"{side}_cell"] = c.name
        for key in ("session", "area", "subject", "year", "hemisphere"):
            cols[f"{side}_{key}"] = c.meta.get(key)
    cols.update(
        pair="diagonal" if a.name == b.name else "off_diagonal",
        cross_session=a.meta.get("session") != b.meta.get("session"),
        cross_area=a.meta.get("area") != b.meta.get("area"),
        cross_hemisphere=a.meta.get("hemisphere") != b.meta.get("hemisphere"),
        cross_year=a.meta.get("year") != b.meta.get("year"),
    )
    return cols


def _rows(scores: Scores, key: dict, bin_time: np.ndarray) -> tuple[list[dict], list[dict]]:
    """Score rows and accuracy-over-time rows of one evaluation."""
    rows = [
        {**key, "target": target, "metric": metric, "value": value, "note": scores.notes.get((target, metric), "")}
        for (target, metric), value in scores.values.items()
    ]
    curve = []
    if scores.accuracy is not None:
        curve = [
            {**key, "target": "direction", "bin": i, "time_s": float(t), "accuracy": float(acc)}
            for i, (t, acc) in enumerate(zip(bin_time, scores.accuracy))
        ]
    return rows, curve


def _key(
    group: str,
    cell_a: Cell,
    cell_b: Cell,
    spec: DecoderSpec,
    evaluation: str,
    alignment: Alignment | str,
    n_scored: int,
) -> dict:
    variant = alignment if isinstance(alignment, str) else alignment.variant
    direction = -1 if isinstance(alignment, str) else alignment.direction
    return {
        "group": group,
        "method": cell_a.meta.get("method"),
        "seed": cell_a.meta.get("seed"),
        "decoder": spec.kind,
        "evaluation": evaluation,
        "alignment": variant,
        **pair_columns(cell_a, cell_b),
        "rotation_direction": direction,
        "labels_at_transform": bool(cell_a.meta.get("labels_at_transform", False)),
        "n_train_trials": int(cell_a.train.sum()),
        "n_test_trials": int(n_scored),
    }


def _frames(rows: list[dict], curves: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    scores = pd.DataFrame(rows, columns=[*KEY_COLUMNS, "metric", "value", "note"])
    accuracy = pd.DataFrame(curves, columns=[*KEY_COLUMNS, "bin", "time_s", "accuracy"])
    order = ["group", "method", "seed", "decoder", "target"]
    return scores[[*order, *(c for c in scores.columns if c not in order)]], accuracy[
        [*order, *(c for c in accuracy.columns if c not in order)]
    ]


def within_table(
    cells: Iterable[Cell], specs: Sequence[DecoderSpec], group: str = "within"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In-sample and held-out scores of every cell on itself, for every decoder in ``specs``.

    Returns:
        ``(scores, accuracy_time)`` tidy frames (alignment ``none``, pair ``diagonal``).
    """
    rows, curves = [], []
    for cell in cells:
        for spec in specs:
            for evaluation, result in within_session(cell, spec).items():
                r, c = _rows(result, _key(group, cell, cell, spec, evaluation, "none", result.n_trials), cell.bin_time)
                rows += r
                curves += c
    return _frames(rows, curves)


def cross_decode(
    cells: Sequence[Cell],
    specs: Sequence[DecoderSpec],
    *,
    group: str,
    alignments: Sequence[str] = ALIGNMENTS,
    force_directions: Mapping[tuple[str, str], int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``(train cell, test cell)`` decode matrices of one method and seed.

    Args:
        cells: the group's cells (one method, one seed), in matrix order.
        specs: decoder families to run.
        group: comparison-group name written in every row.
        alignments: alignment variants of the off-diagonal cells (:func:`pair_alignment`).
        force_directions: ``{(train cell name, test cell name): direction}`` forces the ``paper``
            rotation of those pairs (to reproduce a run whose tie-break is known).

    Returns:
        ``(scores, accuracy_time)`` tidy frames, evaluation ``held_out``.
    """
    names = [c.name for c in cells]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(group, "cells", f"cell name(s) {twice} given twice: they would be scored as the diagonal")
    force_directions = dict(force_directions or {})
    rotations: dict[tuple[str, str, str], Alignment] = {}
    for a in cells:
        for b in cells:
            if a.name == b.name:
                continue
            for variant in alignments:
                if variant == "label_free_consensus" and len(cells) < 3:
                    continue  # no reference cell: NaN rows with the reason below
                alignment = pair_alignment(
                    a,
                    b,
                    variant,
                    references=cells,
                    force_direction=force_directions.get((a.name, b.name)),
                    seed=int(a.meta.get("seed", 0)),
                )
                rotations[a.name, b.name, variant] = replace(alignment, variant=variant)  # rows name the config's
    rows, curves = [], []
    for spec in specs:
        for a in cells:
            decoder = fit(a, spec)
            for b in cells:
                if a.name == b.name:
                    result = score(decoder, b, b.test)
                    for variant in alignments:
                        key = _key(group, a, b, spec, "held_out", variant, result.n_trials)
                        r, c = _rows(result, key, b.bin_time)
                        rows += r
                        curves += c
                    continue
                scored: dict[tuple, Scores] = {}  # variants that found the same rotation score once
                for variant in alignments:
                    alignment = rotations.get((a.name, b.name, variant))
                    if alignment is None:  # undefined for this group: every score NaN, with the reason
                        result = _undefined(score(decoder, b, b.test), _NO_REFERENCE)
                        r, c = _rows(result, _key(group, a, b, spec, "held_out", variant, result.n_trials), b.bin_time)
                        rows += r
                        continue
                    rotation = np.ascontiguousarray(alignment.rotation, dtype=np.float64)
                    key = (rotation.shape, rotation.tobytes())
                    if key not in scored:
                        scored[key] = score(decoder, b, b.test, rotation=alignment.rotation)
                    result = scored[key]
                    r, c = _rows(result, _key(group, a, b, spec, "held_out", alignment, result.n_trials), b.bin_time)
                    rows += r
                    curves += c
    return _frames(rows, curves)


_NO_REFERENCE = "label_free_consensus needs a third labelled cell in the group: this group has two"


def _undefined(result: Scores, why: str) -> Scores:
    """``result`` with every value NaN and ``why`` as the note of each (no accuracy curve)."""
    return Scores({key: np.nan for key in result.values}, None, result.n_trials, {key: why for key in result.values})


def decoder_specs(decoding: Mapping) -> list[DecoderSpec]:
    """The decoder families of a config ``decoding`` block."""
    return [
        DecoderSpec(
            kind,
            logistic_max_iter=int(decoding["logistic_max_iter"]),
            knn_neighbors=tuple(decoding["knn_neighbors"]),
            cv=int(decoding["cv_folds"]),
        )
        for kind in decoding["decoders"]
    ]

"""rules similarity, speed_accuracy, velocity_coverage and population: a group's stores -> the tables
and figures of the paper's latent-dynamics analyses (:mod:`pipeline.analysis.dynamics`,
:mod:`pipeline.analysis.population`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.decoding import Cell
from pipeline.analysis.dynamics import accuracy_speed_correlation, similarity_table, velocity_coverage
from pipeline.analysis.population import load_population, views_table
from pipeline.analysis.stats import all_statistics, block_summary
from pipeline.data.tables import read_tables, write_table
from pipeline.report import plots
from pipeline.report.population_plot import plot_population

Pairs = Sequence[tuple[str | PathLike, str | PathLike]]


def _load(pairs: Pairs) -> list[Cell]:
    return [Cell.load(embedding, prepared) for embedding, prepared in pairs]


def similarity(cells: Mapping[str, Pairs], outputs: Mapping[str, str | PathLike], *, group: str) -> pd.DataFrame:
    """rule similarity: :func:`pipeline.analysis.dynamics.similarity_table` of every method and seed
    of ``group``, its statistics (:func:`pipeline.analysis.stats.all_statistics`, block summary) and
    figure.

    Args:
        cells: ``"{method}/seed{seed}"`` -> that method's ``(embedding, prepared)`` pairs in ``group``.
        outputs: paths ``table``, ``tests``, ``blocks``, ``figure``.
        group: the comparison group.
    """
    table = pd.concat([similarity_table(_load(pairs), group=group) for pairs in cells.values()], ignore_index=True)
    source = str(outputs["table"])
    write_table(table, outputs["table"])
    write_table(all_statistics(table, source=source), outputs["tests"])
    write_table(block_summary(table, source=source), outputs["blocks"])
    plots.plot_similarity(table, outputs["figure"])
    return table


def speed_accuracy(
    accuracy_paths: Sequence[str | PathLike],
    cells: Pairs,
    outputs: Mapping[str, str | PathLike],
    *,
    group: str,
    evaluation: str = "in_sample",
) -> pd.DataFrame:
    """rule speed_accuracy: :func:`pipeline.analysis.dynamics.accuracy_speed_correlation` of the
    within-session accuracy curves of ``group``'s cells (linear decoders).

    Args:
        accuracy_paths: the within-session ``accuracy`` tables (every method and seed).
        cells: the group's ``(embedding, prepared)`` pairs of one method (their training trials give
            the hand-speed profiles; every method shares the prepared stores and the split).
        outputs: paths ``table``, ``profiles``, ``figure``.
        group: the comparison group.
        evaluation: ``in_sample`` (the paper) or ``held_out`` curves.
    """
    accuracy = read_tables(accuracy_paths, "accuracy")
    correlations, curves = accuracy_speed_correlation(accuracy, _load(cells), group=group, evaluation=evaluation)
    write_table(correlations, outputs["table"])
    write_table(curves, outputs["profiles"])
    plots.plot_speed_accuracy(curves, correlations, outputs["figure"])
    return correlations


def coverage(
    cells: Mapping[str, Pairs], outputs: Mapping[str, str | PathLike], *, group: str, quantiles: int = 10
) -> pd.DataFrame:
    """rule velocity_coverage: :func:`pipeline.analysis.dynamics.velocity_coverage` of every cell of
    every method and seed of ``group``, and its figure.

    Args:
        cells: ``"{method}/seed{seed}"`` -> that method's ``(embedding, prepared)`` pairs in ``group``.
        outputs: paths ``table``, ``figure``.
        group: the comparison group.
        quantiles: quantiles of the true hand speed.
    """
    table = pd.concat(
        [
            velocity_coverage(cell, group=group, quantiles=quantiles)
            for pairs in cells.values()
            for cell in _load(pairs)
        ],
        ignore_index=True,
    )
    write_table(table, outputs["table"])
    plots.plot_velocity_coverage(table, outputs["figure"])
    return table


def population(
    cells: Sequence[tuple[str, str, str | PathLike]],
    outputs: Mapping[str, str | PathLike],
    *,
    anchor: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """rule population: :func:`pipeline.analysis.population.population_views` of every cell of a group
    (the table) and the figure of its anchor cell (the first cell when the anchor is not in the group).

    Args:
        cells: ``(session, area, prepared store)`` of the group's cells.
        outputs: paths ``table``, ``figure``.
        anchor: ``"session/area"`` of the cell drawn.
        seed: seed of dPCA's cross-validation.
    """
    views = [
        load_population(prepared, area=area, session=session).views(seed=seed) for session, area, prepared in cells
    ]
    table = pd.concat([views_table(v) for v in views], ignore_index=True)
    write_table(table, outputs["table"])
    drawn = next((v for v in views if v.name == anchor), views[0])
    plot_population(drawn, outputs["figure"])
    return table

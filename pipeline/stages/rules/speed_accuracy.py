"""rule speed_accuracy: accuracy curves and a group's stores -> accuracy vs hand speed (Figs 4b / 12b)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.decoding import Cell
from pipeline.analysis.dynamics import accuracy_speed_correlation
from pipeline.data.tables import read_tables, write_table
from pipeline.report import plots


def run(
    accuracy_paths: Sequence[str | PathLike],
    cells: Sequence[tuple[str | PathLike, str | PathLike]],
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
    correlations, curves = accuracy_speed_correlation(
        accuracy, Cell.load_all(cells), group=group, evaluation=evaluation
    )
    write_table(correlations, outputs["table"])
    write_table(curves, outputs["profiles"])
    plots.plot_speed_accuracy(curves, correlations, outputs["figure"])
    return correlations

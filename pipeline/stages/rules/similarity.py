"""rule similarity: a group's stores -> the similarity of trial-averaged latent dynamics (Tables 1 / 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.decoding import Cell
from pipeline.analysis.dynamics import similarity_table
from pipeline.analysis.stats import all_statistics, block_summary
from pipeline.data.tables import write_table
from pipeline.report import plots


def run(
    cells: Mapping[str, Sequence[tuple[str | PathLike, str | PathLike]]],
    outputs: Mapping[str, str | PathLike],
    *,
    group: str,
) -> pd.DataFrame:
    """rule similarity: :func:`pipeline.analysis.dynamics.similarity_table` of every method and seed
    of ``group``, its statistics (:func:`pipeline.analysis.stats.all_statistics`, block summary) and
    figure.

    Args:
        cells: ``"{method}/seed{seed}"`` -> that method's ``(embedding, prepared)`` pairs in ``group``.
        outputs: paths ``table``, ``tests``, ``blocks``, ``figure``.
        group: the comparison group.
    """
    table = pd.concat(
        [similarity_table(Cell.load_all(pairs), group=group) for pairs in cells.values()], ignore_index=True
    )
    source = str(outputs["table"])
    write_table(table, outputs["table"])
    write_table(all_statistics(table, source=source), outputs["tests"])
    write_table(block_summary(table, source=source), outputs["blocks"])
    plots.plot_similarity(table, outputs["figure"])
    return table

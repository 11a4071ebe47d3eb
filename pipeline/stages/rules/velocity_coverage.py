"""rule velocity_coverage: a group's stores -> decoded vs true hand speed per speed quantile (Fig. 1a)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.decoding import Cell
from pipeline.analysis.dynamics import velocity_coverage
from pipeline.data.tables import write_table
from pipeline.report import plots


def run(
    cells: Mapping[str, Sequence[tuple[str | PathLike, str | PathLike]]],
    outputs: Mapping[str, str | PathLike],
    *,
    group: str,
    quantiles: int = 10,
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
            for cell in Cell.load_all(pairs)
        ],
        ignore_index=True,
    )
    write_table(table, outputs["table"])
    plots.plot_velocity_coverage(table, outputs["figure"])
    return table

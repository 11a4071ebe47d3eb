"""rule population: a group's prepared stores -> PCA and dPCA views of each cell (Fig. 11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.population import load_population, views_table
from pipeline.data.tables import write_table
from pipeline.report.population_plot import plot_population


def run(
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

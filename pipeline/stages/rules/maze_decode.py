"""rule maze_decode: subset embeddings and maze-prepared stores -> the maze score table."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.maze import maze_scores
from pipeline.data.tables import write_table


def run(
    cells: Sequence[tuple[str | PathLike, str | PathLike]],
    out: str | PathLike,
    *,
    decoders: Sequence[str] = ("linear",),
) -> pd.DataFrame:
    """rule maze_decode: :func:`pipeline.analysis.maze.maze_scores` of (subset embedding, maze-prepared
    store) pairs, one TSV."""
    table = maze_scores(cells, decoders)
    write_table(table, out)
    return table

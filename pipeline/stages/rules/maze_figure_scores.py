"""rule maze_figure_scores: maze score tables -> their figure."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from pipeline.report.figures import maze_scores_figure


def run(score_paths: Sequence[str], out: str | PathLike) -> None:
    """rule maze_figure_scores: :func:`pipeline.report.figures.maze_scores_figure`."""
    maze_scores_figure(score_paths, out)

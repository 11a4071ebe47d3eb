"""rule figures_within: within-session tables -> their figures."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from pipeline.report.figures import within_figures


def run(
    score_paths: Sequence[str], accuracy_paths: Sequence[str], scores_out: str | PathLike, accuracy_out: str | PathLike
) -> None:
    """rule figures_within: :func:`pipeline.report.figures.within_figures`."""
    within_figures(score_paths, accuracy_paths, scores_out, accuracy_out)

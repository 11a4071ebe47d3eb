"""rule figures_group: a group's tables -> its matrices, accuracy and block figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

from pipeline.report.figures import group_figures


def run(
    score_paths: Sequence[str], accuracy_paths: Sequence[str], blocks_path: str | PathLike, outputs: Mapping
) -> None:
    """rule figures_group: :func:`pipeline.report.figures.group_figures`."""
    group_figures(score_paths, accuracy_paths, blocks_path, outputs)

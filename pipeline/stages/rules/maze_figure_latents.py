"""rule maze_figure_latents: subset embeddings -> the maze latent figure."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from pipeline.report.figures import maze_latents_figure


def run(embeddings: Sequence[str], out: str | PathLike, *, max_trials: int) -> None:
    """rule maze_figure_latents: :func:`pipeline.report.figures.maze_latents_figure`."""
    maze_latents_figure(embeddings, out, max_trials_per_condition=max_trials)

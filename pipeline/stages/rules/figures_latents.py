"""rule figures_latents: a group's stores -> its aligned latent figure."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from pipeline.report.figures import latent_figure


def run(
    cells: Sequence[tuple[str | PathLike, str | PathLike]], out: str | PathLike, *, anchor: str | None, max_trials: int
) -> None:
    """rule figures_latents: :func:`pipeline.report.figures.latent_figure`."""
    latent_figure(cells, out, anchor=anchor, max_trials_per_direction=max_trials)

"""rule latents_3d: a group's stores (every method) -> its interactive 3-D latent page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

from pipeline.report.interactive import latents_3d_page


def run(
    cells: Mapping[str, Sequence[tuple[str | PathLike, str | PathLike]]],
    out: str | PathLike,
    *,
    group: str,
    anchor: str | None,
    max_trials: int,
) -> None:
    """rule latents_3d: :func:`pipeline.report.interactive.latents_3d_page` (``cells``: method -> its
    ``(embedding, prepared)`` pairs)."""
    latents_3d_page(cells, out, anchor=anchor, max_trials_per_direction=max_trials, title=f"{group}: latents in 3-D")

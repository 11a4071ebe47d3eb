"""The workflow's figures: read the decode/statistics TSVs (and embedding stores) and draw them with
:mod:`pipeline.report.plots`. Every number in a figure comes from a table the report links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

from pipeline.analysis.alignment import align
from pipeline.analysis.decoding import Cell
from pipeline.data.store import open_store, validate_embedding
from pipeline.data.tables import read_tables
from pipeline.errors import InputError
from pipeline.report import plots

__all__ = [
    "AlignedLatents",
    "aligned_latents",
    "group_figures",
    "latent_figure",
    "principal_axes",
    "maze_latents_figure",
    "maze_scores_figure",
    "within_figures",
]


def within_figures(
    score_paths: Sequence[str], accuracy_paths: Sequence[str], scores_out: str | PathLike, accuracy_out: str | PathLike
) -> None:
    """Per-method score distributions (in-sample, linear) and accuracy over time (held-out)."""
    plots.plot_score_distributions(
        read_tables(score_paths), scores_out, evaluation="in_sample", pair="diagonal", decoder="linear"
    )
    plots.plot_accuracy_time(
        read_tables(accuracy_paths), accuracy_out, decoder="linear", evaluation="held_out", alignment="none"
    )


def group_figures(
    score_paths: Sequence[str],
    accuracy_paths: Sequence[str],
    blocks_path: str | PathLike,
    outputs: Mapping[str, str | PathLike],
    *,
    alignment: str = "paper",
) -> None:
    """Decode-matrix heatmaps (velocity, position, direction), accuracy over time and block summary
    of one comparison group, linear decoders, ``alignment`` variant (the paper's by default), and, when
    ``outputs`` has ``alignments``, the scores of every new-session alignment variant against the labels
    they read (:func:`pipeline.report.plots.plot_alignment_curve`)."""
    scores = read_tables(score_paths)
    if alignment not in set(scores["alignment"]):
        alignment = sorted(set(scores["alignment"]))[0]
    for target in ("velocity", "position", "direction"):
        plots.plot_decode_matrices(scores, outputs[target], target=target, decoder="linear", alignment=alignment)
    plots.plot_accuracy_time(
        read_tables(accuracy_paths), outputs["accuracy"], decoder="linear", evaluation="held_out", alignment=alignment
    )
    blocks = read_tables([blocks_path], "blocks")
    plots.plot_block_summary(blocks, outputs["blocks"], decoder="linear", alignment=alignment)
    if "alignments" in outputs:  # only with a new-session variant configured (pipeline.stages.plan)
        plots.plot_alignment_curve(scores, outputs["alignments"], decoder="linear")


@dataclass(frozen=True)
class AlignedLatents:
    """One method's latents of a group's cells as the latent figures draw them (:func:`aligned_latents`).

    Attributes:
        reference: name (``"session/area"``) of the anchor cell every other cell is rotated onto.
        panels: cell label (the anchor's ends in ``" (anchor)"``) -> ``(latent, classes)`` of its training
            trials: ``(trial, bin, k)`` latents, ``k = min(dim, 3)``, and ``(trial,)`` direction classes.
        dim: the dimension of the latents as trained.
        axis_labels: ``("PC1", "PC2", "PC3")`` when ``dim > 3`` (the panels are projections), else None.
        projection: one line saying how ``dim > 3`` latents were projected, else None.
        explained: for ``dim > 3``, the fraction of the anchor's training-latent variance on the 3 axes
            drawn (the other cells are drawn on the anchor's axes after their rotation); else None.
    """

    reference: str
    panels: dict[str, tuple[np.ndarray, np.ndarray]]
    dim: int
    axis_labels: tuple[str, ...] | None = None
    projection: str | None = None
    explained: float | None = None


def aligned_latents(cells: Sequence[Cell], anchor: str | None = None) -> AlignedLatents:
    """Each cell's training-trial latents rotated onto the anchor cell's direction averages with the
    paper's Procrustes pick (:func:`pipeline.analysis.alignment.align`, variant ``"paper"``; the anchor as
    it is), the way the paper's Figs 3/6/7 align them. Latents of more than 3 dimensions (CEBRA-16D) are
    then drawn on the first 3 principal axes of the anchor's aligned training latents, every cell on the
    same axes; 2- and 3-D latents are returned as they are.

    Args:
        cells: one method's cells of a group (:meth:`pipeline.analysis.decoding.Cell.load`).
        anchor: ``"session/area"`` of the anchor cell; the first cell when None or not among ``cells``.
    """
    if not cells:
        raise InputError("latents", None, "no cell given")
    ref = next((c for c in cells if c.name == anchor), cells[0])
    panels = {}
    for cell in cells:
        rotation = (
            align(cell.latent, cell.classes, ref.latent, ref.classes, "paper").rotation if cell is not ref else None
        )
        train = cell.training_trials()
        latent = train.latent if rotation is None else train.latent @ rotation
        label = f"{cell.name} (anchor)" if cell is ref else cell.name
        panels[label] = (latent, train.classes)
    dim = ref.latent.shape[2]
    if dim <= 3:
        return AlignedLatents(ref.name, panels, dim)
    # e.g. CEBRA-16D: every aligned panel drawn on the anchor's first 3 principal axes
    anchor_latent = ref.training_trials().latent
    axes = principal_axes(anchor_latent, 3)
    flat = anchor_latent.reshape(-1, dim)
    flat = flat - flat.mean(axis=0)
    explained = float((flat @ axes).var(axis=0).sum() / flat.var(axis=0).sum())
    return AlignedLatents(
        ref.name,
        {label: (latent @ axes, classes) for label, (latent, classes) in panels.items()},
        dim,
        ("PC1", "PC2", "PC3"),
        f"{dim}-D latents on the first 3 principal axes of the anchor's training latents",
        explained,
    )


def latent_figure(
    stores: Sequence[tuple[str | PathLike, str | PathLike]],
    out: str | PathLike,
    *,
    anchor: str | None = None,
    max_trials_per_direction: int = 10,
) -> None:
    """3-D latents of a group's cells, each rotated onto the anchor cell's direction averages with the
    paper's Procrustes pick (as the paper's Figs 3/6/7; :func:`aligned_latents`); training trials and
    their averages.

    Args:
        stores: each cell's ``(embedding store, prepared store)``.
        anchor: ``"session/area"`` of the anchor cell; the first cell when None or not in the group.
    """
    cells = Cell.load_all(stores)
    aligned = aligned_latents(cells, anchor)
    method = cells[0].meta.get("method", "")
    title = f"{method}: training trials aligned to {aligned.reference}"
    if aligned.projection:
        title += f"\n{aligned.projection}"
    plots.plot_latents(
        aligned.panels,
        out,
        single_trials=True,
        max_trials_per_direction=max_trials_per_direction,
        title=title,
        axis_labels=aligned.axis_labels,
    )


def principal_axes(latent, n: int = 3):
    """``(dim, n)`` orthonormal principal axes of ``(trial, bin, dim)`` latents (all bins pooled)."""
    from sklearn.decomposition import PCA

    flat = latent.reshape(-1, latent.shape[-1])
    return PCA(n_components=n, svd_solver="full").fit(flat).components_.T


def maze_scores_figure(score_paths: Sequence[str], out: str | PathLike) -> None:
    """R² and separation per maze subset and method (:func:`pipeline.report.plots.plot_maze_scores`)."""
    plots.plot_maze_scores(read_tables(score_paths), out)


def maze_latents_figure(embeddings: Sequence[str], out: str | PathLike, *, max_trials_per_condition: int = 10) -> None:
    """3-D latents of one maze session: one panel per (method, subset) embedding, in the given order
    (every trial of the subset, train and test; the latents as trained, not rotated)."""
    panels, session = [], None
    for path in embeddings:
        emb = open_store(path, layout="embedding")
        validate_embedding(emb, path)
        for name in ("trial_type", "trial_version"):
            if name not in emb.coords:
                raise InputError(path, name, "not a maze subset embedding")
        session = emb.attrs["session"]
        panels.append(
            (
                f"{emb.attrs['method']}: {emb.attrs.get('subset', '?')}",
                emb["latent"].values,
                emb["trial_type"].values,
                emb["trial_version"].values,
            )
        )
    plots.plot_maze_latents(
        panels,
        out,
        max_trials_per_condition=max_trials_per_condition,
        title=f"{session}: latent trajectories per trial subset",
    )

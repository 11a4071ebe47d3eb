"""The paper's Fig. 11 for one recorded population: PCA and dPCA views (:mod:`pipeline.analysis.population`).

Drawn in the house style of :mod:`pipeline.report.plots` (its theme, direction palette, deterministic
atomic save): the same views give a byte-identical PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from pipeline.analysis.population import MARGINALIZATIONS, PopulationViews  # noqa: E402
from pipeline.errors import InputError  # noqa: E402
from pipeline.report.plots import DIRECTION_COLOURS, save_figure, theme  # noqa: E402

__all__ = ["plot_population"]

_MARGINALIZATION_NAMES = {"t": "time (t)", "s": "direction (s)", "st": "interaction (st)"}
_MARGINALIZATION_COLOURS = dict(zip(MARGINALIZATIONS, sns.color_palette("Set2", len(MARGINALIZATIONS))))


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _trajectories(ax, latent, classes, *, max_trials=None, averages=False):
    """Per direction: ``max_trials`` single trials thin (the first ones), or one thick line each
    (``averages``: ``latent`` is (direction, bin, 3)); the start marked with a black-edged dot."""
    for d, colour in enumerate(DIRECTION_COLOURS):
        if averages:
            lines, lw, alpha = latent[d : d + 1], 2.2, 1.0
        else:
            lines, lw, alpha = latent[np.flatnonzero(classes == d)[:max_trials]], 0.7, 0.45
        for line in lines:
            ax.plot(*line.T, color=colour, lw=lw, alpha=alpha)
            ax.scatter(*line[0], color=colour, s=18 if averages else 6, edgecolors="k", linewidths=0.5, zorder=4)
    ax.view_init(elev=20, azim=-60)
    ax.tick_params(labelsize=5, pad=0)


def plot_population(
    views: PopulationViews, out, *, title: str | None = None, max_trials_per_direction: int = 6
) -> Path:
    """PCA and dPCA of one cell (the paper's Fig. 11).

    Row 1 (3-D): single training trials on the single-trial PCA axes (the first
    ``max_trials_per_direction`` of each direction), the direction averages on the trial-average PCA
    axes, and the dPCA direction ("s") components of the averages. Row 2: the first component of each
    dPCA marginalisation (t, s, st) over time, one line per direction, and a bar panel of the explained
    variance per marginalisation (components stacked, total above; a diamond marks the
    marginalisation's share of the trial-averaged variance). Explained variances are in the titles.

    Args:
        views: :func:`pipeline.analysis.population.population_views` of the cell.
        out: image path (the format from its suffix).
        title: figure title (default: the cell's name and trial counts).
        max_trials_per_direction: single trials drawn per direction.

    Returns:
        Path: ``out``.

    Raises:
        InputError: ``views`` is not a :class:`PopulationViews` with 3 components, or
            ``max_trials_per_direction`` is below 1.
    """
    if not isinstance(views, PopulationViews):
        raise InputError("population figure", "views", f"expected PopulationViews, got {type(views).__name__}")
    if views.n_components < 3:
        raise InputError(
            views.name, "n_components", f"the 3-D panels need 3 components, the views have {views.n_components}"
        )
    if int(max_trials_per_direction) < 1:
        raise InputError(views.name, "max_trials_per_direction", f"must be at least 1, got {max_trials_per_direction}")
    n_trials = views.pca_single_trial.shape[0]
    if title is None:
        title = (
            f"{views.name}: PCA and dPCA of the population ({n_trials} training trials, "
            f"dPCA on {views.dpca_trials_per_direction} per direction, λ = {views.dpca_regularizer:.2g})"
        )
    ratio = {key: views.dpca_ratio[i] for i, key in enumerate(MARGINALIZATIONS)}
    time = views.bin_time
    with theme("white"):
        fig = plt.figure(figsize=(15.5, 8.6), layout="constrained")
        grid = fig.add_gridspec(2, 12, height_ratios=[1.25, 1.0])
        panels = [
            (
                views.pca_single_trial,
                False,
                f"PCA, single trials (first {int(max_trials_per_direction)} per direction shown)\n"
                f"EV of the single-trial bins: {_percent(views.pca_single_trial_ratio.sum())}",
                "PC",
            ),
            (
                views.pca_trial_average,
                True,
                f"PCA, trial averages\nEV of the averages: {_percent(views.pca_trial_average_ratio.sum())}",
                "PC",
            ),
            (
                views.marginalization("s"),
                True,
                f"dPCA, direction (s) components of the averages\nEV: {_percent(ratio['s'].sum())}",
                "dPC s",
            ),
        ]
        for i, (latent, averages, panel_title, prefix) in enumerate(panels):
            ax = fig.add_subplot(grid[0, 4 * i : 4 * i + 4], projection="3d")
            _trajectories(ax, latent, views.classes, max_trials=int(max_trials_per_direction), averages=averages)
            ax.set_title(panel_title, fontsize=9)
            ax.set_xlabel(f"{prefix}1", fontsize=7, labelpad=-4)
            ax.set_ylabel(f"{prefix}2", fontsize=7, labelpad=-4)
            ax.set_zlabel(f"{prefix}3", fontsize=7, labelpad=-4)

        share = None
        for i, key in enumerate(MARGINALIZATIONS):
            ax = fig.add_subplot(grid[1, 3 * i : 3 * i + 3], sharey=share)
            share = ax
            component = views.marginalization(key)[..., 0]  # (direction, bin)
            for d, colour in enumerate(DIRECTION_COLOURS):
                ax.plot(time, component[d], color=colour, lw=1.6)
            ax.axhline(0, color="0.6", lw=0.6)
            ax.set_title(
                f"dPCA {_MARGINALIZATION_NAMES[key]}, component 1\n"
                f"EV {_percent(ratio[key][0])} (all 3: {_percent(ratio[key].sum())})",
                fontsize=9,
            )
            ax.set_xlabel("time from alignment event (s)")
            if i == 0:
                ax.set_ylabel("component (a.u.)")
            else:
                ax.tick_params(labelleft=False)
            sns.despine(ax=ax)

        ax = fig.add_subplot(grid[1, 9:12])
        x = np.arange(len(MARGINALIZATIONS))
        n_components = views.dpca_ratio.shape[1]
        bottom = np.zeros(len(MARGINALIZATIONS))
        for k in range(n_components):
            values = views.dpca_ratio[:, k]
            colours = [_shade(_MARGINALIZATION_COLOURS[m], k, n_components) for m in MARGINALIZATIONS]
            ax.bar(x, values, 0.6, bottom=bottom, color=colours, edgecolor="0.3", linewidth=0.5)
            bottom += values
        for xi, total in zip(x, bottom):
            ax.text(xi, total, _percent(total), ha="center", va="bottom", fontsize=7)
        ax.scatter(
            x,
            views.dpca_marginal_ratio,
            marker="D",
            s=22,
            color="k",
            zorder=5,
            label="marginalisation's share\nof the averages' variance",
        )
        ax.legend(loc="upper right", frameon=False, fontsize=7)
        ax.set_xticks(x, [_MARGINALIZATION_NAMES[m] for m in MARGINALIZATIONS], fontsize=7)
        ax.set_ylim(0, max(float(bottom.max()), float(views.dpca_marginal_ratio.max())) * 1.35)
        ax.set(ylabel="explained variance ratio")
        ax.set_title("dPCA explained variance\n(components 1 dark → 3 light)", fontsize=9)
        sns.despine(ax=ax)

        handles = [Line2D([], [], color=c, lw=2.2, label=f"{45 * d}°") for d, c in enumerate(DIRECTION_COLOURS)]
        handles.append(Line2D([], [], ls="", marker="o", color="w", markeredgecolor="k", label="start"))
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="direction")
        fig.suptitle(title)
        return save_figure(fig, out)


def _shade(colour, k: int, n: int):
    """``colour`` darker for the first component, lighter for the last."""
    base = np.asarray(colour, dtype=float)
    if n <= 1:
        return tuple(base)
    t = k / (n - 1)  # 0 first .. 1 last
    dark, light = base * 0.65, base + (1 - base) * 0.55
    return tuple((1 - t) * dark + t * light)

"""Figures drawn from the decoding stage's tidy tables (``scores``, ``accuracy_time``) and from latents.

Every function filters its table, draws one figure, writes it (creating parent folders), closes it
and returns the output :class:`~pathlib.Path`. Figures are deterministic: the same input gives a
byte-identical PNG (fixed dpi, no ``Software``/date metadata, seeded bootstrap and jitter, and the
seaborn theme applied through an ``rc_context`` so that no global style leaks in or out).

A filter that leaves no rows raises :class:`pipeline.errors.InputError` naming the filter value and
the values that are available.
"""

from __future__ import annotations

import textwrap
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from pipeline.data.atomic import atomic_path  # noqa: E402
from pipeline.errors import InputError  # noqa: E402

__all__ = [
    "DPI",
    "METHOD_ORDER",
    "CHANCE_PERCENT",
    "decode_matrix_frames",
    "plot_decode_matrices",
    "plot_accuracy_time",
    "plot_score_distributions",
    "plot_latents",
    "plot_block_summary",
    "plot_maze_latents",
    "plot_maze_scores",
    "MAZE_SCORE_PANELS",
    "MATRIX_COLUMNS",
    "R2_FLOOR",
    "plot_alignment_curve",
    "plot_similarity",
    "plot_speed_accuracy",
    "plot_velocity_coverage",
    "DIRECTION_COLOURS",
    "theme",
    "save_figure",
]

DPI = 120
METHOD_ORDER = ("ner", "cebra", "cebra16d", "pivae", "pca", "dpca", "umap", "umap_labels")
CHANCE_PERCENT = 100.0 / 8
_DEFAULT_METRIC = {"position": "r2", "direction": "peak_accuracy"}
_METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None}, ".svg": {"Date": None}}
#: the colour of each of the 8 direction classes (0°, 45°, ...), shared by every figure and the 3-D pages
DIRECTION_COLOURS = sns.color_palette("husl", 8)


# ----------------------------------------------------------------------------- shared helpers
@contextmanager
def theme(style="ticks"):
    """Apply a seaborn style + ``paper`` context for the duration of one figure only."""
    rc = {
        **sns.axes_style(style),
        **sns.plotting_context("paper"),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "svg.hashsalt": "ner-pipeline",
    }
    with plt.rc_context(rc):
        yield


def save_figure(fig, out, *, tight: bool = False) -> Path:
    """Save ``fig`` to ``out`` atomically, without the metadata that differs between runs, and close it.
    ``tight``: grow or crop the page to the drawn artists (nothing a layout pushed off the edge is cut)."""
    out = Path(out)
    extra = {"bbox_inches": "tight", "pad_inches": 0.1} if tight else {}
    try:
        with atomic_path(out) as tmp:  # the temporary name keeps the suffix: matplotlib reads the format off it
            fig.savefig(tmp, dpi=DPI, metadata=_METADATA.get(out.suffix.lower()), **extra)
    finally:
        plt.close(fig)
    return out


def _filter(df: pd.DataFrame, source: str, **filters) -> pd.DataFrame:
    """Keep rows equal to every non-None filter, one at a time, so an error names the culprit."""
    if len(df) == 0:
        raise InputError(source, None, "the table has no rows")
    for col, want in filters.items():
        if want is None:
            continue
        if col not in df.columns:
            raise InputError(source, col, f"no column {col!r}; columns: {list(df.columns)}")
        kept = df[df[col] == want]
        if kept.empty:
            avail = sorted(df[col].dropna().unique().tolist(), key=str)
            raise InputError(source, col, f"no rows with {col}={want!r}; available: {avail}")
        df = kept
    return df


def _check_unique(df: pd.DataFrame, keys: list[str], source: str, value: str) -> None:
    """Refuse to average silently over rows that differ in a column nobody filtered on."""
    dup = df[df.duplicated(keys, keep=False)]
    if dup.empty:
        return
    varying = [
        c for c in df.columns if c not in keys and c != value and dup.groupby(keys)[c].nunique(dropna=False).gt(1).any()
    ]
    raise InputError(
        source,
        varying[0] if varying else None,
        f"{len(dup)} rows share one entry of {keys}; they differ in {varying}: pass a filter for them (e.g. group=...)",
    )


def _method_order(methods) -> list[str]:
    present = set(methods)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def _palette(methods) -> dict[str, tuple]:
    """One fixed colour per method, the same in every figure."""
    extra = sorted(set(methods) - set(METHOD_ORDER))
    colours = sns.color_palette("tab10", len(METHOD_ORDER) + len(extra))
    return dict(zip([*METHOD_ORDER, *extra], colours))


# ----------------------------------------------------------------------------- decode matrices
def _cell_order(df: pd.DataFrame) -> list[str]:
    """All train/test cells sorted by (year, session, area), using whichever of those columns exist."""
    parts = []
    for side in ("train", "test"):
        cols = {f"{side}_{k}": k for k in ("cell", "year", "session", "area") if f"{side}_{k}" in df}
        parts.append(df[list(cols)].rename(columns=cols))
    cells = pd.concat(parts).drop_duplicates("cell")
    return cells.sort_values([k for k in ("year", "session", "area", "cell") if k in cells])["cell"].tolist()


def _matrix_rows(scores, target, metric, decoder, alignment, seed, group):
    rows = _filter(
        scores, "scores", group=group, decoder=decoder, evaluation="held_out", alignment=alignment, target=target
    )
    if metric is None:
        metric = _DEFAULT_METRIC.get(target, "r2")
        if target == "velocity" and (rows["metric"] == "r2_swapped").any():
            metric = "r2_swapped"
    rows = _filter(rows, "scores", metric=metric, seed=seed)
    _check_unique(rows, ["method", "seed", "train_cell", "test_cell"], "scores", "value")
    return rows, metric


def decode_matrix_frames(
    scores: pd.DataFrame, *, target="velocity", metric=None, decoder="linear", alignment="paper", seed=None, group=None
) -> dict[str, pd.DataFrame]:
    """Held-out decoding matrices, one per method, exactly as :func:`plot_decode_matrices` draws them.

    Args:
        scores: The tidy ``scores`` table.
        target, metric, decoder, alignment, seed, group: Row filters; ``metric=None`` picks ``r2_swapped``
            (velocity, when present, else ``r2``), ``r2`` (position) or ``peak_accuracy`` (direction);
            ``seed=None`` averages over seeds; ``group=None`` keeps every group (an error is raised if that
            leaves duplicate cells).

    Returns:
        dict of str to DataFrame: Method (in :data:`METHOD_ORDER`) to a frame indexed by ``train_cell`` with
            ``test_cell`` columns, both ordered by (year, session, area); missing pairs are NaN.
    """
    rows, _ = _matrix_rows(scores, target, metric, decoder, alignment, seed, group)
    cells = _cell_order(rows)
    train = [c for c in cells if c in set(rows["train_cell"])]
    test = [c for c in cells if c in set(rows["test_cell"])]
    mean = rows.groupby(["method", "train_cell", "test_cell"])["value"].mean()
    return {
        m: mean.loc[m].unstack("test_cell").reindex(index=train, columns=test) for m in _method_order(rows["method"])
    }


def _diag_means(frame: pd.DataFrame) -> tuple[float, float]:
    diag = frame.index.to_numpy()[:, None] == frame.columns.to_numpy()[None, :]
    vals = frame.to_numpy(dtype=float)
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")  # noqa: E731
    return mean(vals[diag]), mean(vals[~diag])


#: R² below this is drawn in the lowest colour and written "≤-1" (a swapped or failed R² can reach -460,
#: which would leave every other panel one uniform colour on a shared scale)
R2_FLOOR = -1.0
#: at most this many heatmap panels per row of a decode-matrix figure
MATRIX_COLUMNS = 4
_METRIC_LABELS = {
    "r2_swapped": ("swapped R²", "the paper's swapped R², r2_score(pred, true)"),
    "r2": ("R²", "R², r2_score(true, pred)"),
    "peak_accuracy": ("peak accuracy", "peak direction accuracy (%)"),
}


def _cell_text(value: float, floor: float) -> str:
    """A heatmap cell's annotation: two decimals, "≤-1" below the floor of a clipped R² scale, blank for NaN."""
    if not np.isfinite(value):
        return ""
    return "≤-1" if value < floor else f"{value:.2f}"


def _decode_matrix_figure(blocks: list[tuple[str, dict[str, pd.DataFrame]]], suptitle: str):
    """Draw one block of heatmap panels per metric (one panel per method) in rows of at most
    :data:`MATRIX_COLUMNS`; each block has its own colour scale and bar. R² values below
    :data:`R2_FLOOR` take the scale's lowest colour and read "≤-1". Returns the open figure."""
    n_methods = max(len(frames) for _, frames in blocks)
    n_cols = min(MATRIX_COLUMNS, n_methods)
    rows_per_block = -(-n_methods // n_cols)
    n_cells = max(next(iter(blocks[0][1].values())).shape)
    annotate = n_cells <= 12
    side = max(2.6, 0.45 * n_cells + 1.4)
    width = side * n_cols + 1.2
    # heights in inches from the cell names (~0.08 in a character): the square panels are as wide as the
    # width left of the train cells' names and the colour bar allows; the bottom row of each block carries
    # the test cells' names, rotated, and needs room for the longest
    names = [str(n) for _, frames in blocks for f in frames.values() for n in (*f.index, *f.columns)]
    longest = max(map(len, names))
    square = min(side, (width - (0.08 * longest + 0.4) - 0.7) / n_cols)
    height = (square + 0.65) * rows_per_block * len(blocks) + (0.08 * longest + 0.7) * len(blocks) + 0.7
    fig = plt.figure(figsize=(width, height), layout="constrained")
    grid = fig.add_gridspec(rows_per_block * len(blocks), n_cols + 1, width_ratios=[1] * n_cols + [0.06])
    for b, (metric, frames) in enumerate(blocks):
        short, long = _METRIC_LABELS.get(metric, (metric, metric))
        values = np.concatenate([f.to_numpy(dtype=float).ravel() for f in frames.values()])
        finite = values[np.isfinite(values)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        clipped = metric in ("r2", "r2_swapped") and vmin < R2_FLOOR
        vmin = max(vmin, R2_FLOOR) if clipped else vmin
        vmax = vmax if vmax > vmin else vmin + 1.0
        top = b * rows_per_block
        cbar_ax = fig.add_subplot(grid[top : top + rows_per_block, -1])
        for i, (method, frame) in enumerate(frames.items()):
            ax = fig.add_subplot(grid[top + i // n_cols, i % n_cols])
            text = frame.map(_cell_text, floor=R2_FLOOR if clipped else -np.inf)
            sns.heatmap(
                frame.clip(lower=vmin) if clipped else frame,
                ax=ax,
                vmin=vmin,
                vmax=vmax,
                cmap="viridis",
                square=True,
                annot=text.to_numpy() if annotate else False,
                fmt="",
                annot_kws={"fontsize": 6},
                cbar=i == 0,
                cbar_ax=cbar_ax if i == 0 else None,
                cbar_kws={"extend": "min" if clipped else "neither", "label": long},
            )
            d, o = _diag_means(frame)
            name = method if len(blocks) == 1 else f"{method}, {short}"
            ax.set_title(f"{name}\ndiag {d:.2f} / off-diag {o:.2f}", fontsize=9)
            bottom, left = i + n_cols >= len(frames), i % n_cols == 0  # cell names once per row / column
            ax.tick_params(labelbottom=bottom, labelleft=left)
            ax.set_xlabel("test cell" if bottom else "")
            ax.set_ylabel("train cell" if left else "")
    fig.suptitle(textwrap.fill(suptitle, max(40, int(11 * fig.get_size_inches()[0]))))  # a narrow figure wraps it
    return fig


def plot_decode_matrices(
    scores: pd.DataFrame,
    out,
    *,
    target="velocity",
    metric=None,
    decoder="linear",
    alignment="paper",
    seed=None,
    group=None,
) -> Path:
    """Heatmap of held-out scores per method: rows train cell, columns test cell.

    Parameters are those of :func:`decode_matrix_frames`; ``out`` is the image path. Each panel's
    title gives the method and the mean of diagonal / off-diagonal cells; cells are annotated with
    two decimals when the matrix is at most 12 x 12. Panels are laid out in rows of at most
    :data:`MATRIX_COLUMNS`. For velocity with ``metric=None`` the paper's swapped R² comes with a
    second block, on its own scale, of the correct R² (when the table has both). R² below
    :data:`R2_FLOOR` is drawn in the scale's lowest colour and written "≤-1" (means in the titles
    use the real values).

    Returns:
        Path: ``out``.
    """
    rows, metric_used = _matrix_rows(scores, target, metric, decoder, alignment, seed, group)
    metrics = [metric_used]
    if (
        metric is None
        and metric_used == "r2_swapped"
        and ((scores["target"] == target) & (scores["metric"] == "r2")).any()
    ):
        metrics.append("r2")
    blocks = [
        (
            m,
            decode_matrix_frames(
                scores, target=target, metric=m, decoder=decoder, alignment=alignment, seed=seed, group=group
            ),
        )
        for m in metrics
    ]
    seeds = sorted(rows["seed"].unique().tolist())
    seed_txt = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of {len(seeds)} seeds {seeds}"
    title = f"{target} {' and '.join(metrics)}, {decoder} decoder, held-out, alignment={alignment}, {seed_txt}"
    with theme("white"):
        return save_figure(_decode_matrix_figure(blocks, title), out, tight=True)


# ----------------------------------------------------------------------------- accuracy over time
def plot_accuracy_time(
    acc: pd.DataFrame, out, *, decoder="linear", evaluation="held_out", alignment="paper", group=None
) -> Path:
    """Direction accuracy (%) over time, one line per method with a 95 % CI band over cells.

    Seeds are averaged within each (train cell, test cell) before the band is bootstrapped (seeded).
    Diagonal and off-diagonal cells get separate panels when both exist; chance (12.5 %) is dashed.

    Args:
        acc: The tidy ``accuracy_time`` table.
        out: Image path.
        decoder, evaluation, alignment, group: Row filters (None keeps all values).

    Returns:
        Path: ``out``.
    """
    rows = _filter(acc, "accuracy_time", group=group, decoder=decoder, evaluation=evaluation, alignment=alignment)
    keys = ["method", "pair", "train_cell", "test_cell", "bin", "time_s"]
    _check_unique(rows, [*keys, "seed"], "accuracy_time", "accuracy")
    rows = rows.groupby(keys, as_index=False)["accuracy"].mean()
    pairs = [p for p in ("diagonal", "off_diagonal") if p in set(rows["pair"])]
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    with theme("ticks"):
        fig, axes = plt.subplots(
            1, len(pairs), figsize=(4.2 * len(pairs) + 1.2, 3.4), sharey=True, squeeze=False, layout="constrained"
        )
        for i, (ax, pair) in enumerate(zip(axes[0], pairs)):
            sns.lineplot(
                rows[rows["pair"] == pair],
                x="time_s",
                y="accuracy",
                hue="method",
                hue_order=order,
                palette=palette,
                errorbar=("ci", 95),
                n_boot=500,
                seed=0,
                ax=ax,
                legend=i == len(pairs) - 1,
            )
            ax.axhline(CHANCE_PERCENT, ls="--", color="0.4", lw=1, label="chance")
            n_cells = rows.loc[rows["pair"] == pair, ["train_cell", "test_cell"]].drop_duplicates()
            ax.set(
                title=f"{pair.replace('_', '-')} ({len(n_cells)} cells)",
                xlabel="time from alignment event (s)",
                ylabel="accuracy (%)",
            )
        axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.suptitle(f"direction decoding, {decoder}, {evaluation}, alignment={alignment}")
        return save_figure(fig, out)


# ----------------------------------------------------------------------------- score distributions
_PANELS = (
    ("velocity", "r2", "velocity r2"),
    ("position", "r2", "position r2"),
    ("direction", "peak_accuracy", "peak accuracy (%)"),
)


def plot_score_distributions(
    scores: pd.DataFrame, out, *, evaluation="in_sample", pair="diagonal", decoder="linear", alignment=None, group=None
) -> Path:
    """Per-method box + strip plots of velocity r2, position r2 and direction peak accuracy.

    Args:
        scores: The tidy ``scores`` table.
        out: Image path.
        evaluation, pair, decoder, group: Row filters.
        alignment: None uses the only alignment present; for diagonal cells (never rotated, repeated under
            each label) it uses the first label; off-diagonal cells with several labels need a choice.

    Returns:
        Path: ``out``.
    """
    rows = _filter(
        scores, "scores", group=group, evaluation=evaluation, pair=pair, decoder=decoder, alignment=alignment
    )
    labels = sorted(rows["alignment"].unique().tolist())
    if alignment is None and len(labels) > 1:
        if pair != "diagonal":
            raise InputError("scores", "alignment", f"several alignments {labels} for pair={pair!r}; pass alignment=")
        rows = rows[rows["alignment"] == labels[0]]
    panels = [(t, m, name, rows[(rows["target"] == t) & (rows["metric"] == m)]) for t, m, name in _PANELS]
    panels = [p for p in panels if not p[3].empty]
    if not panels:
        raise InputError(
            "scores",
            "target",
            "no rows for velocity r2, position r2 or direction "
            f"peak_accuracy; available target/metric: "
            f"{sorted(set(zip(rows['target'], rows['metric'])))}",
        )
    _check_unique(rows, ["method", "seed", "target", "metric", "train_cell", "test_cell"], "scores", "value")
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    rng = np.random.default_rng(0)
    with theme("ticks"):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(0.55 * len(order) * len(panels) + 2.5, 3.4), squeeze=False, layout="constrained"
        )
        for ax, (_, metric, name, data) in zip(axes[0], panels):
            ax.boxplot(
                [data.loc[data["method"] == m, "value"].to_numpy() for m in order],
                positions=range(len(order)),
                widths=0.6,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": "0.92"},
                medianprops={"color": "0.2"},
            )
            ax.set_xticks(range(len(order)), order)
            for i, m in enumerate(order):
                v = data.loc[data["method"] == m, "value"].to_numpy()
                ax.scatter(
                    i + rng.uniform(-0.15, 0.15, len(v)), v, s=10, color=palette[m], alpha=0.8, zorder=3, linewidths=0
                )
            if metric == "peak_accuracy":
                ax.axhline(CHANCE_PERCENT, ls="--", color="0.4", lw=1)
            ax.set(title=name, ylabel=name)
            ax.tick_params(axis="x", rotation=30)
        fig.suptitle(f"{pair.replace('_', '-')} cells, {evaluation}, {decoder} decoder")
        return save_figure(fig, out)


# ----------------------------------------------------------------------------- latents
def _latent_panels(latents) -> list[tuple[str, np.ndarray, np.ndarray]]:
    items = list(latents.items()) if isinstance(latents, dict) else list(latents or [])
    if not items:
        raise InputError("latents", None, "no latent panels given")
    panels = []
    for i, item in enumerate(items):
        if len(item) == 3:
            name, lat, dirs = item
        elif isinstance(item[0], str):
            name, (lat, dirs) = item
        else:
            name, (lat, dirs) = f"panel {i}", item
        lat, dirs = np.asarray(lat, dtype=float), np.asarray(dirs)
        if lat.ndim != 3 or lat.shape[2] not in (2, 3):
            raise InputError("latents", str(name), f"expected (trial, bin, 2 or 3), got shape {lat.shape}")
        if dirs.shape != (lat.shape[0],) or (dirs.size and (dirs.min() < 0 or dirs.max() > 7)):
            raise InputError(
                "latents", str(name), f"direction_class must be {lat.shape[0]} ints in 0..7, got shape {dirs.shape}"
            )
        panels.append((str(name), lat, dirs.astype(int)))
    return panels


def plot_latents(
    latents, out, *, single_trials=True, max_trials_per_direction=10, title=None, axis_labels=None
) -> Path:
    """Latent trajectories coloured by reach direction, one panel per embedding.

    Args:
        latents: ``name -> (latent, direction_class)``, or a list of ``(name, latent, direction_class)`` or
            ``(latent, direction_class)``; ``latent`` is (trial, bin, 3) or (trial, bin, 2) (drawn on 2-D
            axes), ``direction_class`` is (trial,) ints 0..7.
        out: Image path.
        single_trials: Draw the first ``max_trials_per_direction`` trials of each direction thin and translucent.
        max_trials_per_direction: Trials drawn per direction (the first ones, so the choice is deterministic).
        title: Figure title.
        axis_labels: Axis names (e.g. ``("PC1", "PC2", "PC3")`` for projected latents).

    Returns:
        Path: ``out``.
    """
    panels = _latent_panels(latents)
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    with theme("white"):
        fig = plt.figure(figsize=(3.6 * ncols + 1.0, 3.4 * nrows + 0.4), layout="constrained")
        for k, (name, lat, dirs) in enumerate(panels):
            dim = lat.shape[2]
            ax = fig.add_subplot(nrows, ncols, k + 1, **({"projection": "3d"} if dim == 3 else {}))
            for d, colour in enumerate(DIRECTION_COLOURS):
                idx = np.flatnonzero(dirs == d)
                if idx.size == 0:
                    continue
                if single_trials:
                    for t in idx[:max_trials_per_direction]:
                        ax.plot(*lat[t].T, color=colour, lw=0.4, alpha=0.3)
                avg = lat[idx].mean(axis=0)
                ax.plot(*avg.T, color=colour, lw=2.2)
                ax.scatter(*avg[0], color=colour, s=24, edgecolors="k", linewidths=0.6, zorder=4)
            ax.set_title(f"{name} ({lat.shape[0]} trials)")
            if axis_labels:
                ax.set(**dict(zip(("xlabel", "ylabel", "zlabel")[:dim], axis_labels)))
            if dim == 3:
                ax.view_init(elev=20, azim=-60)
                ax.tick_params(labelsize=5)
        handles = [Line2D([], [], color=c, lw=2.2, label=f"{45 * d}°") for d, c in enumerate(DIRECTION_COLOURS)]
        handles.append(Line2D([], [], ls="", marker="o", color="w", markeredgecolor="k", label="start"))
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="direction")
        if title:
            fig.suptitle(title)
        return save_figure(fig, out)


# ----------------------------------------------------------------------------- block summary
def plot_block_summary(
    summary: pd.DataFrame,
    out,
    *,
    group=None,
    decoder="linear",
    target=None,
    metric=None,
    evaluation=None,
    alignment=None,
    seed=None,
) -> Path:
    """Grouped bars of mean ± sd per block, hue = method, one panel per (target, metric), in rows of a
    figure at most about 16 in wide; an R² axis stops just below -1 (:data:`R2_FLOOR`) when a mean is
    lower, and its title says so.

    Args:
        summary: Columns group, method, decoder, target, metric, evaluation, alignment, seed, block, mean,
            sd, n.
        out: Image path.
        group, decoder, target, metric, evaluation, alignment, seed: Row filters (None keeps all); afterwards
            each (target, metric, block, method) must be one row, or one row per seed: ``seed=None`` with
            several seeds draws the mean over seeds of each block's mean and sd (as the matrices average
            seeds), and the titles say so.

    Returns:
        Path: ``out``.
    """
    rows = _filter(
        summary,
        "block summary",
        group=group,
        decoder=decoder,
        target=target,
        metric=metric,
        evaluation=evaluation,
        alignment=alignment,
        seed=seed,
    )
    keys, over_seeds = ["target", "metric", "block", "method"], ""
    n_seeds = rows["seed"].nunique() if "seed" in rows else 1
    if seed is None and n_seeds > 1:
        _check_unique(rows, [*keys, "seed"], "block summary", "mean")
        rows = rows.groupby(keys, as_index=False, sort=False).agg(mean=("mean", "mean"), sd=("sd", "mean"))
        over_seeds = f", mean over {n_seeds} seeds"
    _check_unique(rows, keys, "block summary", "mean")
    panels = list(dict.fromkeys(zip(rows["target"], rows["metric"])))
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    width = 0.8 / len(order)
    # Panels wrap into rows of a figure at most ~16 in wide (8 methods x 8 blocks: one panel a row).
    panel_width = max(3.2, 0.15 * len(order) * rows["block"].nunique() + 1.2)
    n_cols = max(1, min(len(panels), int(16 // panel_width)))
    n_rows = -(-len(panels) // n_cols)
    with theme("ticks"):
        fig, axes = plt.subplots(
            n_rows,
            n_cols,
            squeeze=False,
            layout="constrained",
            figsize=(panel_width * n_cols + 1.4, 3.1 * n_rows + 0.3),
        )
        for ax in axes.ravel()[len(panels) :]:
            ax.set_visible(False)
        for ax, (tgt, met) in zip(axes.ravel(), panels):
            data = rows[(rows["target"] == tgt) & (rows["metric"] == met)]
            blocks = list(dict.fromkeys(data["block"]))
            cut = met in ("r2", "r2_swapped") and data["mean"].min() < R2_FLOOR
            for j, m in enumerate(order):
                sub = data[data["method"] == m].set_index("block").reindex(blocks)
                # a bar that runs off a cut axis gets no error bar: from a mean of -60 its sd would draw a
                # line through the whole panel
                sd = sub["sd"].where(~(cut & (sub["mean"] < R2_FLOOR)), 0).fillna(0)
                ax.bar(
                    np.arange(len(blocks)) + (j - (len(order) - 1) / 2) * width,
                    sub["mean"],
                    width,
                    yerr=sd,
                    capsize=2,
                    color=palette[m],
                    label=m,
                    error_kw={"lw": 0.8},
                )
            ax.set_xticks(np.arange(len(blocks)), blocks, rotation=30, ha="right")
            ax.axhline(0, color="0.3", lw=0.6)
            title = f"{tgt} {met}{over_seeds}"
            if cut:
                ax.set_ylim(R2_FLOOR - 0.05, 1.05)  # bars below -1 run off the axis, as in the matrices
                title += " (axis cut at -1, no sd for bars below; values in the table)"
            ax.set(title=title, ylabel=f"{met} (mean ± sd)")
        axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="method")
        return save_figure(fig, out)


# ----------------------------------------------------------------------------- maze analysis
_VERSION_STYLES = ("-", "--", ":", "-.")
#: panels of the maze score figure: (title, evaluation, target, metric)
MAZE_SCORE_PANELS = (
    ("velocity R² (in-sample)", "in_sample", "velocity", "r2"),
    ("position R² (in-sample)", "in_sample", "position", "r2"),
    ("condition accuracy (cross-validated)", "cross_validated", "separation", "condition_accuracy"),
    ("velocity R² (held-out)", "held_out", "velocity", "r2"),
    ("position R² (held-out)", "held_out", "position", "r2"),
    ("distance ratio (between / within)", "cross_validated", "separation", "distance_ratio"),
)


def plot_maze_latents(panels, out, *, max_trials_per_condition=10, ncols=None, title=None) -> Path:
    """3-D latents of maze trial subsets: colour = maze (``trial_type``), line style = version
    (solid = straight, dashed/dotted = curved), condition averages thick, single trials thin.

    Args:
        panels: ``(name, latent, trial_type, trial_version)`` per panel; ``latent`` (trial, bin, 3) or
            (trial, bin, 2), the others (trial,) ints.
        out: Image path.
        max_trials_per_condition: Single trials drawn per condition (the first ones: deterministic).
        ncols: Panels per row (default: up to 4).
    """
    if not panels:
        raise InputError("maze latents", None, "no latent panels given")
    types = sorted({int(t) for _, _, tt, _ in panels for t in np.asarray(tt)})
    colours = dict(zip(types, sns.color_palette("husl", max(len(types), 2))))
    ncols = ncols or min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    with theme("white"):
        fig = plt.figure(figsize=(3.4 * ncols + 1.2, 3.3 * nrows + 0.5), layout="constrained")
        for k, (name, lat, trial_type, version) in enumerate(panels):
            lat = np.asarray(lat, dtype=float)
            trial_type, version = np.asarray(trial_type, dtype=int), np.asarray(version, dtype=int)
            if (
                lat.ndim != 3
                or lat.shape[2] not in (2, 3)
                or trial_type.shape != (lat.shape[0],)
                or version.shape != (lat.shape[0],)
            ):
                raise InputError(
                    "maze latents",
                    str(name),
                    f"expected (trial, bin, 2|3) latents with one type "
                    f"and version per trial, got {lat.shape}, {trial_type.shape}, {version.shape}",
                )
            ax = fig.add_subplot(nrows, ncols, k + 1, **({"projection": "3d"} if lat.shape[2] == 3 else {}))
            for t, v in sorted(set(zip(trial_type.tolist(), version.tolist()))):
                idx = np.flatnonzero((trial_type == t) & (version == v))
                style = _VERSION_STYLES[min(v, len(_VERSION_STYLES) - 1)]
                for i in idx[:max_trials_per_condition]:
                    ax.plot(*lat[i].T, color=colours[t], lw=0.4, alpha=0.25, ls=style)
                avg = lat[idx].mean(axis=0)
                ax.plot(*avg.T, color=colours[t], lw=2.2, ls=style)
                ax.scatter(*avg[0], color=colours[t], s=20, edgecolors="k", linewidths=0.6, zorder=4)
            ax.set_title(f"{name} ({lat.shape[0]} trials)", fontsize=8)
            if lat.shape[2] == 3:
                ax.view_init(elev=20, azim=-60)
                ax.tick_params(labelsize=5)
        handles = [Line2D([], [], color=colours[t], lw=2.2, label=f"maze {t}") for t in types]
        handles += [
            Line2D([], [], color="0.2", lw=1.6, ls=_VERSION_STYLES[0], label="straight (v0)"),
            Line2D([], [], color="0.2", lw=1.6, ls=_VERSION_STYLES[1], label="curved (v1)"),
            Line2D([], [], color="0.2", lw=1.6, ls=_VERSION_STYLES[2], label="curved (v2)"),
            Line2D([], [], ls="", marker="o", color="w", markeredgecolor="k", label="start"),
        ]
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="condition")
        if title:
            fig.suptitle(title)
        return save_figure(fig, out)


def plot_maze_scores(scores: pd.DataFrame, out, *, decoder="linear") -> Path:
    """Bars per subset (hue = method; mean ± sd over seeds and sessions) of the panels in
    :data:`MAZE_SCORE_PANELS`; the condition-accuracy panel marks chance with a black tick.

    Args:
        scores: Maze score table(s) of :func:`pipeline.analysis.maze.subset_table`.
        out: Image path.
        decoder: Decoder of the R² panels.
    """
    rows = scores[(scores["decoder"] == decoder) | (scores["target"] == "separation")]
    if rows.empty:
        raise InputError(
            "maze scores", "decoder", f"no rows of decoder {decoder!r}; the table has {sorted(set(scores['decoder']))}"
        )
    subsets = list(dict.fromkeys(rows["subset"]))
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    width = 0.8 / len(order)
    x = np.arange(len(subsets))
    with theme("ticks"):
        fig, axes = plt.subplots(
            2,
            3,
            layout="constrained",
            squeeze=False,
            figsize=(max(3.0, 0.45 * len(order) * len(subsets) + 1.0) * 3, 6.6),
        )
        for ax, (panel_title, evaluation, target, metric) in zip(axes.flat, MAZE_SCORE_PANELS):
            data = rows[(rows["evaluation"] == evaluation) & (rows["target"] == target) & (rows["metric"] == metric)]
            for j, m in enumerate(order):
                stats = data[data["method"] == m].groupby("subset")["value"].agg(["mean", "std"]).reindex(subsets)
                ax.bar(
                    x + (j - (len(order) - 1) / 2) * width,
                    stats["mean"],
                    width,
                    yerr=stats["std"].fillna(0),
                    capsize=2,
                    color=palette[m],
                    label=m,
                    error_kw={"lw": 0.8},
                )
            if metric == "condition_accuracy":
                chance = rows[rows["metric"] == "chance_accuracy"].groupby("subset")["value"].mean().reindex(subsets)
                ax.scatter(x, chance, marker="_", s=300, color="k", zorder=5, label="chance")
            if metric == "distance_ratio":
                ax.axhline(1.0, color="0.3", lw=0.6, ls="--")
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_xticks(x, subsets, rotation=30, ha="right", fontsize=7)
            ax.set_title(panel_title, fontsize=9)
        handles, labels = axes[0, 2].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
        return save_figure(fig, out)


# ------------------------------------------------------------------------- latent dynamics (Tables 1/3, Figs 1a, 4b)
def plot_similarity(table: pd.DataFrame, out, *, seed=None) -> Path:
    """Similarity of trial-averaged latent trajectories per method, diagonal vs off-diagonal pairs
    (:func:`pipeline.analysis.dynamics.similarity_table`): one panel per metric (``r``,
    ``consistency_r2``), a box per method and pair kind with every pair as a dot (seeded jitter).

    Args:
        table: the similarity table.
        out: image path.
        seed: keep one seed (None keeps all; seeds then pool).
    """
    rows = _filter(table, "similarity", seed=seed)
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    metrics = [m for m in ("r", "consistency_r2") if m in set(rows["metric"])]
    titles = {"r": "correlation r (leak-free Procrustes)", "consistency_r2": "CEBRA consistency_score (R²)"}
    pairs = {"diagonal": (-0.2, "0.95", "o"), "off_diagonal": (0.2, "0.8", "^")}
    rng = np.random.default_rng(0)
    with theme("ticks"):
        fig, axes = plt.subplots(
            1,
            len(metrics),
            figsize=(min(16.0, 0.9 * len(order) * len(metrics) + 3.0), 3.6),
            squeeze=False,
            layout="constrained",
        )
        for ax, metric in zip(axes[0], metrics):
            sub = rows[rows["metric"] == metric]
            for pair, (shift, shade, marker) in pairs.items():
                values = [
                    sub.loc[(sub["method"] == m) & (sub["pair"] == pair), "value"].dropna().to_numpy() for m in order
                ]
                positions = np.arange(len(order)) + shift
                ax.boxplot(
                    values,
                    positions=positions,
                    widths=0.34,
                    showfliers=False,
                    patch_artist=True,
                    boxprops={"facecolor": shade},
                    medianprops={"color": "0.2"},
                )
                for x, v, m in zip(positions, values, order):
                    ax.scatter(
                        x + rng.uniform(-0.08, 0.08, len(v)),
                        v,
                        s=10,
                        marker=marker,
                        color=palette[m],
                        alpha=0.8,
                        zorder=3,
                        linewidths=0,
                    )
            ax.set_xticks(range(len(order)), order, rotation=30)
            ax.set(title=titles.get(metric, metric), ylabel=metric)
        handles = [
            Line2D([], [], marker=mk, ls="", color="0.3", label=p.replace("_", "-")) for p, (_, _, mk) in pairs.items()
        ]
        axes[0, -1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.suptitle("trial-averaged latent dynamics: training vs test averages")
        return save_figure(fig, out)


def plot_speed_accuracy(curves: pd.DataFrame, correlations: pd.DataFrame, out) -> Path:
    """Each method's accuracy over time beside the trial-averaged ``|v_x|`` and ``|v_y|`` profiles
    (:func:`pipeline.analysis.dynamics.accuracy_speed_correlation`), one panel per method and seed, the
    correlations in the panel titles (the paper's Figs 4b / 12b)."""
    curves = _filter(curves, "speed_profiles")
    accuracy = curves[curves["series"].str.startswith("accuracy:")]
    if accuracy.empty:
        raise InputError("speed_profiles", "series", "no accuracy curve to draw")
    series = list(dict.fromkeys(accuracy["series"]))
    methods = {s: s.split(":")[1] for s in series}
    series.sort(key=lambda s: (_method_order(methods.values()).index(methods[s]), s))
    palette = _palette(methods.values())
    ncols = min(MATRIX_COLUMNS, len(series))
    nrows = -(-len(series) // ncols)
    with theme("ticks"):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(3.6 * ncols + 0.8, 2.9 * nrows + 0.6), squeeze=False, layout="constrained"
        )
        for ax in axes.flat[len(series) :]:
            ax.set_axis_off()
        for ax, name in zip(axes.flat, series):
            method, seed = methods[name], int(name.rsplit("seed", 1)[1])
            line = accuracy[accuracy["series"] == name].sort_values("bin")
            ax.plot(line["time_s"], line["value"], color=palette[method], lw=2)
            ax.set(xlabel="time from alignment event (s)", ylabel="accuracy (%)")
            twin = ax.twinx()
            for profile, style in (("abs_vx", "--"), ("abs_vy", ":")):
                p = curves[curves["series"] == profile].sort_values("bin")
                twin.plot(
                    p["time_s"], p["value"], color="0.3", ls=style, lw=1.2, label=profile.replace("abs_", "|") + "|"
                )
            twin.set_ylabel("trial-averaged |v|")
            r = correlations[(correlations["method"] == method) & (correlations["seed"] == seed)].set_index("profile")[
                "r"
            ]
            values = [r.get(p, np.nan) for p in ("abs_vx", "abs_vy")]
            text = (
                f"r(|vx|) = {values[0]:.2f}, r(|vy|) = {values[1]:.2f}"
                if np.isfinite(values).all()
                else "r undefined: flat accuracy curve"
            )
            ax.set_title(f"{method} (seed {seed})\n{text}")
        twin.legend(loc="lower right", frameon=False, fontsize="small")
        fig.suptitle("direction accuracy over time against the hand-speed profiles")
        return save_figure(fig, out)


def plot_velocity_coverage(table: pd.DataFrame, out, *, seed=None) -> Path:
    """Mean decoded vs mean true hand speed per quantile of the true speed, one line per method
    (mean over cells, band = sd), in-sample and held-out panels, identity dashed (the paper's Fig. 1a:
    a decoder that covers the rare fast movements stays on the diagonal at the top quantiles)."""
    rows = _filter(table, "velocity_coverage", seed=seed)
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    evaluations = [e for e in ("in_sample", "held_out") if e in set(rows["evaluation"])]
    with theme("ticks"):
        fig, axes = plt.subplots(
            1,
            len(evaluations),
            figsize=(4.4 * len(evaluations) + 1.6, 3.8),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        for ax, evaluation in zip(axes[0], evaluations):
            sub = rows[rows["evaluation"] == evaluation]
            means = sub.groupby(["method", "quantile"], as_index=False)[["true_speed", "predicted_speed"]].agg(
                ["mean", "std"]
            )
            means.columns = ["method", "quantile", "true", "true_sd", "predicted", "predicted_sd"]
            for method in order:
                m = means[means["method"] == method].sort_values("quantile")
                ax.plot(m["true"], m["predicted"], marker="o", ms=3, color=palette[method], label=method)
                ax.fill_between(
                    m["true"],
                    m["predicted"] - m["predicted_sd"].fillna(0),
                    m["predicted"] + m["predicted_sd"].fillna(0),
                    color=palette[method],
                    alpha=0.15,
                    lw=0,
                )
            top = float(np.nanmax(means[["true", "predicted"]].to_numpy()))
            ax.plot([0, top], [0, top], ls="--", color="0.4", lw=1)
            n_cells = sub["cell"].nunique()
            ax.set(
                title=f"{evaluation.replace('_', '-')} ({n_cells} cells)",
                xlabel="true speed (quantile mean)",
                ylabel="decoded speed (quantile mean)",
            )
        axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.suptitle("coverage of the velocity range: linear decoder's speed per quantile of the true speed")
        return save_figure(fig, out)


#: x positions of :func:`plot_alignment_curve`: variant -> label (few_shot_{k} are placed by k)
_NEW_SESSION_AXIS = {"label_free": "0", "label_free_consensus": "0 + other\nsessions"}


def plot_alignment_curve(scores: pd.DataFrame, out, *, decoder: str = "linear", seed=None) -> Path:
    """Decoding a new session with few or none of its labels: the mean off-diagonal held-out score of
    each method against the number of the new session's labelled trials per direction used to align
    (0 = ``label_free``, k = ``few_shot_{k}``, all of its training trials = ``leak_free``), with the
    paper's protocol (dashed) and no alignment (dotted) as references. Panels: velocity R² (correct,
    not swapped), position R², peak direction accuracy.

    Args:
        scores: the tidy ``scores`` table of a comparison group (every alignment variant).
        out: image path.
        decoder, seed: row filters (None keeps all; seeds then pool).
    """
    rows = _filter(scores, "scores", decoder=decoder, evaluation="held_out", pair="off_diagonal", seed=seed)
    few = sorted({int(v.rsplit("_", 1)[1]) for v in rows["alignment"] if v.startswith("few_shot_")})
    axis = {**_NEW_SESSION_AXIS, **{f"few_shot_{k}": str(k) for k in few}, "leak_free": "all\n(leak-free)"}
    present = [v for v in axis if v in set(rows["alignment"])]
    if not present:
        raise InputError("scores", "alignment", f"no new-session variant; available: {sorted(set(rows['alignment']))}")
    panels = (
        ("velocity", "r2", "velocity R² (correct)"),
        ("position", "r2", "position R²"),
        ("direction", "peak_accuracy", "peak accuracy (%)"),
    )
    order, palette = _method_order(rows["method"]), _palette(rows["method"])
    with theme("ticks"):
        fig, axes = plt.subplots(1, 3, figsize=(min(16.0, 3.2 + 1.1 * len(present) * 3), 3.8), layout="constrained")
        for ax, (target, metric, title) in zip(axes, panels):
            sub = rows[(rows["target"] == target) & (rows["metric"] == metric)]
            means = sub.groupby(["method", "alignment"])["value"].mean()
            for method in order:
                y = [means.get((method, v), np.nan) for v in present]
                ax.plot(range(len(present)), y, marker="o", ms=4, color=palette[method], label=method)
                for variant, style in (("paper", "--"), ("none", ":")):
                    if (method, variant) in means.index:
                        ax.axhline(means[method, variant], ls=style, lw=1, color=palette[method], alpha=0.8)
            ax.set_xticks(range(len(present)), [axis[v] for v in present])
            ax.set(title=title, xlabel="labelled trials per direction of the new session")
            if metric == "r2":
                low = np.nanmin([means.min(), 0.0])
                ax.set_ylim(max(low, R2_FLOOR) - 0.05, 1.0)
        handles, labels = axes[0].get_legend_handles_labels()
        handles += [Line2D([], [], ls="--", color="0.3"), Line2D([], [], ls=":", color="0.3")]
        labels += ["paper protocol", "no alignment"]
        axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.suptitle(f"decoding a new session without its labels ({decoder}; mean over off-diagonal cells)")
        return save_figure(fig, out)

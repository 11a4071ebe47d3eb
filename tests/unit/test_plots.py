"""Figures from synthetic tidy tables: valid, non-blank, byte-identical PNGs and clear filter errors."""

from __future__ import annotations

import io
import itertools

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from pipeline.errors import InputError
from pipeline.report import plots

pytestmark = pytest.mark.xdist_group("plots")  # one pytest worker: its module fixtures run once

METHODS = ["pca", "ner", "cebra"]  # deliberately not in plotting order
SESSIONS = [("C-20161013", 2016, "Chewie"), ("C-20161007", 2016, "Chewie"), ("M-20150610", 2015, "Mihili")]
CELLS = [f"{s}/M1" for s, _, _ in SESSIONS]
SORTED_CELLS = ["M-20150610/M1", "C-20161007/M1", "C-20161013/M1"]  # by (year, session, area)
ALIGNMENTS = ["none", "paper", "joint", "leak_free"]
SEEDS = [0, 1]


def _keys(train, test):
    (s1, y1, subj1), (s2, y2, subj2) = train, test
    diag = s1 == s2
    return {
        "group": "m1",
        "decoder": "linear",
        "train_cell": f"{s1}/M1",
        "test_cell": f"{s2}/M1",
        "train_session": s1,
        "train_area": "M1",
        "test_session": s2,
        "test_area": "M1",
        "train_subject": subj1,
        "test_subject": subj2,
        "train_year": y1,
        "test_year": y2,
        "train_hemisphere": "left",
        "test_hemisphere": "left",
        "pair": "diagonal" if diag else "off_diagonal",
        "cross_session": not diag,
        "cross_area": False,
        "cross_hemisphere": False,
        "cross_year": y1 != y2,
        "n_train_trials": 40,
        "n_test_trials": 10,
    }


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    rows = []
    for method, seed, train, test in itertools.product(METHODS, SEEDS, SESSIONS, SESSIONS):
        base = _keys(train, test)
        for evaluation in ("in_sample", "held_out"):
            if evaluation == "in_sample" and train != test:
                continue
            values = {
                ("velocity", "r2"): rng.uniform(0.2, 0.9),
                ("position", "r2"): rng.uniform(0.1, 0.8),
                ("direction", "peak_accuracy"): rng.uniform(20, 95),
                ("direction", "peak_time_s"): 0.3,
            }
            if evaluation == "held_out":
                values[("velocity", "r2_swapped")] = rng.uniform(-1, 0.9)
            for alignment in ALIGNMENTS:
                for (target, metric), value in values.items():
                    if train != test:  # rotated cells differ per alignment; diagonal ones are repeated
                        value = value + rng.normal(0, 0.05)
                    rows.append(
                        {
                            **base,
                            "method": method,
                            "seed": seed,
                            "target": target,
                            "metric": metric,
                            "evaluation": evaluation,
                            "alignment": alignment,
                            "rotation_direction": 3 if alignment == "paper" and train != test else -1,
                            "value": value,
                        }
                    )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def acc():
    rng = np.random.default_rng(1)
    time = np.linspace(-0.2, 0.5, 8)
    rows = []
    for method, seed, train, test in itertools.product(METHODS, SEEDS, SESSIONS, SESSIONS):
        base = _keys(train, test)
        for alignment in ("none", "paper"):
            curve = 12.5 + 70 * np.clip(time + 0.2, 0, None) + rng.normal(0, 4, len(time))
            rows += [
                {
                    **base,
                    "method": method,
                    "seed": seed,
                    "evaluation": "held_out",
                    "alignment": alignment,
                    "rotation_direction": -1,
                    "bin": b,
                    "time_s": t,
                    "accuracy": a,
                }
                for b, (t, a) in enumerate(zip(time, curve))
            ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def summary():
    rng = np.random.default_rng(2)
    rows = [
        {
            "group": "m1",
            "method": m,
            "decoder": "linear",
            "target": t,
            "metric": met,
            "evaluation": "held_out",
            "alignment": "paper",
            "seed": -1,
            "block": block,
            "mean": rng.uniform(0.2, 0.9),
            "sd": rng.uniform(0.01, 0.1),
            "n": 6,
        }
        for m in METHODS
        for t, met in (("velocity", "r2"), ("direction", "peak_accuracy"))
        for block in ("diagonal", "cross_session", "cross_year")
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def latents():
    rng = np.random.default_rng(3)
    dirs = np.repeat(np.arange(8), 4)
    dirs_missing = dirs[dirs != 5]  # direction 5 has no trials
    walk = lambda n, d: rng.normal(0, 1, (n, 12, d)).cumsum(axis=1)  # noqa: E731
    return {
        "ner": (walk(len(dirs), 3), dirs),
        "cebra": (walk(len(dirs_missing), 3), dirs_missing),
        "umap": (walk(len(dirs), 2), dirs),
    }


def _check_png(path, min_size=(200, 300)):
    assert path.is_file()
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_size[0] and img.shape[1] >= min_size[1]
    assert img[..., :3].std() > 0.01
    return img


def _render_twice(tmp_path, fn, table, **kwargs):
    a = fn(table, tmp_path / "a" / "fig.png", **kwargs)
    b = fn(table, tmp_path / "b" / "fig.png", **kwargs)
    assert a == tmp_path / "a" / "fig.png"
    assert a.read_bytes() == b.read_bytes()
    return a


# ----------------------------------------------------------------------------- decode matrices
def test_decode_matrix_frames_match_table(scores):
    frames = plots.decode_matrix_frames(scores, seed=1)
    assert list(frames) == ["ner", "cebra", "pca"]
    want = scores.query(
        "evaluation == 'held_out' and alignment == 'paper' and target == 'velocity' "
        "and metric == 'r2_swapped' and seed == 1"
    )
    for method, frame in frames.items():
        assert list(frame.index) == SORTED_CELLS and list(frame.columns) == SORTED_CELLS
        for row in want[want["method"] == method].itertuples():
            assert frame.loc[row.train_cell, row.test_cell] == row.value


def test_decode_matrix_frames_average_seeds_and_default_metrics(scores):
    frames = plots.decode_matrix_frames(scores, alignment="joint")
    sel = scores.query(
        "evaluation == 'held_out' and alignment == 'joint' and metric == 'r2_swapped' and method == 'ner'"
    )
    mean = sel.groupby(["train_cell", "test_cell"])["value"].mean()
    for (train, test), value in mean.items():
        assert frames["ner"].loc[train, test] == pytest.approx(value)
    no_swapped = scores[scores["metric"] != "r2_swapped"]
    r2 = plots.decode_matrix_frames(no_swapped, seed=0)["pca"]
    pick = no_swapped.query(
        "method == 'pca' and seed == 0 and evaluation == 'held_out' and alignment == 'paper' "
        "and target == 'velocity' and train_cell == @CELLS[0] and test_cell == @CELLS[2]"
    )
    assert r2.loc[CELLS[0], CELLS[2]] == pick["value"].item() and pick["metric"].item() == "r2"
    direction = plots.decode_matrix_frames(scores, target="direction", seed=0)["ner"]
    assert direction.to_numpy().min() >= 20  # peak_accuracy, not peak_time_s


def test_decode_matrix_figure_cells_and_labels(scores):
    frames = plots.decode_matrix_frames(scores, seed=0)
    fig = plots._decode_matrix_figure([("r2_swapped", frames)], "t")
    try:
        heat_axes = [ax for ax in fig.axes if ax.get_title()]
        assert len(heat_axes) == len(METHODS)
        for i, (ax, (method, frame)) in enumerate(zip(heat_axes, frames.items())):
            assert ax.collections[0].get_array().size == 9
            assert [t.get_text() for t in ax.get_xticklabels()] == SORTED_CELLS  # one row: all at the bottom
            assert [t.get_text() for t in ax.get_yticklabels()] == (SORTED_CELLS if i == 0 else [])  # first column
            assert len(ax.texts) == 9 and ax.texts[0].get_text() == f"{frame.iloc[0, 0]:.2f}"
            assert ax.get_title().startswith(f"{method}\ndiag ")
    finally:
        plt.close(fig)


def test_velocity_matrices_show_the_swapped_and_the_correct_r2_on_their_own_scales(scores):
    """The default velocity figure: the paper's swapped R² block, then the correct R² block."""
    blocks = [(m, plots.decode_matrix_frames(scores, seed=0, metric=m)) for m in ("r2_swapped", "r2")]
    fig = plots._decode_matrix_figure(blocks, "t")
    try:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert titles[:3] == [t for t in titles if ", swapped R²" in t] and len(titles) == 6
        assert all(", R²\n" in t for t in titles[3:])
        want = blocks[1][1]["ner"].iloc[0, 0]
        ner_r2 = next(ax for ax in fig.axes if ax.get_title().startswith("ner, R²"))
        assert ner_r2.texts[0].get_text() == f"{want:.2f}"
    finally:
        plt.close(fig)


def test_r2_below_minus_one_is_clipped_and_said_and_panels_wrap_in_rows():
    """A swapped R² of -460 no longer sets the scale of every panel: drawn at -1, written "≤-1";
    eight methods wrap into two rows of four."""
    cells = ["a/M1", "b/M1"]
    frames = {
        m: pd.DataFrame([[0.8, 0.5], [0.4, -460.0 if m == "umap" else 0.7]], index=cells, columns=cells)
        for m in plots.METHOD_ORDER
    }
    fig = plots._decode_matrix_figure([("r2_swapped", frames)], "t")
    try:
        heat = [ax for ax in fig.axes if ax.get_title()]
        assert len(heat) == 8
        umap = next(ax for ax in heat if ax.get_title().startswith("umap\n"))
        assert [t.get_text() for t in umap.texts] == ["0.80", "0.50", "0.40", "≤-1"]
        assert umap.collections[0].get_clim() == (-1.0, 0.8)
        assert "diag -229.60 /" in umap.get_title()  # titles keep the real values
        columns = sorted({round(ax.get_position().x0, 3) for ax in heat})
        rows = sorted({round(ax.get_position().y0, 3) for ax in heat})
        assert len(columns) == plots.MATRIX_COLUMNS and len(rows) == 2
        accuracy = {m: f.clip(lower=0) * 100 for m, f in frames.items()}
        fig2 = plots._decode_matrix_figure([("peak_accuracy", accuracy)], "t")  # not an R²: never clipped
        assert all("≤" not in t.get_text() for ax in fig2.axes for t in ax.texts)
        plt.close(fig2)
    finally:
        plt.close(fig)


def test_long_cell_names_leave_room_for_the_next_blocks_titles():
    """Real cell names ("Chewie-20150629/M1") rotated under a block's bottom row once ran into the
    titles of the block below (paper run, 8 methods, swapped R² + R²): no label may overlap a title."""
    cells = [f"Chewie-2015062{i}/M1" for i in range(4)]
    values = np.where(np.eye(4, dtype=bool), 0.7, -3.0)  # clipped below -1, as the peers' swapped R²
    frames = {m: pd.DataFrame(values, index=cells, columns=cells) for m in plots.METHOD_ORDER}
    with plots.theme("white"):  # as plot_decode_matrices draws it
        fig = plots._decode_matrix_figure([("r2_swapped", frames), ("r2", frames)], "t")
    try:
        fig.savefig(io.BytesIO(), dpi=plots.DPI)
        renderer = fig.canvas.get_renderer()
        heat = [ax for ax in fig.axes if ax.get_title()]
        titles = [ax.title.get_window_extent(renderer) for ax in heat]
        labels = [
            text.get_window_extent(renderer)
            for ax in heat
            for text in [ax.xaxis.label, *ax.get_xticklabels()]
            if text.get_visible() and text.get_text()
        ]
        assert len(labels) > 8 and not [(a, b) for a in labels for b in titles if a.overlaps(b)]
    finally:
        plt.close(fig)


def test_plot_decode_matrices(tmp_path, scores):
    path = _render_twice(tmp_path, plots.plot_decode_matrices, scores)
    _check_png(path)
    single = plots.plot_decode_matrices(scores, tmp_path / "seed0.png", seed=0, target="position")
    assert single.read_bytes() != path.read_bytes()


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"decoder": "knn"}, "decoder", "no rows with decoder='knn'; available: ['linear']"),
        ({"alignment": "procrustes"}, "alignment", "available: ['joint', 'leak_free', 'none', 'paper']"),
        ({"seed": 7}, "seed", "no rows with seed=7; available: [0, 1]"),
        ({"metric": "mse"}, "metric", "metric='mse'"),
    ],
)
def test_decode_matrices_missing_filter_values(tmp_path, scores, kwargs, field, words):
    with pytest.raises(InputError) as err:
        plots.plot_decode_matrices(scores, tmp_path / "x.png", **kwargs)
    assert err.value.field == field and words in str(err.value)
    assert not (tmp_path / "x.png").exists()


def test_duplicate_cells_are_refused(scores):
    two_groups = pd.concat([scores, scores.assign(group="within")])
    with pytest.raises(InputError, match="differ in \\['group'\\]"):
        plots.decode_matrix_frames(two_groups)
    assert plots.decode_matrix_frames(two_groups, group="within")["ner"].shape == (3, 3)


# ----------------------------------------------------------------------------- other figures
def test_plot_accuracy_time(tmp_path, acc):
    _check_png(_render_twice(tmp_path, plots.plot_accuracy_time, acc))
    with pytest.raises(InputError, match="evaluation='in_sample'; available: \\['held_out'\\]"):
        plots.plot_accuracy_time(acc, tmp_path / "x.png", evaluation="in_sample")


def test_plot_score_distributions(tmp_path, scores):
    _check_png(_render_twice(tmp_path, plots.plot_score_distributions, scores))
    _check_png(
        plots.plot_score_distributions(
            scores, tmp_path / "off.png", evaluation="held_out", pair="off_diagonal", alignment="paper"
        )
    )
    with pytest.raises(InputError) as err:
        plots.plot_score_distributions(scores, tmp_path / "x.png", evaluation="held_out", pair="off_diagonal")
    assert err.value.field == "alignment"
    with pytest.raises(InputError, match="pair='cross'"):
        plots.plot_score_distributions(scores, tmp_path / "x.png", pair="cross")


def test_plot_latents(tmp_path, latents):
    path = _render_twice(tmp_path, plots.plot_latents, latents, title="latents", max_trials_per_direction=2)
    _check_png(path)
    as_list = [(name, lat, dirs) for name, (lat, dirs) in latents.items()]
    assert (
        plots.plot_latents(as_list, tmp_path / "list.png", title="latents", max_trials_per_direction=2).read_bytes()
        == path.read_bytes()
    )
    _check_png(
        plots.plot_latents({"ner": latents["ner"]}, tmp_path / "avg.png", single_trials=False), min_size=(200, 200)
    )


@pytest.mark.parametrize(
    "bad, words",
    [
        ({}, "no latent panels"),
        ({"x": (np.zeros((4, 5)), np.zeros(4, int))}, "expected (trial, bin, 2 or 3)"),
        ({"x": (np.zeros((4, 5, 3)), np.full(4, 8))}, "ints in 0..7"),
    ],
)
def test_plot_latents_bad_input(tmp_path, bad, words):
    with pytest.raises(InputError) as err:
        plots.plot_latents(bad, tmp_path / "x.png")
    assert words in str(err.value)


def test_block_summary_wraps_wide_panels_and_cuts_r2_axes_at_minus_one(tmp_path, monkeypatch):
    """The demo's group (8 methods x 8 blocks x 5 panels) was one 14,280-px row: now one panel a row,
    at most about 16 in wide, and an R² axis that a mean of -45 would stretch stops at -1."""
    blocks = [f"block{b}" for b in range(8)]
    panels = [("velocity", "r2_swapped"), ("velocity", "r2"), ("position", "r2"), ("direction", "peak_accuracy")]
    rows = [
        {"group": "g", "method": m, "decoder": "linear", "target": t, "metric": k, "evaluation": "held_out"}
        | {"alignment": "paper", "seed": 0, "block": b}
        | ({"mean": -45.0, "sd": 100.0, "n": 3} if m == "umap" else {"mean": 0.5, "sd": 0.1, "n": 3})
        for m in plots.METHOD_ORDER
        for t, k in panels
        for b in blocks
    ]
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: drawn.setdefault("fig", fig))
    fig = plots.plot_block_summary(pd.DataFrame(rows), tmp_path / "b.png")
    try:
        assert fig.get_size_inches()[0] <= 16 + 1.4 and fig.get_size_inches()[1] > 3.1 * 3
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
        assert len(visible) == 4
        r2 = next(ax for ax in visible if ax.get_title().startswith("velocity r2_swapped"))
        assert r2.get_ylim() == (plots.R2_FLOOR - 0.05, 1.05) and "axis cut at -1" in r2.get_title()
        # the bar off the cut axis has no error bar (its sd of 100 would cross the panel); the others keep theirs
        spans = {
            bars.get_label(): {
                round(y1 - y0, 9) for seg in bars.errorbar.lines[2][0].get_segments() for (_, y0), (_, y1) in [seg]
            }
            for bars in r2.containers
            if isinstance(bars, BarContainer)
        }
        assert spans["umap"] == {0.0} and spans["ner"] == {0.2}
        accuracy = next(ax for ax in visible if ax.get_title().startswith("direction"))
        assert "cut" not in accuracy.get_title()
    finally:
        plt.close(fig)


def test_block_summary_of_several_seeds_draws_their_mean(tmp_path, summary, monkeypatch):
    """A run with seeds [0, 1, 2] gave figures_group a block table with one row per seed, which it refused:
    the bars are now the mean over seeds (as the matrices), and the titles say so."""
    seeds = pd.concat([summary.assign(seed=s, mean=summary["mean"] + s) for s in (0, 1, 2)], ignore_index=True)
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: drawn.setdefault("fig", fig))
    fig = plots.plot_block_summary(seeds, tmp_path / "b.png")
    try:
        titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
        assert titles and all("mean over 3 seeds" in t for t in titles)
        heights = sorted(p.get_height() for ax in fig.axes for p in ax.patches if p.get_height() != 0)
        expected = sorted(v + 1 for v in summary["mean"] if v != -1)  # mean of v, v + 1, v + 2
        np.testing.assert_allclose(heights, expected)
    finally:
        plt.close(fig)
    one = plots.plot_block_summary(seeds, tmp_path / "one.png", seed=2)  # a chosen seed: that seed only
    plt.close(one)


def test_plot_block_summary(tmp_path, summary):
    _check_png(_render_twice(tmp_path, plots.plot_block_summary, summary))
    with pytest.raises(InputError, match="decoder='knn'; available: \\['linear'\\]"):
        plots.plot_block_summary(summary, tmp_path / "x.png", decoder="knn")
    with pytest.raises(InputError, match="alignment"):
        plots.plot_block_summary(pd.concat([summary, summary.assign(alignment="joint")]), tmp_path / "x.png")


def test_empty_table_is_refused(tmp_path, scores):
    with pytest.raises(InputError, match="no rows"):
        plots.plot_score_distributions(scores.iloc[:0], tmp_path / "x.png")

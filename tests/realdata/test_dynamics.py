"""The paper's latent-dynamics analyses (Tables 1/3, Figs 1a, 4b) on the authors' own Chewie M1 material.

Fixture: ../shared/data/real/ner_paper_results — the authors' NER and CEBRA-3D embeddings (with their
labels) and their stored Fig. 4 accuracy-over-time arrays (NER, CEBRA-3D, piVAE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import special_ortho_group

from pipeline.analysis.dynamics import (
    SPEED_COLUMNS,
    accuracy_speed_correlation,
    similarity_table,
    speed_profiles,
    trajectory_similarity,
    velocity_coverage,
)
from pipeline.analysis.stats import all_statistics, block_summary
from pipeline.errors import InputError
from pipeline.report import plots
from tests.support.authors import RESULTS, authors_cell
from tests.support.paths import requires_real

pytestmark = [requires_real, pytest.mark.realdata]

DATES_2016 = ["160929", "161005", "161006", "161007", "161014", "161021"]  # the order of the fig4 arrays
M1_DATES = ["150629", "150630", "161007", "161021"]


def _fig4_accuracy(method: str) -> pd.DataFrame:
    """The authors' stored Fig. 4 training-data accuracy curves (Chewie 2016 M1) as our accuracy table."""
    stored = np.load(RESULTS / "fig4" / f"{method}_Chewie2016_M1.npz")
    assert list(stored["date_subjects"]) == DATES_2016
    return pd.DataFrame(
        [
            {
                "method": method,
                "seed": 0,
                "decoder": "linear",
                "evaluation": "in_sample",
                "train_cell": date,
                "test_cell": date,
                "bin": b,
                "accuracy": stored["acc_time_2D"][i, 0, b],
            }
            for i, date in enumerate(DATES_2016)
            for b in range(40)
        ]
    )


def test_accuracy_speed_correlation_recomputes_the_papers_fig4b(tmp_path):
    # |v| profiles from the labels of every 2016 training trial (the CEBRA-3D files hold all six days)
    cells = [authors_cell("CEBRA3D", date) for date in DATES_2016]
    accuracy = pd.concat([_fig4_accuracy(m) for m in ("NER", "Cebra", "piVAE")])
    corr, curves = accuracy_speed_correlation(accuracy, cells, group="m1_2016")
    assert list(corr.columns) == SPEED_COLUMNS
    r = corr.set_index(["method", "profile"])["r"]
    # the values, recomputed from these arrays: NER 0.93, CEBRA 0.28, piVAE 0.85 (|v_x|)
    assert r["NER", "abs_vx"] == pytest.approx(0.925, abs=0.005)
    assert r["Cebra", "abs_vx"] == pytest.approx(0.279, abs=0.005)
    assert r["piVAE", "abs_vx"] == pytest.approx(0.849, abs=0.005)
    assert r["NER", "abs_vy"] > r["piVAE", "abs_vy"] > r["Cebra", "abs_vy"]
    assert set(corr["n_cells"]) == {6} and set(corr["n_bins"]) == {40}
    # the profile is the mean over the pooled training trials, not over session means
    pooled = np.concatenate([c.training_trials().velocity for c in cells])
    vx = curves[curves["series"] == "abs_vx"].sort_values("bin")["value"].to_numpy()
    np.testing.assert_allclose(vx, np.abs(pooled[..., 0]).mean(axis=0))
    out = plots.plot_speed_accuracy(curves, corr, tmp_path / "speed.png")
    assert out.stat().st_size > 10_000
    with pytest.raises(InputError, match="held_out"):
        accuracy_speed_correlation(accuracy, cells, group="m1_2016", evaluation="held_out")


def test_speed_profiles_refuse_a_wrong_shape():
    with pytest.raises(InputError, match=r"velocity.*\(trial, bin, 2\)"):
        speed_profiles(np.zeros((4, 40)))


@pytest.fixture(scope="module")
def similarity():
    cells = {m: [authors_cell(m, d) for d in M1_DATES] for m in ("NER", "CEBRA3D")}
    table = pd.concat([similarity_table(c, group="m1_chewie") for c in cells.values()], ignore_index=True)
    return cells, table


def test_similarity_table_rows_and_diagonal(similarity):
    cells, table = similarity
    assert len(table) == 2 * 2 * len(M1_DATES) ** 2  # methods x metrics x ordered pairs
    assert table["value"].notna().all() and (table["n_directions"] == 8).all()
    # the diagonal: training-trial averages against test-trial averages of the same cell, not rotated
    cell = cells["NER"][0]
    train, test = cell.training_trials(), cell.trials(cell.test)
    a = np.stack([train.latent[train.classes == k].mean(0) for k in range(8)])
    b = np.stack([test.latent[test.classes == k].mean(0) for k in range(8)])
    row = table[(table["method"] == "NER") & (table["train_cell"] == cell.name) & (table["test_cell"] == cell.name)]
    a, b = a - a.mean(axis=(0, 1)), b - b.mean(axis=(0, 1))  # each coordinate centred
    expected = (a * b).sum() / np.sqrt((a**2).sum() * (b**2).sum())
    assert row.set_index("metric")["value"]["r"] == pytest.approx(expected, abs=1e-12)
    # on these embeddings both methods keep r > 0.8 across sessions; the diagonal is the higher block
    means = table.groupby(["method", "metric", "pair"])["value"].mean()
    for method in ("NER", "CEBRA3D"):
        assert means[method, "r", "off_diagonal"] > 0.8
        assert means[method, "r", "diagonal"] > means[method, "r", "off_diagonal"]


def test_similarity_does_not_depend_on_how_a_cell_is_rotated(similarity):
    cells, _ = similarity
    a, b = cells["NER"][0], cells["NER"][2]
    rotation = special_ortho_group.rvs(3, random_state=0)

    def turned(cell):
        return type(cell)(cell.name, cell.latent @ rotation, cell.velocity, cell.classes, cell.train, cell.bin_time)

    before, _, _ = trajectory_similarity(a, b)
    source_turned, _, _ = trajectory_similarity(turned(a), b)
    target_turned, _, _ = trajectory_similarity(a, turned(b))
    # r: the leak-free Procrustes absorbs a rotation of either cell; CEBRA's consistency (a regression
    # of the target on the source, R² averaged over the target's coordinates) absorbs the source's only
    assert source_turned["r"] == pytest.approx(before["r"], abs=1e-9)
    assert target_turned["r"] == pytest.approx(before["r"], abs=1e-9)
    assert source_turned["consistency_r2"] == pytest.approx(before["consistency_r2"], abs=1e-9)


def test_similarity_statistics_and_figure(similarity, tmp_path):
    _, table = similarity
    tests = all_statistics(table)
    welch = tests[(tests["test"] == "welch_diag_vs_offdiag") & (tests["metric"] == "r")]
    assert set(welch["method"]) == {"NER", "CEBRA3D"}
    paired = tests[(tests["test"] == "ttest_rel") & (tests["subset"] == "off_diagonal") & (tests["metric"] == "r")]
    assert len(paired) == 1 and paired["n"].iloc[0] == len(M1_DATES) * (len(M1_DATES) - 1)
    blocks = block_summary(table)
    assert {"cross_year", "cross_hemisphere", "2015->2016"} <= set(blocks["block"])
    assert plots.plot_similarity(table, tmp_path / "similarity.png").stat().st_size > 10_000


def test_velocity_coverage_shows_cebra_missing_the_fast_movements(tmp_path):
    tables = []
    for method in ("NER", "CEBRA3D"):
        for date in M1_DATES:
            cell = authors_cell(method, date)
            table = velocity_coverage(cell, group="m1_chewie", quantiles=10)
            held_out = table[table["evaluation"] == "held_out"]
            assert held_out["n_bins"].sum() == cell.test.sum() * cell.latent.shape[1]
            assert list(held_out["quantile"]) == list(range(1, 11))
            tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    top = table[table["quantile"] == 10].groupby(["method", "evaluation"])["ratio"].mean()
    # Fig. 1a's point: CEBRA-3D's decoded speed reaches a fraction of the fastest movements, NER's most
    assert top["NER", "held_out"] > 0.5 > 0.3 > top["CEBRA3D", "held_out"]
    assert top["NER", "in_sample"] > 2 * top["CEBRA3D", "in_sample"]
    assert plots.plot_velocity_coverage(table, tmp_path / "coverage.png").stat().st_size > 10_000
    with pytest.raises(InputError, match="quantiles"):
        velocity_coverage(authors_cell("NER", "150629"), group="g", quantiles=1)

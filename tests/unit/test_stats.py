"""Statistics on the scores table: the numbers equal direct scipy/statsmodels calls on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.anova import AnovaRM

from pipeline.analysis.stats import (
    BLOCK_COLUMNS,
    KEYS,
    TEST_COLUMNS,
    all_statistics,
    block_summary,
    diagonal_vs_off_diagonal,
    method_tests,
)
from pipeline.errors import InputError

# Four cells chosen so that the blocks differ: c0/c1 share a session (cross-area), c2 is the same
# subject a year later, c3 another subject, right hemisphere, also 2016.
CELLS = {  # cell: (session, area, subject, year, hemisphere)
    "A-2015/M1": ("A-2015", "M1", "A", 2015, "left"),
    "A-2015/PMd": ("A-2015", "PMd", "A", 2015, "left"),
    "A-2016/M1": ("A-2016", "M1", "A", 2016, "left"),
    "B-2016/M1": ("B-2016", "M1", "B", 2016, "right"),
}
NAMES = list(CELLS)
KEY = dict(
    group="m1", decoder="linear", target="velocity", metric="r2", evaluation="held_out", alignment="none", seed=0
)


def make_scores(values: dict[str, np.ndarray], **key) -> pd.DataFrame:
    """Scores table with ``values[method][i, j]`` = score of train cell i on test cell j."""
    rows = []
    for method, matrix in values.items():
        for i, train in enumerate(NAMES):
            for j, test in enumerate(NAMES):
                (ts, ta, tsub, ty, th), (es, ea, esub, ey, eh) = CELLS[train], CELLS[test]
                rows.append(
                    {
                        **KEY,
                        **key,
                        "method": method,
                        "train_cell": train,
                        "test_cell": test,
                        "train_session": ts,
                        "train_area": ta,
                        "test_session": es,
                        "test_area": ea,
                        "train_subject": tsub,
                        "test_subject": esub,
                        "train_year": ty,
                        "test_year": ey,
                        "train_hemisphere": th,
                        "test_hemisphere": eh,
                        "pair": "diagonal" if i == j else "off_diagonal",
                        "cross_session": ts != es,
                        "cross_area": ta != ea,
                        "cross_hemisphere": th != eh,
                        "cross_year": ty != ey,
                        "rotation_direction": -1,
                        "n_train_trials": 50,
                        "n_test_trials": 20,
                        "value": float(matrix[i, j]),
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def matrices() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {m: rng.normal(shift, 0.3, size=(4, 4)) for m, shift in [("ner", 0.7), ("cebra", 0.5), ("pivae", 0.2)]}


OFF = ~np.eye(4, dtype=bool)  # row-major order of off-diagonal cells, as make_scores writes them


def one(table: pd.DataFrame, **where) -> pd.Series:
    hit = table
    for column, value in where.items():
        hit = hit[hit[column] == value]
    assert len(hit) == 1, f"{len(hit)} rows for {where}"
    return hit.iloc[0]


def test_paired_t_tests_equal_scipy(matrices):
    out = method_tests(make_scores(matrices))
    assert list(out.columns) == TEST_COLUMNS
    for subset, pick in [("diagonal", np.eye(4, dtype=bool)), ("off_diagonal", OFF)]:
        for a, b in [("ner", "cebra"), ("ner", "pivae"), ("cebra", "pivae")]:
            x, y = matrices[a][pick], matrices[b][pick]
            expected = stats.ttest_rel(x, y)
            row = one(out, subset=subset, test="ttest_rel", a=a, b=b)
            assert row["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
            assert row["p"] == pytest.approx(expected.pvalue, abs=1e-12)
            assert row["n"] == len(x) and row["df"] == len(x) - 1 and np.isnan(row["df_den"])
            assert row["mean_a"] == pytest.approx(x.mean(), abs=1e-12)
            assert row["sd_b"] == pytest.approx(np.std(y, ddof=1), abs=1e-12)
            assert row["method"] == "" and row["group"] == "m1" and row["seed"] == 0


def test_pairing_is_by_cell_when_shuffled_and_a_cell_is_missing(matrices):
    scores = make_scores(matrices)
    gone = (
        (scores["method"] == "cebra") & (scores["train_cell"] == "A-2016/M1") & (scores["test_cell"] == "B-2016/M1")
    )  # off-diagonal cell (2, 3)
    shuffled = scores[~gone].sample(frac=1.0, random_state=3)
    order = ["ner", "cebra", "pivae"]  # shuffling changes the order of first appearance
    out = method_tests(shuffled, methods=order)
    keep = OFF.copy()
    keep[2, 3] = False
    expected = stats.ttest_rel(matrices["ner"][keep], matrices["cebra"][keep])
    row = one(out, subset="off_diagonal", test="ttest_rel", a="ner", b="cebra")
    assert row["n"] == 11
    assert row["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert row["p"] == pytest.approx(expected.pvalue, abs=1e-12)
    # ner-vs-pivae still uses all 12 cells, and shuffling alone changes nothing.
    assert one(out, subset="off_diagonal", a="ner", b="pivae")["n"] == 12
    plain = method_tests(scores[~gone], methods=order)
    pd.testing.assert_frame_equal(plain, out)


def test_rm_anova_equals_direct_anovarm_on_common_cells(matrices):
    scores = make_scores(matrices)
    gone = (
        (scores["method"] == "pivae") & (scores["train_cell"] == "A-2015/M1") & (scores["test_cell"] == "A-2015/PMd")
    )  # cell (0, 1): dropped for every method
    out = method_tests(scores[~gone])
    keep = OFF.copy()
    keep[0, 1] = False
    long = pd.DataFrame(
        [
            {"subject": f"{i}->{j}", "within": m, "y": matrices[m][i, j]}
            for m in ("ner", "cebra", "pivae")
            for i in range(4)
            for j in range(4)
            if keep[i, j]
        ]
    )
    table = AnovaRM(long, "y", "subject", within=["within"]).fit().anova_table.loc["within"]
    row = one(out, subset="off_diagonal", test="rm_anova")
    assert row["a"] == "ner,cebra,pivae" and row["b"] == "" and row["n"] == 11
    assert row["statistic"] == pytest.approx(table["F Value"], abs=1e-12)
    assert row["p"] == pytest.approx(table["Pr > F"], abs=1e-12)
    assert (row["df"], row["df_den"]) == (2, 20)
    assert np.isnan(row["mean_a"]) and np.isnan(row["sd_b"])


def test_friedman_equals_scipy(matrices):
    out = method_tests(make_scores(matrices))
    expected = stats.friedmanchisquare(*(matrices[m][OFF] for m in ("ner", "cebra", "pivae")))
    row = one(out, subset="off_diagonal", test="friedman")
    assert row["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert row["p"] == pytest.approx(expected.pvalue, abs=1e-12)
    assert row["n"] == 12 and row["df"] == 2


def test_method_order_selection_and_undefined_tests_are_skipped(matrices):
    same = {"ner": matrices["ner"], "copy": matrices["ner"] + 0.25}  # constant differences
    out = method_tests(make_scores({**same, "pivae": matrices["pivae"]}), methods=["pivae", "ner"])
    assert set(out["test"]) == {"ttest_rel", "rm_anova"}  # only two methods: no Friedman
    assert set(zip(out["a"], out["b"])) == {("pivae", "ner"), ("pivae,ner", "")}
    out = method_tests(make_scores(same))
    assert out.empty and list(out.columns) == TEST_COLUMNS  # t and F undefined: no NaN rows
    assert not out.isna().any().any()
    two_seeds = pd.concat([make_scores(matrices), make_scores(matrices, seed=1)])
    assert len(method_tests(two_seeds)) == 2 * len(method_tests(make_scores(matrices)))


def test_student_sleep_data_textbook_value():
    # Student (1908) / Cushny & Peebles: extra hours of sleep of 10 patients under two drugs (R's
    # `sleep` data set). The paired t-test is t = -4.0621, df = 9, p = 0.002833 (R: t.test(extra ~
    # group, paired = TRUE)). Here each patient is a diagonal cell and each drug a "method".
    drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
    drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
    scores = pd.DataFrame(
        [
            {**KEY, "method": m, "train_cell": f"p{i}", "test_cell": f"p{i}", "pair": "diagonal", "value": v}
            for m, values in [("drug1", drug1), ("drug2", drug2)]
            for i, v in enumerate(values)
        ]
    )
    row = one(method_tests(scores), test="ttest_rel")
    assert round(row["statistic"], 6) == -4.062128
    assert round(row["p"], 6) == 0.002833 and row["df"] == 9


def test_block_summary_hand_case():
    # value = 10 * train index + test index, so each block's mean is a sum of known numbers.
    scores = make_scores({"ner": 10 * np.arange(4)[:, None] + np.arange(4)[None, :]})
    out = block_summary(scores)
    assert list(out.columns) == BLOCK_COLUMNS
    expected = {  # block: (mean, n)
        "diagonal": ((0 + 11 + 22 + 33) / 4, 4),
        "off_diagonal": ((264 - 66) / 12, 12),  # all 16 values sum to 264
        "cross_area": ((1 + 10 + 12 + 21 + 13 + 31) / 6, 6),  # cell 1 (PMd) with any other
        "same_area_cross_session": ((2 + 20 + 3 + 30 + 23 + 32) / 6, 6),  # among cells 0, 2, 3
        "cross_hemisphere": ((3 + 30 + 13 + 31 + 23 + 32) / 6, 6),  # cell 3 with any other
        "cross_year": ((2 + 3 + 12 + 13 + 20 + 30 + 21 + 31) / 8, 8),
        "2015->2015": ((1 + 10) / 2, 2),
        "2015->2016": ((2 + 3 + 12 + 13) / 4, 4),
        "2016->2015": ((20 + 30 + 21 + 31) / 4, 4),
        "2016->2016": ((23 + 32) / 2, 2),
    }
    assert list(out["block"]) == list(expected)
    for block, (mean, n) in expected.items():
        row = one(out, block=block)
        assert row["mean"] == pytest.approx(mean, abs=1e-12) and row["n"] == n
    assert one(out, block="diagonal")["sd"] == pytest.approx(np.std([0, 11, 22, 33], ddof=1))
    # Flags read back from a TSV as strings give the same table; an empty block has no row.
    tsv = pd.read_csv(pd.io.common.StringIO(scores.to_csv(sep="\t", index=False)), sep="\t", dtype={"cross_area": str})
    pd.testing.assert_frame_equal(block_summary(tsv), out)
    same_year = scores[~scores["cross_year"]]
    assert "cross_year" not in set(block_summary(same_year)["block"])


def test_diagonal_vs_off_diagonal_hand_case():
    matrix = 10 * np.arange(4)[:, None] + np.arange(4)[None, :] + np.array([0, 0, 0, 5])[None, :]
    scores = make_scores({"ner": matrix})
    # Drop the off-diagonal row of train cell 3: that cell has no pair and leaves the paired test.
    scores = scores[~((scores["train_cell"] == "B-2016/M1") & (scores["pair"] == "off_diagonal"))]
    out = diagonal_vs_off_diagonal(scores)
    diag = np.diag(matrix)[:3].astype(float)
    row_means = np.array([matrix[i, OFF[i]].mean() for i in range(3)])
    paired = one(out, test="ttest_rel_diag_vs_row_offdiag")
    expected = stats.ttest_rel(diag, row_means)
    assert (paired["a"], paired["b"], paired["method"], paired["n"]) == ("diagonal", "off_diagonal_row_mean", "ner", 3)
    assert paired["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert paired["p"] == pytest.approx(expected.pvalue, abs=1e-12)
    assert paired["mean_b"] == pytest.approx(row_means.mean(), abs=1e-12)
    all_diag, all_off = np.diag(matrix).astype(float), matrix[:3][OFF[:3]].astype(float)
    welch = one(out, test="welch_diag_vs_offdiag")
    expected = stats.ttest_ind(all_diag, all_off, equal_var=False)
    assert welch["subset"] == "diagonal_vs_off_diagonal" and welch["n"] == 4 + 9
    assert welch["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert welch["df"] == pytest.approx(expected.df, abs=1e-12)
    assert welch["p"] == pytest.approx(expected.pvalue, abs=1e-12)


def test_undefined_scores_are_left_out_of_the_tests_and_n_counts_what_was_used():
    """A NaN score (undefined: its reason is in the scores' note) is not a value: the Welch test of the
    other values is what the table reports, with their count as n (was a NaN statistic)."""
    matrix = 10 * np.arange(4)[:, None] + np.arange(4)[None, :] + np.array([0, 0, 0, 5])[None, :]
    full = diagonal_vs_off_diagonal(make_scores({"ner": matrix.astype(float)}))
    with_nan = matrix.astype(float)
    with_nan[0, 1] = np.nan
    out = diagonal_vs_off_diagonal(make_scores({"ner": with_nan}))
    welch = one(out, test="welch_diag_vs_offdiag")
    expected = stats.ttest_ind(np.diag(matrix), np.delete(matrix[OFF], 0), equal_var=False)
    assert welch["n"] == one(full, test="welch_diag_vs_offdiag")["n"] - 1 == 15
    assert welch["statistic"] == pytest.approx(expected.statistic, abs=1e-12)


def test_all_statistics_is_both_tables(matrices):
    scores = make_scores(matrices)
    out = all_statistics(scores)
    assert list(out.columns) == TEST_COLUMNS
    assert len(out) == len(method_tests(scores)) + len(diagonal_vs_off_diagonal(scores))
    assert set(out["subset"]) == {"diagonal", "off_diagonal", "diagonal_vs_off_diagonal"}


@pytest.mark.parametrize("function", [method_tests, diagonal_vs_off_diagonal, block_summary, all_statistics])
@pytest.mark.parametrize("column", ["value", "alignment", "pair"])
def test_missing_column_names_the_column(matrices, function, column):
    scores = make_scores(matrices).drop(columns=column)
    with pytest.raises(InputError) as err:
        function(scores, source="scores.tsv")
    assert err.value.field == column and column in str(err.value)
    assert err.value.source == "scores.tsv"


def test_keys_are_the_schema_columns():
    assert KEYS == ["group", "decoder", "target", "metric", "evaluation", "alignment", "seed"]

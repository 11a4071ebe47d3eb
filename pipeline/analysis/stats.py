"""Statistics on the tidy ``scores`` table of the decoding stage (NER_METHOD.md section 5.4).

As the authors ran them, separately for diagonal and off-diagonal matrix cells: paired t-tests between
methods (pairing = same ``train_cell -> test_cell``), a repeated-measures ANOVA (statsmodels
``AnovaRM``, subject = cell, within = method) and a Friedman test. Added here, not in the authors'
code: a diagonal-vs-off-diagonal comparison per method and a summary of cell blocks (cross-area,
cross-hemisphere, cross-year, per year pair).

All tables are tidy, one row per test (or per block); test rows come sorted by their keys, so the
order of the input rows does not matter. A test that is undefined for a group (too few
cells or methods, constant paired differences, every cell tied across methods, zero residual
variance) gives **no row**: it is skipped, never reported as a NaN row.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.anova import AnovaRM

from pipeline.errors import InputError

__all__ = [
    "KEYS",
    "TEST_COLUMNS",
    "BLOCK_COLUMNS",
    "method_tests",
    "diagonal_vs_off_diagonal",
    "block_summary",
    "all_statistics",
]

#: Columns that define one comparison (besides method and pair).
KEYS = ["group", "decoder", "target", "metric", "evaluation", "alignment", "seed"]
#: Columns of the test tables.
TEST_COLUMNS = [
    *KEYS,
    "subset",
    "test",
    "a",
    "b",
    "method",
    "n",
    "mean_a",
    "sd_a",
    "mean_b",
    "sd_b",
    "statistic",
    "df",
    "df_den",
    "p",
]
#: Columns of :func:`block_summary`.
BLOCK_COLUMNS = ["group", "method", *KEYS[1:], "block", "mean", "sd", "n"]
_SUBSETS = ("diagonal", "off_diagonal")


def _require(scores: pd.DataFrame, columns: list[str], source: str | None) -> None:
    for column in columns:
        if column not in scores.columns:
            raise InputError(source, column, f"the scores table has no column {column!r}")


def _constant(x: np.ndarray, *scale: np.ndarray) -> bool:
    """True if ``x`` is constant up to round-off relative to ``scale`` (default: ``x``).

    A guard, not a statistic: on such input a t, F or chi-square statistic is infinite or noise.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    size = max([1.0, *(float(np.max(np.abs(s))) for s in (x, *scale))])
    return bool(np.ptp(x) <= 1e-12 * size)


def _describe(key) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(KEYS, key))


def _row(
    key: tuple,
    subset: str,
    test: str,
    a: str,
    b: str = "",
    method: str = "",
    n: int = 0,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    statistic: float = np.nan,
    df: float = np.nan,
    df_den: float = np.nan,
    p: float = np.nan,
) -> dict:
    def describe(v):
        return (np.nan, np.nan) if v is None else (float(np.mean(v)), float(np.std(v, ddof=1)))

    (mean_a, sd_a), (mean_b, sd_b) = describe(x), describe(y)
    return dict(
        zip(KEYS, key),
        subset=subset,
        test=test,
        a=a,
        b=b,
        method=method,
        n=int(n),
        mean_a=mean_a,
        sd_a=sd_a,
        mean_b=mean_b,
        sd_b=sd_b,
        statistic=float(statistic),
        df=float(df),
        df_den=float(df_den),
        p=float(p),
    )


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def _wide(sub: pd.DataFrame, source: str | None) -> pd.DataFrame:
    """Cells x methods table of ``value`` (NaN where a method lacks a cell)."""
    cells = sub["train_cell"].astype(str) + "->" + sub["test_cell"].astype(str)
    frame = sub.assign(cell=cells)
    if frame.duplicated(["cell", "method"]).any():
        raise InputError(
            source, "value", f"more than one value for one method and one cell in {_describe(sub[KEYS].iloc[0])}"
        )
    return frame.pivot(index="cell", columns="method", values="value")


def method_tests(scores: pd.DataFrame, *, methods: list[str] | None = None, source: str | None = None) -> pd.DataFrame:
    """Compare methods cell by cell, separately on diagonal and off-diagonal cells.

    Per (``KEYS``, pair): a paired t-test (``scipy.stats.ttest_rel``) for every pair of methods on the
    cells both have; over the cells that all methods share, a repeated-measures ANOVA
    (``AnovaRM``, subject = ``"train_cell->test_cell"``, within = method; >= 2 methods, >= 2 cells)
    and a Friedman test (``scipy.stats.friedmanchisquare``; >= 3 methods, >= 2 cells).

    Args:
        scores: The tidy scores table (see the schema of the decoding stage).
        methods: Methods to compare, in this order; other methods are left out. Default: every method, in
            order of first appearance.
        source: File the table came from, named in errors.

    Returns:
        pandas.DataFrame: Columns ``TEST_COLUMNS``. ``mean_*``/``sd_*`` (ddof=1) describe the paired values (NaN for
            ``rm_anova``/``friedman``); ``df`` is n-1 for t-tests, the numerator df for ``rm_anova``
            (denominator in ``df_den``) and k-1 for ``friedman``.

    Raises:
        InputError: A required column is missing, or one method has two values for one cell.
    """
    _require(scores, [*KEYS, "method", "pair", "train_cell", "test_cell", "value"], source)
    order = list(methods) if methods is not None else list(pd.unique(scores["method"]))
    chosen = scores[scores["method"].isin(order) & scores["pair"].isin(_SUBSETS)]
    rows = []
    for key, sub in chosen.groupby([*KEYS, "pair"], dropna=False):
        key, subset = key[:-1], key[-1]
        wide = _wide(sub, source)
        present = [m for m in order if m in wide.columns]
        for a, b in combinations(present, 2):
            both = wide[[a, b]].dropna()
            x, y = both[a].to_numpy(), both[b].to_numpy()
            if len(both) < 2 or _constant(x - y, x, y):
                continue
            res = stats.ttest_rel(x, y)
            rows.append(
                _row(
                    key,
                    subset,
                    "ttest_rel",
                    a,
                    b,
                    n=len(both),
                    x=x,
                    y=y,
                    statistic=res.statistic,
                    df=res.df,
                    p=res.pvalue,
                )
            )
        common = wide[present].dropna()
        if len(present) < 2 or len(common) < 2:
            continue
        label, values = ",".join(present), common.to_numpy()
        centred = values - values.mean(1, keepdims=True) - values.mean(0) + values.mean()
        if not _constant(np.append(centred, 0.0), values):  # zero residual -> F undefined
            long = common.rename_axis(columns="method").stack().rename("value").reset_index()
            table = AnovaRM(long, "value", "cell", within=["method"]).fit().anova_table
            f = table.loc["method"]
            rows.append(
                _row(
                    key,
                    subset,
                    "rm_anova",
                    label,
                    n=len(common),
                    statistic=f["F Value"],
                    df=f["Num DF"],
                    df_den=f["Den DF"],
                    p=f["Pr > F"],
                )
            )
        if len(present) >= 3 and not (common.nunique(axis=1) == 1).all():
            res = stats.friedmanchisquare(*(common[m].to_numpy() for m in present))
            rows.append(
                _row(
                    key,
                    subset,
                    "friedman",
                    label,
                    n=len(common),
                    statistic=res.statistic,
                    df=len(present) - 1,
                    p=res.pvalue,
                )
            )
    return _table(rows)


def diagonal_vs_off_diagonal(scores: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Per method: is a cell's own (diagonal) score different from its transfer (off-diagonal) scores?

    Per (``KEYS``, method): ``ttest_rel_diag_vs_row_offdiag`` pairs each train cell's diagonal value
    with the mean of that train cell's off-diagonal values (train cells with both, n >= 2);
    ``welch_diag_vs_offdiag`` is ``scipy.stats.ttest_ind(equal_var=False)`` of all diagonal against
    all off-diagonal values (>= 2 of each). ``a`` = ``"diagonal"``; ``b`` = ``"off_diagonal_row_mean"``
    or ``"off_diagonal"``. For the Welch row ``n`` is the total number of values. Undefined scores (NaN,
    their reason in the scores table's ``note``) are left out of every test; ``n`` counts the values used.

    Args:
        scores: The tidy scores table.
        source: File the table came from, named in errors.

    Returns:
        pandas.DataFrame: Columns ``TEST_COLUMNS``, ``subset`` = ``"diagonal_vs_off_diagonal"``.
    """
    _require(scores, [*KEYS, "method", "pair", "train_cell", "value"], source)
    rows = []
    for key, sub in scores.groupby([*KEYS, "method"], dropna=False):
        key, method = key[:-1], key[-1]
        defined = sub[sub["value"].notna()]  # undefined scores: NaN, their reason in the scores' note
        diag = defined[defined["pair"] == "diagonal"]
        off = defined[defined["pair"] == "off_diagonal"]
        if diag["train_cell"].duplicated().any():
            raise InputError(
                source,
                "value",
                f"more than one diagonal value for one train cell of method {method!r} in {_describe(key)}",
            )
        row_mean = off.groupby("train_cell", sort=False)["value"].mean()
        paired = diag.set_index("train_cell")["value"].to_frame("diag").join(row_mean.rename("off"), how="inner")
        x, y = paired["diag"].to_numpy(), paired["off"].to_numpy()
        if len(paired) >= 2 and not _constant(x - y, x, y):
            res = stats.ttest_rel(x, y)
            rows.append(
                _row(
                    key,
                    "diagonal_vs_off_diagonal",
                    "ttest_rel_diag_vs_row_offdiag",
                    "diagonal",
                    "off_diagonal_row_mean",
                    method,
                    len(paired),
                    x,
                    y,
                    res.statistic,
                    res.df,
                    p=res.pvalue,
                )
            )
        x, y = diag["value"].to_numpy(), off["value"].to_numpy()
        if len(x) >= 2 and len(y) >= 2 and not (_constant(x) and _constant(y)):
            res = stats.ttest_ind(x, y, equal_var=False)
            rows.append(
                _row(
                    key,
                    "diagonal_vs_off_diagonal",
                    "welch_diag_vs_offdiag",
                    "diagonal",
                    "off_diagonal",
                    method,
                    len(x) + len(y),
                    x,
                    y,
                    res.statistic,
                    res.df,
                    p=res.pvalue,
                )
            )
    return _table(rows)


def _flag(column: pd.Series) -> pd.Series:
    """Boolean column, also when read back from TSV as the strings 'True'/'False'."""
    if column.dtype == bool:
        return column
    return column.astype(str).str.strip().str.lower().isin(["true", "1"])


def block_summary(scores: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Mean, sd (ddof=1) and n of ``value`` per (method, ``KEYS``) and block of matrix cells.

    Blocks: ``diagonal``, ``off_diagonal``, then among off-diagonal cells ``cross_area``,
    ``same_area_cross_session`` (not cross-area, cross-session), ``cross_hemisphere``,
    ``cross_year`` and one block per year pair, named ``"{train_year}->{test_year}"``. A cell may be
    in several blocks; a block with no cell has no row.

    Args:
        scores: The tidy scores table.
        source: File the table came from, named in errors.

    Returns:
        pandas.DataFrame: Columns ``BLOCK_COLUMNS``.
    """
    _require(
        scores,
        [
            *KEYS,
            "method",
            "pair",
            "cross_area",
            "cross_session",
            "cross_hemisphere",
            "cross_year",
            "train_year",
            "test_year",
            "value",
        ],
        source,
    )
    flags = {name: _flag(scores[name]) for name in ("cross_area", "cross_session", "cross_hemisphere", "cross_year")}
    off = scores["pair"] == "off_diagonal"
    masks = {
        "diagonal": scores["pair"] == "diagonal",
        "off_diagonal": off,
        "cross_area": off & flags["cross_area"],
        "same_area_cross_session": off & ~flags["cross_area"] & flags["cross_session"],
        "cross_hemisphere": off & flags["cross_hemisphere"],
        "cross_year": off & flags["cross_year"],
    }
    parts = [scores[mask].assign(block=name) for name, mask in masks.items()]
    years = scores[off].astype({"train_year": int, "test_year": int})
    pairs = years["train_year"].astype(str) + "->" + years["test_year"].astype(str)
    parts += [years[pairs == name].assign(block=name) for name in sorted(pairs.unique())]
    blocks = pd.concat(parts, ignore_index=True)
    if blocks.empty:
        return pd.DataFrame(columns=BLOCK_COLUMNS)
    out = (
        blocks.groupby(["group", "method", *KEYS[1:], "block"], sort=False, dropna=False)["value"]
        .agg(mean="mean", sd="std", n="count")
        .reset_index()
    )
    return out[BLOCK_COLUMNS]


def all_statistics(
    scores: pd.DataFrame, *, methods: list[str] | None = None, source: str | None = None
) -> pd.DataFrame:
    """:func:`method_tests` and :func:`diagonal_vs_off_diagonal` in one tidy table.

    Args:
        scores: The tidy scores table.
        methods: Passed to :func:`method_tests`.
        source: File the table came from, named in errors.

    Returns:
        pandas.DataFrame: Columns ``TEST_COLUMNS``.
    """
    parts = [method_tests(scores, methods=methods, source=source), diagonal_vs_off_diagonal(scores, source=source)]
    return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)

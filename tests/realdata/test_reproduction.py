"""The reproduction table: the paper's values, matched with ours, and the ordering check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.report.reproduction import PAPER_VALUES, reproduction_table, to_markdown


def _ours_from_paper(shift: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Within and block tables holding the paper's own values plus a per-method shift."""
    within, blocks = [], []
    for _, r in PAPER_VALUES.iterrows():
        value = r["paper"] + shift.get(r["method"], 0.0)
        if r["scope"] == "within":
            within.append(
                dict(
                    method=r["method"],
                    decoder=r["decoder"],
                    target=r["target"],
                    metric=r["metric"],
                    evaluation=r["evaluation"],
                    train_session=r["session"],
                    train_area="M1",
                    seed=0,
                    value=value,
                )
            )
        else:
            blocks.append(
                dict(
                    group=r["group"],
                    method=r["method"],
                    decoder=r["decoder"],
                    target=r["target"],
                    metric=r["metric"],
                    evaluation="held_out",
                    alignment="paper",
                    block=r["block"],
                    seed=0,
                    mean=value,
                )
            )
    return pd.DataFrame(within), pd.DataFrame(blocks)


def test_paper_values_hold_the_papers_headline_numbers():
    ner = PAPER_VALUES[
        (PAPER_VALUES.method == "ner")
        & (PAPER_VALUES.scope == "within")
        & (PAPER_VALUES.metric == "r2")
        & (PAPER_VALUES.target == "velocity")
        & (PAPER_VALUES.evaluation == "in_sample")
    ]
    # NER_METHOD.md §7.2 per-session values (2015-06-29, 06-30, 2016-09-29, 10-07)
    np.testing.assert_allclose(ner.sort_values("session").paper, [0.810, 0.802, 0.869, 0.878], atol=6e-4)
    s1 = PAPER_VALUES[
        (PAPER_VALUES.group == "s1_han") & (PAPER_VALUES.method == "cebra") & (PAPER_VALUES.target == "velocity")
    ]
    assert s1.paper.tolist() == [-4.59, -4.54]


def test_identical_values_reproduce_with_zero_difference_and_same_order():
    within, blocks = _ours_from_paper({})
    table = reproduction_table(within, blocks)
    assert table["ours"].notna().all()
    np.testing.assert_allclose(table["difference"], 0, atol=1e-12)
    assert set(table["same_order"]) == {"yes"}
    assert "| scope |" in to_markdown(table)


def test_a_shift_that_swaps_methods_is_reported_as_a_different_order():
    within, blocks = _ours_from_paper({"ner": -5.0})  # NER now below every peer
    table = reproduction_table(within, blocks)
    assert (table.loc[table.method == "ner", "difference"].round(9) == -5.0).all()
    assert "no" in set(table["same_order"])
    missing = reproduction_table(within[within.method != "pivae"], blocks[blocks.method != "pivae"])
    assert missing.loc[missing.method == "pivae", "ours"].isna().all()

"""The reproduction table: the paper's values, matched with ours, and the ordering check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.report.reproduction import PAPER_VALUES, reproduction_table, to_markdown


def _ours_from_paper(shift: dict[str, float], seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Within and block tables holding the paper's own values plus a per-method shift."""
    within, blocks = [], []
    for _, r in PAPER_VALUES.iterrows():
        value = r["paper"] + shift.get(r["method"], 0.0)
        if r["scope"] in ("within", "area"):
            area = r["session"] if r["scope"] == "area" else "M1"  # an area row: the median over its cells
            for offset in (-0.5, 0.0, 0.5) if r["scope"] == "area" else (0.0,):
                within.append(
                    dict(
                        method=r["method"],
                        decoder=r["decoder"],
                        target=r["target"],
                        metric=r["metric"],
                        evaluation=r["evaluation"],
                        train_session=r["session"] if r["scope"] == "within" else f"{area}-{offset}",
                        train_area=area,
                        seed=seed,
                        value=value + offset,
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
                    seed=seed,
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
    assert "Method ordering as the paper's in" in to_markdown(table)
    only_ner = reproduction_table(within[within.method == "ner"], blocks[blocks.method == "ner"])
    assert set(only_ner.same_order) == {""} and "(not rated)" in to_markdown(only_ner)


def test_several_seeds_give_mean_sd_and_whether_the_paper_is_inside_two_sd():
    parts = [_ours_from_paper({"ner": d}, seed=s) for s, d in enumerate((-0.01, 0.0, 0.01))]
    within = pd.concat([w for w, _ in parts], ignore_index=True)
    blocks = pd.concat([b for _, b in parts], ignore_index=True)
    table = reproduction_table(within, blocks)
    ner, cebra = table[table.method == "ner"], table[table.method == "cebra"]
    assert (ner.n_seeds == 3).all() and np.allclose(ner.difference, 0, atol=1e-12)
    np.testing.assert_allclose(ner.seed_sd, 0.01, rtol=1e-9)
    assert set(ner.within_2sd) == {"yes"} and np.allclose(cebra.seed_sd, 0, atol=1e-12)
    shifted = reproduction_table(
        within.assign(value=within.value + np.where(within.method == "ner", 0.05, 0)),
        blocks.assign(mean=blocks["mean"] + np.where(blocks.method == "ner", 0.05, 0)),
    )
    assert set(shifted.loc[shifted.method == "ner", "within_2sd"]) == {"no"}  # 0.05 > 2 x 0.01
    markdown = to_markdown(table)
    assert "| seed_sd | n_seeds |" in markdown and "within 2 seed sd" in markdown
    one = reproduction_table(within, blocks, seed=1)
    assert (one.n_seeds == 1).all() and one.seed_sd.isna().all() and set(one.within_2sd) == {""}


def test_differences_beyond_tolerance_carry_their_reason_or_say_unexplained():
    within, blocks = _ours_from_paper({"ner": 0.05, "pivae": 0.05, "cebra": 0.02})
    table = reproduction_table(within, blocks)
    ner, pivae, cebra = (table[table.method == m] for m in ("ner", "pivae", "cebra"))
    assert set(cebra.beyond_tolerance) == {""} and set(cebra.why) == {""}  # 0.02 is inside 0.03
    r2 = ner[ner.metric != "peak_accuracy"]
    assert set(r2.beyond_tolerance) == {"yes"}  # 0.05 > 0.03 on every R2
    assert set(r2[r2.group == "m1_pmd_chewie_2016"].why) == {"fewer dates"}
    assert set(r2[(r2.scope == "within")].why) == {"unexplained"}  # nothing we know explains NER's own
    assert set(ner[ner.metric == "peak_accuracy"].beyond_tolerance) == {""}  # 0.05 points
    assert set(pivae[(pivae.scope == "within") & (pivae.metric != "peak_accuracy")].why) == {"pivae protocol"}
    diagonal = pivae[(pivae.block == "diagonal") & (pivae.metric != "peak_accuracy")]
    assert len(diagonal) and set(diagonal.why) == {"pivae protocol"}  # a cell's own test trials: within-session
    assert "unexplained" in set(pivae[pivae.block == "off_diagonal"].why)  # across sessions: not measured
    markdown = to_markdown(table)
    assert "`unexplained`" in markdown and "| why |" in markdown
    # a difference inside 2 seed sd is the seed's
    parts = [_ours_from_paper({"ner": d}, seed=s) for s, d in enumerate((0.0, 0.1, 0.2))]
    seeded = reproduction_table(
        pd.concat([w for w, _ in parts], ignore_index=True), pd.concat([b for _, b in parts], ignore_index=True)
    )
    assert set(seeded.loc[(seeded.method == "ner") & (seeded.metric == "r2"), "why"]) == {"seed"}

"""Our decoding of the authors' own embeddings reproduces their stored Fig. 4 / Fig. 5 scores.

Fixture: ../shared/data/real/ner_paper_results (NER and CEBRA-3D embeddings of the Chewie M1
sessions, trained by the authors; their Fig. 4 and Fig. 5 arrays). Its README gives the layout, the
matrix order (always taken from ``date_subjects``) and, per off-diagonal cell, the direction whose
Procrustes rotation the authors' machine picked.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.crossdecode import cross_decode
from pipeline.analysis.decoding import DecoderSpec, within_session
from tests.support.authors import RESULTS, authors_cell
from tests.support.paths import requires_real

pytestmark = [requires_real, pytest.mark.realdata]

NER_DATES = ["150313", "150319", "150629", "150630", "161007", "161014", "161021"]
CEBRA_DATES = ["150313", "150319", "150629", "150630", "160929", "161005", "161006", "161007", "161014", "161021"]
# Direction whose rotation reproduces each stored off-diagonal cell (fixture README), rows = decoder
# session, columns = test session, indices into the Fig. 5 order; "-" = diagonal / not available.
STORED_ROTATIONS = {
    "NER": """
        0 - 5 5 3 - - - 0 7 1
        1 5 - 5 4 - - - 1 3 1
        2 2 2 - 0 - - - 4 4 0
        3 6 4 1 - - - - 6 0 0
        7 0 1 4 1 - - - - 5 2
        8 1 6 6 4 - - - 5 - 1
        9 3 5 0 1 - - - 6 5 -""",
    "CEBRA3D": """
        0 - 2 2 0 0 2 2 1 4 1
        1 0 - 0 0 1 1 4 3 3 1
        2 0 2 - 4 5 4 7 1 5 5
        3 5 5 4 - 1 4 0 1 2 3
        4 2 1 6 5 - 7 5 0 1 1
        5 2 3 2 3 5 - 7 7 5 4
        6 4 2 5 5 0 4 - 4 2 6
        7 1 2 1 1 0 6 0 - 2 0
        8 4 5 7 1 2 4 0 6 - 5
        9 4 4 5 3 1 4 0 0 5 -""",
}
FIG5 = {"NER": "NER_Chewie", "CEBRA3D": "Cebra_Chewie"}
FIG4 = {"NER": "NER", "CEBRA3D": "Cebra"}


def fig5(method: str):
    d = np.load(RESULTS / "fig5" / f"{FIG5[method]}.npz")
    return d, [str(s) for s in d["date_subjects"].reshape(10, 10)[:, 0]]


def stored_rotations(method: str) -> dict[tuple[str, str], int]:
    order = fig5(method)[1]
    out = {}
    for line in STORED_ROTATIONS[method].strip().splitlines():
        row, *cols = line.split()
        out.update({(order[int(row)], order[j]): int(v) for j, v in enumerate(cols) if v != "-"})
    return out


@pytest.mark.parametrize("method,dates", [("NER", NER_DATES), ("CEBRA3D", CEBRA_DATES)])
def test_within_session_scores_reproduce_fig4(method, dates):
    """Fig. 4: in-sample velocity / position R² (col 0) and held-out swapped velocity / position (col 1)."""
    checked = 0
    for year in ("2015", "2016"):
        d = np.load(RESULTS / "fig4" / f"{FIG4[method]}_Chewie{year}_M1.npz")
        for i, date in enumerate(map(str, d["date_subjects"])):
            if date not in dates:
                continue
            s = within_session(authors_cell(method, date), DecoderSpec("linear", logistic_max_iter=5000))
            ins, held = s["in_sample"].values, s["held_out"].values
            assert ins[("velocity", "r2")] == pytest.approx(d["vel_R_2D"][i, 0], abs=1e-8)
            assert held[("velocity", "r2_swapped")] == pytest.approx(d["vel_R_2D"][i, 1], abs=1e-8)
            assert ins[("position", "r2")] == pytest.approx(d["pos_R_2D"][i, 0], abs=1e-8)
            assert held[("position", "r2")] == pytest.approx(d["pos_R_2D"][i, 1], abs=1e-8)
            assert abs(ins[("direction", "peak_accuracy")] - d["peak_acc_2D"][i, 0]) <= 3
            assert abs(held[("direction", "peak_accuracy")] - d["peak_acc_2D"][i, 1]) <= 3
            # the correct held-out R² is a different, larger number for NER (NER_METHOD.md §7.2)
            assert held[("velocity", "r2")] != pytest.approx(held[("velocity", "r2_swapped")], abs=1e-3)
            checked += 1
    assert checked == len(dates)


@pytest.mark.parametrize("method,dates", [("NER", NER_DATES), ("CEBRA3D", CEBRA_DATES)])
def test_cross_session_matrix_reproduces_fig5(method, dates):
    stored, order = fig5(method)
    cells = [authors_cell(method, d) for d in dates]
    forced = stored_rotations(method)
    linear = [DecoderSpec("linear")]
    ours_forced = cross_decode(cells, linear, group="m1", alignments=["paper"], force_directions=forced)[0]
    ours_rule = cross_decode(cells, linear, group="m1", alignments=["paper"])[0]

    def matrix_value(frame, a, b, target, metric):
        sel = (frame.train_cell == a) & (frame.test_cell == b) & (frame.target == target) & (frame.metric == metric)
        return float(frame.loc[sel, "value"].iloc[0])

    means = {"stored": {"vel": [], "pos": []}, "rule": {"vel": [], "pos": []}}
    acc_diffs = []
    for a in dates:
        for b in dates:
            i, j = order.index(a), order.index(b)
            vel, pos = stored["vel_R_2D"][i, j], stored["pos_R_2D"][i, j]
            ours_vel = matrix_value(ours_forced, a, b, "velocity", "r2_swapped")
            ours_pos = matrix_value(ours_forced, a, b, "position", "r2")
            # diagonal: plain held-out decoder; off-diagonal: the stored rotation forced
            tol = 1e-8 if a == b else 1e-6
            assert ours_vel == pytest.approx(vel, abs=tol), (a, b)
            assert ours_pos == pytest.approx(pos, abs=tol), (a, b)
            acc_diffs.append(
                abs(matrix_value(ours_forced, a, b, "direction", "peak_accuracy") - stored["peak_acc_2D"][i, j])
            )
            if a != b:
                means["stored"]["vel"].append(vel)
                means["stored"]["pos"].append(pos)
                means["rule"]["vel"].append(matrix_value(ours_rule, a, b, "velocity", "r2_swapped"))
                means["rule"]["pos"].append(matrix_value(ours_rule, a, b, "position", "r2"))
    assert max(acc_diffs) <= 3.0  # lbfgs / library version: single test trials at single bins
    # our deterministic tie-break (highest direction index) keeps the off-diagonal means close
    for key in ("vel", "pos"):
        assert np.mean(means["rule"][key]) == pytest.approx(np.mean(means["stored"][key]), abs=0.02), key


def test_knn_diagonal_reproduces_fig5_knn():
    stored, order = np.load(RESULTS / "fig5" / "NER_Chewie_kNN.npz"), None
    order = [str(s) for s in stored["date_subjects"].reshape(10, 10)[:, 0]]
    for date in ("150629", "161007", "161021"):
        i = order.index(date)
        held = within_session(authors_cell("NER", date), DecoderSpec("knn"))["held_out"].values
        assert held[("velocity", "r2_swapped")] == pytest.approx(stored["vel_R_2D"][i, i], abs=1e-8)
        assert held[("position", "r2")] == pytest.approx(stored["pos_R_2D"][i, i], abs=1e-8)
        assert held[("direction", "peak_accuracy")] == pytest.approx(stored["peak_acc_2D"][i, i], abs=1e-8)

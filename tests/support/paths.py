"""Where the tests find the project and the real recordings (../shared/data/real, or NER_REAL_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = Path(os.environ.get("NER_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
PAPER = REAL / "ner_paper_preprocessed"
MAZE_TEST_NWB = REAL / "mc_maze_small_test" / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
CHIPS = REAL / "limblab_chips_area2_trialdata"
CHEWIE = PAPER / "Chewie_20161007_neural_con_dis_index.mat"

requires_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real data folder {REAL} is absent (set NER_REAL_DATA to point at it)"
)

#: Chewie 2016-10-07 as a sheet row of the paper's file (the session the real-data tests train on)
CHEWIE_ROW = {
    "session_id": "Chewie-20161007",
    "subject": "Chewie",
    "date": "2016-10-07",
    "year": 2016,
    "hemisphere": "left",
    "task": "center_out",
    "format": "nermat",
    "area_list": ["M1", "PMd"],
}

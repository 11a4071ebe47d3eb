"""Readers on the real recordings in ../shared/data/real (counts from DATA.md)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.io import read_source
from pipeline.io.nermat import read_nermat
from pipeline.io.nwb import read_nwb
from pipeline.io.trialdata import read_trialdata
from tests.support.paths import CHIPS, MAZE_TEST_NWB, PAPER, requires_real

pytestmark = requires_real

PAPER_SESSIONS = {
    # file stem: (trials, t_dur, {area: units})
    "Chewie_20150629": (172, 40, {"M1": 49}),
    "Chewie_20150630": (172, 40, {"M1": 44}),
    "Chewie_20160929": (208, 40, {"M1": 74, "PMd": 114}),
    "Chewie_20161007": (168, 40, {"M1": 70, "PMd": 137}),
    "Han_20171201": (292, 35, {"S1": 70}),
    "Han_20171204": (251, 35, {"S1": 83}),
    "Han_20171207": (244, 35, {"S1": 72}),
}


def test_mc_maze_small_test_nwb():
    ds = read_nwb(MAZE_TEST_NWB, require_behavior=False)
    assert ds.sizes["unit"] == 107
    assert ds.sizes["trial"] == 100
    assert ds.sizes["spike"] == 32_897
    areas, counts = np.unique(ds["area"].values.astype(str), return_counts=True)
    assert dict(zip(areas, counts)) == {"PMd": 52, "M1": 55}
    ids = ds["unit"].values
    assert np.all((ids // 1000 == 1) == (ds["area"].values == "PMd"))  # id prefix is authoritative
    # units/electrodes holds the row within each 96-channel array; M1 rows are moved to 96-191
    rows = ds["electrode"].values
    assert rows[ids // 1000 == 1].max() < 96 and rows[ids // 1000 == 2].min() >= 96
    t = ds["spike_time"].values
    assert np.all(np.diff(t) >= 0) and 0 < t[0] and t[-1] < 80.0
    np.testing.assert_allclose(ds["move_onset_time"] - ds["start_time"], 0.25, atol=1e-6)
    assert not ds.attrs["has_behavior"]
    # per-unit spike counts equal the NWB index (two bulk reads, regrouped by unit)
    per_unit = np.bincount(ds["spike_unit"].values, minlength=107)
    assert per_unit.sum() == 32_897 and per_unit.min() > 0


def test_mc_maze_area_selection_and_unknown_area():
    ds = read_nwb(MAZE_TEST_NWB, ["M1"], require_behavior=False)
    assert ds.sizes["unit"] == 55 and set(ds["area"].values) == {"M1"}
    assert ds["spike_unit"].values.max() == 54
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=r"\[areas\].*S1"):
        read_nwb(MAZE_TEST_NWB, ["S1"], require_behavior=False)


def test_mc_maze_without_behaviour_is_rejected_when_required():
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=r"sub-Jenkins.*\[processing/behavior\]"):
        read_nwb(MAZE_TEST_NWB)


def test_chips_trialdata():
    ds = read_trialdata(CHIPS / "tdGo2Fac.mat", ["S1"])
    assert ds.sizes["trial"] == 544
    assert ds.sizes["unit"] == 26
    assert ds.sizes["bin"] == 61
    assert ds.attrs["bin_size_s"] == pytest.approx(0.01)
    assert set(np.unique(ds["direction"].values)) == {0.0, 90.0, 180.0, 270.0}
    assert np.all(ds["go_cue_bin"].values == 20)  # 1-based idx_goCueTime 21
    assert ds["counts"].dtype == np.uint16 and ds["counts"].values.sum() > 0
    assert bool(ds["rewarded"].all())
    assert ds.attrs["trialdata_monkey"] == "Chips"


def test_chips_movement_file_has_movement_onset_at_bin_11():
    ds = read_trialdata(CHIPS / "tdMove2Fac.mat")
    assert ds.sizes["trial"] == 546 and ds.sizes["bin"] == 41
    assert np.all(ds["move_onset_bin"].values == 10)


@pytest.mark.parametrize("stem", sorted(PAPER_SESSIONS))
def test_paper_mat(stem):
    n_trials, t_dur, units = PAPER_SESSIONS[stem]
    ds = read_nermat(PAPER / f"{stem}_neural_con_dis_index.mat", trial_bins=40)
    assert ds.sizes["trial"] == n_trials
    assert ds.sizes["bin"] == t_dur
    found = dict(zip(*np.unique(ds["area"].values.astype(str), return_counts=True)))
    assert found == units
    # direction constant within each trial (checked by the reader) and 8 classes
    assert len(np.unique(ds["direction"].values)) == 8
    assert set(np.unique(ds["direction"].values)) <= set(np.arange(0, 360, 45.0))
    # trial-averaged speed peaks 16-18 bins after the go cue (bin 0)
    speed = np.linalg.norm(ds["velocity"].values, axis=-1).mean(axis=0)
    assert 16 <= int(np.argmax(speed)) <= 18
    # mean velocity angle of each direction class matches its target direction
    for d in np.unique(ds["direction"].values):
        v = ds["velocity"].values[ds["direction"].values == d].mean(axis=(0, 1))
        err = (np.degrees(np.arctan2(v[1], v[0])) - d + 180) % 360 - 180
        assert abs(err) < 30


def test_paper_mat_wrong_trial_length_is_caught():
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=r"Chewie_20161007.*\[discrete_index\].*trial length"):
        read_nermat(PAPER / "Chewie_20161007_neural_con_dis_index.mat", trial_bins=30)
    with pytest.raises(InputError, match=r"\[t_dur\]"):
        read_nermat(PAPER / "Chewie_20161007_neural_con_dis_index.mat")


def test_unknown_format(tmp_path):
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=r"\[format\].*unknown format 'csv'"):
        read_source(tmp_path / "x.csv", "csv", ["M1"])

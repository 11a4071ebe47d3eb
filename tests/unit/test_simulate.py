"""Tests for pipeline.simulate: real NWB files, layouts, ground truth and biology."""

from __future__ import annotations

import numpy as np
import pytest
from pynwb import NWBHDF5IO

from pipeline import simulate
from pipeline.errors import InputError
from pipeline.simulate import DEFAULT_PARAMS, simulate_session
from tests.support.nwb import inspector_problems

pytestmark = pytest.mark.xdist_group("simulate")  # one pytest worker: its module fixtures run once

CO_PARAMS = {"center_out": {"n_trials": 96, "units": {"M1": 24, "PMd": 16, "S1": 16}}}
MAZE_PARAMS = {"maze": {"n_trials": 36, "n_conditions": 4, "units": {"M1": 14, "PMd": 12}}}
CO_ARGS = dict(
    session_id="sim_co_A",
    subject="Chewie",
    date="2016-10-07",
    hemisphere="left",
    task="center_out",
    areas=["M1", "PMd", "S1"],
    seed=7,
    params=CO_PARAMS,
)
MAZE_ARGS = dict(
    session_id="sim_maze_A",
    subject="Jenkins",
    date="2009-09-18",
    hemisphere="right",
    task="maze",
    areas=["PMd", "M1"],
    seed=7,
    params=MAZE_PARAMS,
)


def _read_center_out(path):
    """Read what the tests need from a center-out NWB file into plain objects."""
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        beh = nwb.processing["behavior"]
        pos_ts = beh["Position"]["cursor_pos"]
        vel_ts = beh["Velocity"]["cursor_vel"]
        acc_ts = beh["Acceleration"]["cursor_acc"]
        elec = nwb.electrodes.to_dataframe()
        units = nwb.units
        out = {
            "identifier": nwb.identifier,
            "lab": nwb.lab,
            "start": nwb.session_start_time,
            "subject_id": nwb.subject.subject_id,
            "species": nwb.subject.species,
            "groups": {k: (g.location, g.description) for k, g in nwb.electrode_groups.items()},
            "notes": nwb.notes,
            "elec_location": elec["location"].to_numpy(),
            "elec_group_name": elec["group_name"].to_numpy(),
            "unit_cols": set(units.colnames),
            "unit_ids": units.id[:],
            "unit_rows": np.asarray(units.electrodes.data[:]),
            "unit_elec_location": [units["electrodes"][i]["location"].iloc[0] for i in range(len(units))],
            "spikes": [units.get_unit_spike_times(i) for i in range(len(units))],
            "trials": nwb.trials.to_dataframe(),
            "trial_cols": set(nwb.trials.colnames),
            "units_meta": (pos_ts.unit, vel_ts.unit, acc_ts.unit),
            "rate": vel_ts.rate,
            "starting_time": pos_ts.starting_time,
            # the file stores metres (NWB best practice); the tests below reason in cm
            "pos": 100.0 * pos_ts.data[:],
            "vel": 100.0 * vel_ts.data[:],
            "acc": 100.0 * acc_ts.data[:],
            "resolution": units.resolution,
        }
    return out


def _read_maze(path):
    """Read what the tests need from a maze NWB file into plain objects."""
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        beh = nwb.processing["behavior"]
        hand_vel = nwb.processing["behavior"]["hand_vel"]
        units = nwb.units
        elec = nwb.electrodes.to_dataframe()
        out = {
            "lab": nwb.lab,
            "subject_id": nwb.subject.subject_id,
            "species": nwb.subject.species,
            "elec_location": elec["location"].to_numpy(),
            "elec_group_name": elec["group_name"].to_numpy(),
            "unit_cols": set(units.colnames),
            "unit_ids": units.id[:],
            "unit_rows": np.asarray(units.electrodes.data[:]),  # raw stored rows
            "unit_elec_location": [units["electrodes"][i]["location"].iloc[0] for i in range(len(units))],
            "heldout": units["heldout"].data[:],
            "obs": [units["obs_intervals"][i] for i in range(len(units))],
            "spikes": [units.get_unit_spike_times(i) for i in range(len(units))],
            "trials": nwb.trials.to_dataframe(),
            "hand_pos_unit": beh["hand_pos"].unit,
            "hand_vel_unit": hand_vel.unit,
            "cursor_pos_unit": beh["cursor_pos"].unit,
            "rate": hand_vel.rate,
            # the file stores metres (NWB best practice); the tests below reason in mm, as MC_Maze does
            "hand_pos": 1000.0 * beh["hand_pos"].data[:],
            "hand_vel": 1000.0 * hand_vel.data[:],
            "cursor_pos": 1000.0 * beh["cursor_pos"].data[:],
            "resolution": units.resolution,
        }
    return out


@pytest.fixture(scope="module")
def co(tmp_path_factory):
    """One simulated center-out session: (nwb contents, truth, paths)."""
    d = tmp_path_factory.mktemp("co")
    nwb_path, truth_path = d / "co.nwb", d / "co_truth.npz"
    simulate_session(nwb_path, truth_path, **CO_ARGS)
    truth = dict(np.load(truth_path, allow_pickle=False))
    return _read_center_out(nwb_path), truth, (nwb_path, truth_path)


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    """One simulated maze session: (nwb contents, truth, paths)."""
    d = tmp_path_factory.mktemp("maze")
    nwb_path, truth_path = d / "maze.nwb", d / "maze_truth.npz"
    simulate_session(nwb_path, truth_path, **MAZE_ARGS)
    truth = dict(np.load(truth_path, allow_pickle=False))
    return _read_maze(nwb_path), truth, (nwb_path, truth_path)


def _angle_error_deg(a, b):
    """Absolute wrapped angular difference in degrees."""
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def _fitted_pd(spikes, starts, stops, direction_deg):
    """Preferred direction (deg) of a cosine fit to window spike counts."""
    counts = np.searchsorted(spikes, stops) - np.searchsorted(spikes, starts)
    th = np.deg2rad(direction_deg)
    design = np.stack([np.ones_like(th), np.cos(th), np.sin(th)], axis=1)
    beta = np.linalg.lstsq(design, counts, rcond=None)[0]
    return np.rad2deg(np.arctan2(beta[2], beta[1])) % 360.0


# --------------------------------------------------------------------------
# Center-out layout (Miller / DANDI 000688)
# --------------------------------------------------------------------------


def test_center_out_metadata_and_electrodes(co):
    """Miller layout: metadata, electrode groups/rows, units -> own electrode row."""
    nwb, truth, _ = co
    assert nwb["identifier"] == "sim_co_A"
    assert nwb["lab"] == "Miller"
    assert nwb["start"].tzinfo is not None and nwb["start"].isoformat().startswith("2016-10-07T00:00")
    assert nwb["subject_id"] == "Chewie" and nwb["species"] == "Macaca mulatta"
    assert set(nwb["groups"]) == {
        "electrode_group_M1",
        "electrode_group_PMd",
        "electrode_group_S1",
    }
    for name, (location, description) in nwb["groups"].items():
        assert location == name.removeprefix("electrode_group_")
        assert "left hemisphere" in description
    assert "left" in nwb["notes"]
    for area in ("M1", "PMd", "S1"):
        assert np.sum(nwb["elec_location"] == area) == 96
        assert np.all(nwb["elec_group_name"][nwb["elec_location"] == area] == f"electrode_group_{area}")
    # Units: spike_times + electrodes only; each unit points at its own area's row.
    assert nwb["unit_cols"] == {"spike_times", "electrodes"}
    np.testing.assert_array_equal(nwb["unit_ids"], truth["unit_id"])
    np.testing.assert_array_equal(nwb["unit_rows"], truth["unit_electrode_row"])
    np.testing.assert_array_equal(nwb["elec_location"][nwb["unit_rows"]], truth["unit_area"])
    np.testing.assert_array_equal(nwb["unit_elec_location"], truth["unit_area"])
    assert len(np.unique(nwb["unit_ids"])) == len(nwb["unit_ids"])
    assert np.any(np.diff(nwb["unit_ids"]) != 1)  # non-sequential ids
    for s in nwb["spikes"]:
        assert np.all(np.diff(s) >= 0.001)  # sorted, refractory


def test_center_out_trials_and_truth(co):
    """Trial columns and timing match the truth; both failure kinds occur."""
    nwb, truth, _ = co
    tr = nwb["trials"]
    assert {
        "start_time",
        "stop_time",
        "result",
        "target_on_time",
        "go_cue_time",
        "target_dir",
        "target_id",
    } <= nwb["trial_cols"]
    assert len(tr) == 96 == len(truth["go_cue_time"])
    assert set(tr["target_id"]) == set(range(8))
    assert np.all((tr["target_dir"] > -np.pi) & (tr["target_dir"] <= np.pi + 1e-12))
    np.testing.assert_allclose(np.rad2deg(tr["target_dir"]) % 360, truth["direction_deg"], atol=1e-9)
    np.testing.assert_allclose(tr["go_cue_time"], truth["go_cue_time"])
    np.testing.assert_allclose(tr["target_on_time"], truth["target_on_time"])
    np.testing.assert_array_equal(tr["result"].to_numpy().astype(str), truth["result"])
    # Event order and timing.
    assert np.all(tr["start_time"] + 0.29 < tr["target_on_time"])
    assert np.all(tr["target_on_time"] < tr["go_cue_time"])
    assert np.all(tr["stop_time"] >= tr["go_cue_time"] + 1.3)
    assert np.all(tr["start_time"].to_numpy()[1:] > tr["stop_time"].to_numpy()[:-1])
    np.testing.assert_allclose(truth["move_onset_time"] - truth["go_cue_time"], truth["reaction_time"])
    assert np.all((truth["reaction_time"] >= 0.25) & (truth["reaction_time"] <= 0.35))
    # Failures: both kinds, about 9 %.
    results = truth["result"]
    assert set(results) == {"R", "A", "F"}
    assert 0.05 <= np.mean(results != "R") <= 0.15
    # Truth keys.
    required = {
        "unit_id",
        "unit_area",
        "preferred_direction_deg",
        "gain",
        "baseline_hz",
        "lag_s",
        "direction_deg",
        "go_cue_time",
        "move_onset_time",
        "reaction_time",
        "reach_duration",
        "result",
        "seed",
        "session_id",
    }
    assert required <= set(truth)
    assert int(truth["seed"]) == CO_ARGS["seed"] and str(truth["session_id"]) == "sim_co_A"
    assert all(v.dtype != object for v in truth.values())
    assert 5.0 <= np.mean(truth["mean_rate_hz"]) <= 20.0


def test_center_out_behaviour(co):
    """Cursor series units, derivative consistency and reach end points."""
    nwb, truth, _ = co
    assert nwb["units_meta"] == ("meters", "m/s", "m/s^2")
    assert 0 < nwb["resolution"] < 1e-10  # continuous-time spikes: the float64 spacing at the session's end
    assert nwb["rate"] == 500.0 and nwb["starting_time"] == 0.0
    pos, vel, acc = nwb["pos"], nwb["vel"], nwb["acc"]
    assert pos.shape[1] == 2 and pos.shape == vel.shape == acc.shape
    assert len(pos) / 500.0 > truth["stop_time"][-1]
    np.testing.assert_allclose(vel, np.gradient(pos, 1 / 500.0, axis=0), atol=1e-9)
    # Successful reaches end ~8 cm from the center in the target direction.
    ok = truth["result"] == "R"
    idx = np.rint((truth["move_onset_time"] + truth["reach_duration"] + 0.05) * 500).astype(int)
    end = pos[idx[ok]]
    assert np.allclose(np.hypot(end[:, 0], end[:, 1]), 8.0, atol=0.2)
    ang = np.rad2deg(np.arctan2(end[:, 1], end[:, 0]))
    assert np.all(_angle_error_deg(ang, truth["direction_deg"][ok]) < 3)
    # Failed trials never reach the target.
    bad = ~ok
    dist_to_target = np.linalg.norm(pos[idx[bad]] - truth["target_pos_cm"][bad], axis=1)
    assert np.all(dist_to_target > 1.5)


def test_speed_peaks_15_to_19_bins_after_go(co):
    """Trial-averaged speed in 30 ms bins peaks 15-19 bins after the go cue."""
    nwb, truth, _ = co
    speed = np.hypot(nwb["vel"][:, 0], nwb["vel"][:, 1])
    per_bin = int(0.03 * 500)
    profile = np.zeros(40)
    go = nwb["trials"]["go_cue_time"][nwb["trials"]["result"] == "R"]
    for g in go:
        i0 = int(round(g * 500))
        profile += speed[i0 : i0 + 40 * per_bin].reshape(40, per_bin).mean(axis=1)
    assert 15 <= int(np.argmax(profile)) <= 19
    # Bell-shaped: peak speed well above the hold speed.
    assert profile.max() > 10 * profile[:5].mean()


def test_m1_and_pmd_cosine_tuning(co):
    """Cosine fits of window spike counts recover the true preferred directions.

    Updated with the calibrated tuning model (docs/calibration.md): PMd's delay-period
    activity is tuned to its own preparatory direction (``prep_direction_deg``), and M1/S1
    units mix velocity with acceleration and late-velocity terms of other directions and
    encode a per-trial turned copy of the reach, so their window counts point within 45
    (not 30) degrees of the velocity preferred direction.
    """
    nwb, truth, _ = co
    ok = truth["result"] == "R"
    direction = truth["direction_deg"][ok]
    mo, go = truth["move_onset_time"][ok], truth["go_cue_time"][ok]
    errors = {}
    for u, area in enumerate(truth["unit_area"]):
        if area == "PMd":  # delay period, before any movement
            start, stop = go - 0.3, go
            expected = truth["prep_direction_deg"][u]
        else:
            start, stop = mo - 0.1, mo + 0.4
            expected = truth["preferred_direction_deg"][u]
        fitted = _fitted_pd(nwb["spikes"][u], start, stop, direction)
        errors.setdefault(area, []).append(_angle_error_deg(fitted, expected))
    assert np.mean(np.array(errors["M1"]) < 45) >= 0.8
    assert np.median(errors["M1"]) < 20
    assert np.mean(np.array(errors["PMd"]) < 30) >= 0.7
    assert np.mean(np.array(errors["S1"]) < 45) >= 0.7


def test_m1_leads_and_s1_lags_movement(co):
    """Population-rate/speed cross-correlation: M1 leads, S1 lags."""
    nwb, truth, _ = co
    assert np.all(truth["lag_s"][truth["unit_area"] == "M1"] > 0.05)
    assert np.all(truth["lag_s"][truth["unit_area"] == "S1"] < -0.01)
    speed = np.hypot(nwb["vel"][:, 0], nwb["vel"][:, 1])
    speed10 = speed[: len(speed) // 5 * 5].reshape(-1, 5).mean(axis=1)  # 10 ms bins
    edges = np.arange(len(speed10) + 1) * 0.01
    lags = np.arange(-25, 26)

    def best_lag(area):
        """Lag (s) maximising corr(pop rate(t), speed(t + lag))."""
        idx = np.flatnonzero(truth["unit_area"] == area)
        pop = sum(np.histogram(nwb["spikes"][u], edges)[0] for u in idx).astype(float)
        a, b = pop - pop.mean(), speed10 - speed10.mean()
        n = len(a)
        # cc[lag] = corr(pop(t), speed(t + lag))
        cc = [np.dot(a[max(0, -lag) : n - max(0, lag)], b[max(0, lag) : n - max(0, -lag)]) for lag in lags]
        return lags[int(np.argmax(cc))] * 0.01

    assert 0.05 <= best_lag("M1") <= 0.15
    assert -0.10 <= best_lag("S1") <= -0.02


def test_reproducible_and_session_specific(co, tmp_path):
    """Same inputs give identical arrays; another session_id gives other units."""
    nwb, truth, _ = co
    simulate_session(tmp_path / "again.nwb", tmp_path / "again.npz", **CO_ARGS)
    again = _read_center_out(tmp_path / "again.nwb")
    for a, b in zip(nwb["spikes"], again["spikes"], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nwb["pos"], again["pos"])
    truth2 = np.load(tmp_path / "again.npz", allow_pickle=False)
    for key, value in truth.items():
        np.testing.assert_array_equal(value, truth2[key])

    other_args = dict(CO_ARGS, session_id="sim_co_B")
    simulate_session(tmp_path / "other.nwb", tmp_path / "other.npz", **other_args)
    other = np.load(tmp_path / "other.npz", allow_pickle=False)
    assert not np.array_equal(other["preferred_direction_deg"], truth["preferred_direction_deg"])
    assert not np.array_equal(other["unit_id"], truth["unit_id"])
    assert not np.array_equal(other["go_cue_time"], truth["go_cue_time"])


# --------------------------------------------------------------------------
# Maze layout (NLB MC_Maze)
# --------------------------------------------------------------------------


def test_maze_layout_and_electrodes_caveat(maze):
    """NLB layout incl. the units.electrodes within-array-row caveat."""
    nwb, truth, _ = maze
    assert nwb["lab"] == "Shenoy"
    assert nwb["subject_id"] == "Jenkins" and nwb["species"] == "Macaca mulatta"
    assert len(nwb["elec_location"]) == 192
    assert np.all(nwb["elec_location"][:96] == "PMd") and np.all(nwb["elec_location"][96:] == "M1")
    assert np.all(nwb["elec_group_name"][:96] == "electrode_group_PMd")
    assert np.all(nwb["elec_group_name"][96:] == "electrode_group_M1")
    assert nwb["unit_cols"] == {"spike_times", "obs_intervals", "heldout", "electrodes"}
    ids = nwb["unit_ids"]
    np.testing.assert_array_equal(ids, truth["unit_id"])
    assert np.all((ids >= 1000) & (ids < 3000))
    is_m1 = ids // 1000 == 2
    np.testing.assert_array_equal(np.where(is_m1, "M1", "PMd"), truth["unit_area"])
    assert is_m1.any() and (~is_m1).any()
    assert not nwb["heldout"].any()
    # The caveat: every stored row is within 0-95, so M1 units resolve to PMd rows.
    assert np.all((nwb["unit_rows"] >= 0) & (nwb["unit_rows"] < 96))
    assert set(np.array(nwb["unit_elec_location"])[is_m1]) == {"PMd"}
    np.testing.assert_array_equal(nwb["unit_rows"] + 96 * is_m1, truth["unit_electrode_row"])
    np.testing.assert_array_equal(nwb["elec_location"][truth["unit_electrode_row"]], truth["unit_area"])
    # one observation interval per unit, the whole simulated session: every spike lies inside it
    for obs, spikes in zip(nwb["obs"], nwb["spikes"]):
        assert obs.shape == (1, 2) and obs[0, 0] == 0.0
        assert np.all(spikes <= obs[0, 1]) and obs[0, 1] >= nwb["trials"]["stop_time"].max()
    assert 0 < nwb["resolution"] < 1e-10


def test_maze_trials_and_truth(maze):
    """NLB trial columns (ragged target_pos) agree with the truth."""
    nwb, truth, _ = maze
    tr = nwb["trials"]
    expected = {
        "start_time",
        "stop_time",
        "split",
        "go_cue_time",
        "target_on_time",
        "move_onset_time",
        "rt",
        "delay",
        "maze_id",
        "trial_type",
        "trial_version",
        "active_target",
        "target_pos",
        "num_targets",
        "num_barriers",
        "success",
    }
    assert expected <= set(tr.columns)
    assert len(tr) == 36
    for key in (
        "trial_type",
        "trial_version",
        "maze_id",
        "num_targets",
        "active_target",
        "num_barriers",
        "go_cue_time",
        "move_onset_time",
        "success",
    ):
        np.testing.assert_array_equal(tr[key].to_numpy(), truth[key])
    np.testing.assert_allclose(tr["rt"] / 1000.0, truth["reaction_time"])
    np.testing.assert_allclose(tr["move_onset_time"] - tr["go_cue_time"], tr["rt"] / 1000.0)
    np.testing.assert_array_equal(truth["straight"], truth["trial_version"] == 0)
    np.testing.assert_array_equal(tr["num_barriers"] == 0, truth["straight"])
    assert set(tr["split"]) <= {"train", "val", "test"} and "train" in set(tr["split"])
    assert 0.0 < np.mean(~tr["success"]) <= 0.15
    for i, targets in enumerate(tr["target_pos"]):
        targets = np.asarray(targets)
        assert targets.shape == (tr["num_targets"].iloc[i], 2)
        np.testing.assert_allclose(targets[tr["active_target"].iloc[i]], 0.01 * truth["target_pos_cm"][i])
        ang = np.rad2deg(
            np.arctan2(
                targets[tr["active_target"].iloc[i], 1],
                targets[tr["active_target"].iloc[i], 0],
            )
        )
        assert _angle_error_deg(ang, truth["direction_deg"][i]) < 1e-6
    # Every condition has straight and curved versions.
    for cond in np.unique(truth["trial_type"]):
        versions = set(truth["trial_version"][truth["trial_type"] == cond])
        assert 0 in versions and versions & {1, 2}
    required = {
        "straight",
        "trial_type",
        "trial_version",
        "direction_deg",
        "go_cue_time",
        "move_onset_time",
        "reaction_time",
        "reach_duration",
        "result",
        "seed",
        "session_id",
        "unit_id",
        "unit_area",
        "preferred_direction_deg",
        "gain",
        "baseline_hz",
        "lag_s",
    }
    assert required <= set(truth)


def test_simulated_files_pass_nwbinspector(co, maze):
    """Both layouts meet NWB's best practices (distances in metres, units' resolution set, every maze spike
    inside its unit's observation interval): the one message at BEST_PRACTICE_VIOLATION or above is the subject's
    age, which the simulation does not give (as the real MC_Maze file; README: Export to NWB)."""
    for _, _, (path, _) in (co, maze):
        problems = inspector_problems(path)
        assert set(problems) == {"check_subject_age"}, problems


def test_maze_behaviour_curved_paths(maze):
    """Hand kinematics in metres; curved reaches leave the straight line, straight ones do not."""
    nwb, truth, _ = maze
    assert (nwb["hand_pos_unit"], nwb["hand_vel_unit"], nwb["cursor_pos_unit"]) == (
        "meters",
        "m/s",
        "meters",
    )
    rate = nwb["rate"]
    pos, vel = nwb["hand_pos"], nwb["hand_vel"]
    np.testing.assert_allclose(vel, np.gradient(pos, 1 / rate, axis=0), atol=1e-9)
    assert np.max(np.abs(nwb["cursor_pos"] - pos)) < 50.0  # cursor follows the hand
    deviation = []
    for i in range(len(truth["go_cue_time"])):
        i0 = int(truth["move_onset_time"][i] * rate)
        i1 = int((truth["move_onset_time"][i] + truth["reach_duration"][i]) * rate)
        path = pos[i0:i1]
        target = 10 * truth["target_pos_cm"][i]
        unit = target / np.linalg.norm(target)
        perp = np.abs(path[:, 0] * unit[1] - path[:, 1] * unit[0])
        deviation.append(perp.max() / np.linalg.norm(target))
        # Smooth speed: no jumps between samples.
        speed = np.hypot(vel[i0:i1, 0], vel[i0:i1, 1])
        assert np.max(np.abs(np.diff(speed))) < 0.1 * speed.max()
    deviation = np.array(deviation)
    straight = truth["straight"]
    assert np.all(deviation[straight] < 0.03)
    assert np.all(deviation[~straight & truth["success"]] > 0.2)


# --------------------------------------------------------------------------
# Parameters, validation, atomic writes
# --------------------------------------------------------------------------


def test_default_params_documented_shape():
    """DEFAULT_PARAMS has the documented blocks and the merge does not mutate it."""
    assert set(DEFAULT_PARAMS) == {"center_out", "maze", "neural"}
    assert DEFAULT_PARAMS["center_out"]["units"] == {"M1": 48, "PMd": 40, "S1": 32}
    assert DEFAULT_PARAMS["center_out"]["n_trials"] == 160
    assert DEFAULT_PARAMS["maze"]["units"] == {"M1": 48, "PMd": 40}
    assert DEFAULT_PARAMS["maze"]["n_conditions"] == 6
    merged = simulate.resolve_params({"maze": {"n_trials": 30}})
    assert merged["maze"]["n_trials"] == 30 and DEFAULT_PARAMS["maze"]["n_trials"] == 120


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(task="maze", areas=["M1", "S1"]), "areas"),
        (dict(task="reach"), "task"),
        (dict(hemisphere="both"), "hemisphere"),
        (dict(date="07/10/2016"), "date"),
        (dict(seed=-1), "seed"),
        (dict(areas=["M1", "V1"]), "areas"),
        (dict(params={"center_out": {"n_trails": 10}}), "params.center_out.n_trails"),
        (dict(params={"centre_out": {}}), "params.centre_out"),
        (dict(params={"center_out": {"units": {"M1": 4}}}), "params.center_out.units"),
        (
            dict(params={"neural": {"modulation_depth": [2.0, 1.0]}}),
            "params.neural.modulation_depth",
        ),
        (
            dict(task="maze", areas=["M1"], params={"maze": {"n_trials": 5}}),
            "params.maze.n_trials",
        ),
    ],
)
def test_bad_arguments_raise_and_leave_nothing(tmp_path, overrides, field):
    """Invalid input raises ValueError naming the field and writes nothing."""
    args = dict(CO_ARGS, **overrides)
    if args["task"] == "maze" and "params" not in overrides:
        args["params"] = MAZE_PARAMS
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as excinfo:
        simulate_session(tmp_path / "x.nwb", tmp_path / "x.npz", **args)
    assert isinstance(excinfo.value, InputError)
    assert field.startswith(excinfo.value.field) or excinfo.value.field.startswith(field)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    """An error after the NWB is written leaves no output or temporary file."""

    def boom(*args, **kwargs):
        """Simulate a failing write."""
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    small = {"center_out": {"n_trials": 8, "units": {"M1": 3}}}
    with pytest.raises(OSError, match="disk full"):
        simulate_session(
            tmp_path / "x.nwb",
            tmp_path / "x.npz",
            **dict(CO_ARGS, areas=["M1"], params=small),
        )
    assert list(tmp_path.iterdir()) == []


def test_the_params_schema_covers_exactly_the_defaults_and_the_config_uses_it():
    """params.schema.yaml names every key of DEFAULT_PARAMS and no other, the defaults pass it, and the
    workflow's config validates simulation.params with it (one schema for the API and the config)."""
    from pipeline.simulate.params import params_schema, validate_params
    from pipeline.stages.config import validate_config

    schema = params_schema()
    for block, keys in simulate.DEFAULT_PARAMS.items():
        assert set(schema["properties"][block]["properties"]) == set(keys), block
    validate_params(simulate.DEFAULT_PARAMS)
    with pytest.raises(InputError, match=r"^lab\.yaml \[simulation\.params\.maze\.hold_s\]: expected \[low, high\]"):
        validate_config(
            {"sessions": "s", "data_dir": "d", "simulation": {"params": {"maze": {"hold_s": [2, 1]}}}}, "lab.yaml"
        )

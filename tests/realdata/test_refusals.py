"""What the pipeline refuses: a corpus of implausible inputs, generated at test time from the real files in
../shared/data/real and from simulated ones (nothing copied into the project), one test per category of
README's "What the pipeline refuses, and why". Each case ends in one InputError line naming the file and
the field (asserted word for word where it matters) and leaves no output, or, where the data are
legitimate but a score is undefined, in NaN with its reason in the table.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import scipy.io

from pipeline.analysis.crossdecode import cross_decode, within_table
from pipeline.analysis.decoding import Cell, DecoderSpec, r2, within_session
from pipeline.embed.fit import fit_embedding
from pipeline.errors import InputError
from pipeline.io import read_recording
from pipeline.preprocess.prepare import prepare_dataset
from pipeline.stages.config import default_config, load_config, load_sheet, validate_config
from pipeline.stages.rules.ingest import run as ingest
from tests.support.nwb import write_nwb
from tests.support.paths import CHEWIE, CHEWIE_ROW, CHIPS, MAZE_TEST_NWB, ROOT, requires_real

pytestmark = requires_real

PREP = default_config()["preprocessing"]
ROW = CHEWIE_ROW
TRIALDATA = CHIPS / "tdGo2Fac.mat"


@pytest.fixture(scope="module")
def chewie():
    """The paper's Chewie 2016-10-07 file as an ingest dataset (read once, copied by each test)."""
    return read_recording(
        CHEWIE, fmt="nermat", areas=["M1", "PMd"], session="Chewie-20161007", reader_options={"trial_bins": 40}
    ).load()


def refused(call, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as err:
        call(*args, **kwargs)
    assert "\n" not in str(err.value)  # one line
    return err.value


# --------------------------------------------------------------------------- degenerate behaviour
def test_constant_hand_velocity_is_refused_and_an_undefined_r2_is_nan_with_its_reason(chewie):
    still = chewie.copy(deep=True)
    still["velocity"][:] = 0.0
    err = refused(prepare_dataset, still, session=ROW, preprocessing=PREP)
    assert err.field == "velocity" and "constant (0) in every analysed bin" in err.problem
    # one constant component (a 1-D task) is legitimate: its R² is NaN with the reason, never 1.0
    value, why = r2(np.c_[np.arange(10.0), np.zeros(10)], np.ones((10, 2)), "the hand velocity")
    assert np.isnan(value) and why == "the hand velocity (y) has no variance over the scored bins: R² is undefined"
    rng = np.random.default_rng(0)
    n, bins = 20, 5
    cell = Cell(
        "s/M1",
        rng.normal(size=(n, bins, 3)),
        np.zeros((n, bins, 2)),
        np.arange(n) % 8,
        np.arange(n) < 15,
        0.03 * np.arange(bins),
        meta={"session": "s", "area": "M1", "method": "ner", "seed": 0},
    )
    scores, _ = within_table([cell], [DecoderSpec("linear")], group="g")
    velocity = scores[scores["target"] != "direction"]
    assert velocity["value"].isna().all() and velocity["note"].str.contains("has no variance").all()


# --------------------------------------------------------------------------- degenerate spiking
def test_an_area_without_spikes_in_the_windows_and_nan_spike_times_are_refused(chewie, tmp_path):
    silent = chewie.copy(deep=True)
    silent["counts"][..., silent["area"].values == "M1"] = 0.0
    err = refused(prepare_dataset, silent, session=ROW, preprocessing=PREP)
    assert (
        err.field == "area M1" and "none of its" in err.problem and "fires inside the analysed windows" in err.problem
    )
    path = write_nwb(tmp_path / "nan.nwb")
    with h5py.File(path, "r+") as f:
        f["units/spike_times"][5] = np.nan
    err = refused(read_recording, path, fmt="nwb", areas=["M1"], session="X")
    assert err.field == "units.spike_times" and err.problem.startswith("1 spike times are NaN or inf (unit ids [")


# --------------------------------------------------------------------------- units and conventions
def test_directions_outside_the_declared_unit_are_refused(tmp_path):
    mat = scipy.io.loadmat(CHEWIE)
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    mat["discrete_index"] = np.deg2rad(mat["discrete_index"].astype(float))
    radians = tmp_path / "radians.mat"
    scipy.io.savemat(radians, mat)
    err = refused(read_recording, radians, fmt="nermat", areas=["M1"], session="X", reader_options={"trial_bins": 40})
    assert err.field == "discrete_index" and "these look like radians, but the unit is degrees" in err.problem
    ok = read_recording(
        radians, fmt="nermat", areas=["M1"], session="X", reader_options={"trial_bins": 40, "direction_units": "rad"}
    )
    assert len(np.unique(ok["direction"].values)) == 8  # declared, it reads right
    td = scipy.io.loadmat(TRIALDATA, squeeze_me=True, struct_as_record=False)  # target_direction in radians
    for t in td["td"]:
        t.target_direction = np.rad2deg(t.target_direction)
    degrees = tmp_path / "degrees.mat"
    scipy.io.savemat(degrees, {"td": td["td"]})
    err = refused(read_recording, degrees, fmt="trialdata", areas=None, session="X")
    assert err.field == "td.target_direction" and "outside ±2π, so not radians as declared" in err.problem


@pytest.mark.parametrize(
    ("change", "words"),
    [(-1, "spike counts must be >= 0, found -1"), (0.5, "spike counts must be whole numbers, found 0.5")],
)
def test_trialdata_counts_that_are_not_counts_are_refused(tmp_path, change, words):
    td = scipy.io.loadmat(TRIALDATA, squeeze_me=True, struct_as_record=False)
    name = next(k for k in ("td", "trial_data") if k in td)
    spikes = next(f for f in td[name][0]._fieldnames if f.endswith("_spikes"))
    first = np.asarray(getattr(td[name][2], spikes), dtype=float)
    first[0, 0] = change
    setattr(td[name][2], spikes, first)
    bad = tmp_path / "counts.mat"
    scipy.io.savemat(bad, {name: td[name]})
    err = refused(read_recording, bad, fmt="trialdata", areas=None, session="X")
    assert err.field == f"{name}(3).{spikes}" and words in err.problem


def test_trialdata_velocity_with_one_column_names_the_velocity(tmp_path):
    td = scipy.io.loadmat(TRIALDATA, squeeze_me=True, struct_as_record=False)
    name = next(k for k in ("td", "trial_data") if k in td)
    td[name][0].vel = np.asarray(td[name][0].vel)[:, :1]
    bad = tmp_path / "vel.mat"
    scipy.io.savemat(bad, {name: td[name]})
    err = refused(read_recording, bad, fmt="trialdata", areas=None, session="X")
    assert err.field == f"{name}(1).vel" and "expected (bins, 2)" in err.problem


def test_unit_id_areas_only_for_mc_maze_and_never_against_the_electrodes(tmp_path):
    path = write_nwb(tmp_path / "lab.nwb", lab="Miller")  # any lab's ids may lie in 1000-2999
    with h5py.File(path, "r+") as f:
        f["units/id"][:] = 1001 + np.arange(len(f["units/id"]))
    ds = read_recording(path, fmt="nwb", areas=None, session="X")
    assert list(ds["area"].values) == ["M1"] * 4 + ["PMd"] * 4  # from the electrodes' location
    maze = tmp_path / "maze.nwb"
    shutil.copy(MAZE_TEST_NWB, maze)
    with h5py.File(maze, "r+") as f:
        location = f["general/extracellular_ephys/electrodes/location"]
        location[:96] = np.array([b"M1"] * 96, dtype=location.dtype)  # the PMd array labelled M1
    err = refused(read_recording, maze, fmt="nwb", areas=None, session="X", reader_options={"require_behavior": False})
    assert err.field == "general/extracellular_ephys/electrodes.location"
    assert "its MC_Maze id prefix says PMd but its electrode's location says M1" in err.problem


def test_duplicate_trial_ids_are_refused_and_unsorted_trials_follow_their_start_times(tmp_path):
    path = write_nwb(tmp_path / "dup.nwb")
    with h5py.File(path, "r+") as f:
        f["intervals/trials/id"][1] = f["intervals/trials/id"][0]
    err = refused(read_recording, path, fmt="nwb", areas=["M1"], session="X")
    assert err.field == "intervals/trials.id" and err.problem == "duplicate trial ids [0]"
    path = write_nwb(tmp_path / "order.nwb")
    with h5py.File(path, "r+") as f:
        for column in ("id", "start_time", "stop_time", "go_cue_time", "target_dir"):
            data = f[f"intervals/trials/{column}"]
            data[:] = data[:][::-1]
    ds = read_recording(path, fmt="nwb", areas=["M1"], session="X")
    assert np.all(np.diff(ds["start_time"].values) > 0) and list(ds["trial"].values) == list(range(12))


# --------------------------------------------------------------------------- too little data
def test_too_few_trials_or_one_direction_are_refused_and_one_trained_direction_is_nan(chewie):
    err = refused(prepare_dataset, chewie.isel(trial=slice(0, 3)), session=ROW, preprocessing=PREP)
    assert err.field == "trials" and err.problem.startswith("3 trial(s) left after selection")
    assert "at least 10 are needed" in err.problem and "(preprocessing.min_trials)" in err.problem
    one = chewie.isel(trial=np.flatnonzero(np.isclose(chewie["direction"].values, chewie["direction"].values[0])))
    err = refused(prepare_dataset, one, session=ROW, preprocessing=PREP)
    assert err.field == "direction" and "reach towards one direction only" in err.problem
    rng = np.random.default_rng(1)
    cell = Cell("s/M1", rng.normal(size=(12, 4, 3)), rng.normal(size=(12, 4, 2)), np.r_[np.zeros(8), np.arange(4)],
                np.arange(12) < 8, 0.03 * np.arange(4), meta={"method": "pca", "seed": 0})  # fmt: skip
    held = within_session(cell, DecoderSpec("linear"))["held_out"]
    assert np.isnan(held.values["direction", "peak_accuracy"])
    assert "reach towards one direction only" in held.notes["direction", "peak_accuracy"]


# --------------------------------------------------------------------------- sheet and config
def test_sheet_and_config_values_that_would_give_wrong_rows(tmp_path, chewie):
    header = "session_id\tsubject\tdate\themisphere\ttask\tformat\tpath\tareas"
    sheet = tmp_path / "s.tsv"
    sheet.write_text(f"{header}\nA-1\tA\t2016-10-07\tleft\tcenter_out\tnwb\ta.nwb\tM1,M1\n")
    err = refused(load_sheet, sheet)
    assert err.field == "row 1 (A-1).areas" and err.problem.startswith("area(s) ['M1'] listed twice")
    err = refused(
        validate_config,
        {"sessions": "s", "data_dir": "d", "preprocessing": {"smoothing": {"half_width_s": 0}}},
        "c.yaml",
    )
    assert str(err) == (
        "c.yaml [preprocessing.smoothing.half_width_s]: 0 is below sd_s 0.045: the kernel would be cut inside one "
        "sd (set sd_s: 0 for no smoothing)"
    )
    bad = {"sessions": "s", "data_dir": "d", "methods": {"ner": {"params": {"angle_column": 5}}}}
    err = refused(validate_config, bad, "c.yaml")
    assert err.field == "methods.ner.params.angle_column" and "5 is greater than the maximum of 2" in err.problem
    prepared = prepare_dataset(chewie.isel(trial=slice(0, 40)), session=ROW, preprocessing=PREP)
    err = refused(fit_embedding, prepared, method="ner", params={"batch_size": 100_000}, area="M1")
    assert err.field == "methods.ner.params.batch_size" and "more than the 1280 training bins" in err.problem
    err = refused(fit_embedding, prepared, method="pca", params={"n_components": 2000}, area="M1")
    assert err.field == "methods.pca.params.n_components" and "(at most" in err.problem
    rng = np.random.default_rng(0)
    cell = Cell("s/M1", rng.normal(size=(12, 4, 3)), rng.normal(size=(12, 4, 2)), np.arange(12) % 8,
                np.arange(12) < 9, 0.03 * np.arange(4), meta={"method": "pca", "seed": 0})  # fmt: skip
    err = refused(cross_decode, [cell, cell], [DecoderSpec("linear")], group="g")
    assert err.field == "cells" and "given twice: they would be scored as the diagonal" in err.problem


# --------------------------------------------------------------------------- tracebacks and misleading lines
def test_sheets_that_pandas_misread_get_one_line(tmp_path):
    header = "session_id\tsubject\tdate\themisphere\ttask\tformat\tpath\tareas"
    row = "A-1\tA\t2016-10-07\tleft\tcenter_out\tnwb\ta#1.nwb\tM1"
    sheet = tmp_path / "s.tsv"
    for text, field, words in [
        ("", None, "the sessions sheet is empty (no header, no rows)"),
        ("# only a comment\n", None, "the sessions sheet is empty (no header, no rows)"),
        (f"{header}\n", None, "the sessions sheet has a header but no rows"),
        (f"{header}\n{row}\tM1\n", "line 2", "9 cells for the header's 8 columns"),
    ]:
        sheet.write_text(text)
        err = refused(load_sheet, sheet)
        assert err.field == field and words in err.problem
    sheet.write_text(f"# a comment\n{header}\n{row}\t\n")  # a trailing tab; a '#' inside a cell is text
    assert load_sheet(sheet).loc["A-1", "path"] == "a#1.nwb"
    err = refused(load_sheet, tmp_path)
    assert err.problem == "is a directory, not a sessions sheet"


def test_files_that_used_to_end_in_a_traceback(tmp_path):
    err = refused(ingest, tmp_path, tmp_path / "out.zarr", fmt="nwb", areas=["M1"], session="X")
    assert err.field == "path" and err.problem == "is a directory, not a recording file"
    config = tmp_path / "c.yaml"
    config.write_text("sessions: s.tsv\npreprocessing:\n  bin_size_s: [0.03\n")
    err = refused(load_config, config)
    assert err.field == "line 4, column 1" and err.problem.startswith("not valid YAML:")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(config)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {config} [line 4, column 1]: not valid YAML")
    hdf5 = tmp_path / "plain.h5"
    with h5py.File(hdf5, "w") as f:
        f["data"] = np.arange(10)
    err = refused(read_recording, hdf5, fmt="nwb", areas=["M1"], session="X")
    assert "not a readable NWB" in err.problem
    strings = write_nwb(tmp_path / "strings.nwb")
    with h5py.File(strings, "r+") as f:
        attrs = dict(f["intervals/trials/target_dir"].attrs)
        del f["intervals/trials/target_dir"]
        f["intervals/trials/target_dir"] = np.array([b"left"] * 12)
        f["intervals/trials/target_dir"].attrs.update(attrs)
    err = refused(read_recording, strings, fmt="nwb", areas=["M1"], session="X")
    assert err.field == "intervals/trials.target_dir" and "target directions must be numbers" in err.problem
    assert not (tmp_path / "out.zarr").exists()


def test_corrupt_provenance_is_one_line_from_the_command(tmp_path):
    import subprocess
    import sys

    (tmp_path / "t.tsv").write_text("a\n1\n")
    (tmp_path / "t.provenance.json").write_text('{"outputs": {"t.tsv": ')
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "provenance", str(tmp_path / "t.tsv")], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith("t.provenance.json: not valid JSON (line 1, column 23: Expecting value)")
    )


# --------------------------------------------------------------------------- property: mutated real files
def _mutations(rng, names: list[str], n: int):
    """Seeded (kind, target) pairs: delete one named part, or cut the file to a random length."""
    for _ in range(n):
        if rng.random() < 0.5:
            yield "delete", names[int(rng.integers(len(names)))]
        else:
            yield "truncate", float(rng.uniform(0.05, 0.95))


@pytest.mark.parametrize("kind", ["nwb", "nermat", "trialdata"])
def test_mutated_real_files_end_in_an_input_error_or_a_valid_store(tmp_path, kind):
    """Random deletions of fields and truncations of the real files: every case ends in InputError or a
    valid ingest store, never another exception (24 seeded cases per format)."""
    source = {"nwb": MAZE_TEST_NWB, "nermat": CHEWIE, "trialdata": TRIALDATA}[kind]
    options = {"nwb": {"require_behavior": False}, "nermat": {"trial_bins": 40}, "trialdata": {}}[kind]
    if kind == "nwb":
        with h5py.File(source, "r") as f:
            names = []
            f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    else:
        names = [k for k in scipy.io.whosmat(source) for k in [k[0]]]
    rng = np.random.default_rng({"nwb": 1, "nermat": 2, "trialdata": 3}[kind])
    outcomes = {"refused": 0, "read": 0}
    for i, (mutation, target) in enumerate(_mutations(rng, names, 24)):
        path = tmp_path / f"{i}{source.suffix}"
        if mutation == "truncate":
            data = source.read_bytes()
            path.write_bytes(data[: int(len(data) * target)])
        elif kind == "nwb":
            shutil.copy(source, path)
            with h5py.File(path, "r+") as f:
                del f[target]
        else:
            mat = {k: v for k, v in scipy.io.loadmat(source).items() if not k.startswith("__") and k != target}
            scipy.io.savemat(path, mat)
        out = tmp_path / f"{i}.zarr"
        try:
            ingest(path, out, fmt=kind, areas=None, session="X", reader_options=options)
        except InputError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), (mutation, target, exc)
            assert not out.exists()
            outcomes["refused"] += 1
        else:
            from pipeline.data.store import open_store, validate_ingest

            validate_ingest(open_store(out), out)
            outcomes["read"] += 1
    assert outcomes["refused"] > 0


def test_the_shipped_configs_still_validate():
    for name in ("config.yaml", "paper.yaml", "dandi.yaml", "mc_maze.yaml"):
        load_config(ROOT / "config" / name)

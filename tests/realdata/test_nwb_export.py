"""The NWB export (rule export_nwb) on real sources: the MC_Maze test split (NWB: metadata copied, trials
linked, latents on the session clock) and the paper's Chewie 2016-10-07 .mat (no clock, no NWB metadata; decoded
velocity and decoding table). Each file validates with pynwb, passes nwbinspector but for the metadata its source
lacks (tests/support/nwb.py: SOURCE_LACKS), and reads back to the stores' numbers exactly. PCA embeddings: cheap."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.crossdecode import decoder_specs, within_table
from pipeline.analysis.decoding import Cell, DecoderSpec
from pipeline.data.store import as_object_strings, open_store
from pipeline.errors import InputError
from pipeline.report.nwb_export import decoded_velocity, export_session, open_source, read_export, write_session
from pipeline.stages.config import validate_config
from pipeline.stages.rules.export_nwb import run as export_run
from pipeline.stages.rules.ingest import run as ingest
from pipeline.stages.rules.prepare import run as prepare
from pipeline.stages.rules.train import run as train_embedding
from tests.support.nwb import SOURCE_LACKS, inspector_problems
from tests.support.paths import CHEWIE, MAZE_TEST_NWB, requires_real

pytestmark = [requires_real, pytest.mark.realdata]

CPU = {"prefer": "cpu", "allow_cpu": True, "wait_s": 0}
LABELS = {"velocity_scale": 10.0, "use_direction": True, "maze_velocity_scale": 1.0}
MAZE_ROW = {
    "session_id": "Jenkins-20090928",
    "subject": "Jenkins",
    "date": "2009-09-28",
    "year": 2009,
    "hemisphere": "left",
    "task": "maze",
    "format": "nwb",
    "area_list": ["M1", "PMd"],
}


def _pca(prepared, folder, area):
    store, model = folder / f"pca_{area}.zarr", folder / f"pca_{area}"
    train_embedding(
        prepared, store, model, method="pca", params={}, area=area, seed=0, labels=LABELS, device=CPU, threads=1
    )
    return store, model


@pytest.fixture(scope="module")
def maze_export(tmp_path_factory):
    """The real MC_Maze test split (no behaviour) -> ingest, prepare (the workflow test's sheet row: move onset,
    -2 .. +15 bins), PCA on M1 -> the export rule's function."""
    folder = tmp_path_factory.mktemp("maze_export")
    ingest(
        MAZE_TEST_NWB,
        folder / "ingest.zarr",
        fmt="nwb",
        areas=["M1", "PMd"],
        session=MAZE_ROW["session_id"],
        reader_options={"require_behavior": False},
    )
    prep = validate_config({"sessions": "x", "data_dir": "y"})["preprocessing"]
    prep.update(align_event="move_onset", window_start_bins=-2, window_bins=17)
    prepare(folder / "ingest.zarr", folder / "prepared.zarr", session=MAZE_ROW, preprocessing=prep, threads=1)
    store, model = _pca(folder / "prepared.zarr", folder, "M1")
    out = folder / "nwb" / "Jenkins.nwb"
    export_run(
        source=MAZE_TEST_NWB,
        ingest=folder / "ingest.zarr",
        prepared=folder / "prepared.zarr",
        embeddings=[store],
        models=[model],
        out=out,
        fmt="nwb",
    )
    return folder, out, store


def test_mc_maze_export_validates_and_keeps_the_source_metadata_and_clock(maze_export):
    from pynwb import NWBHDF5IO, validate

    folder, out, store = maze_export
    assert validate(path=str(out)) == []
    problems = inspector_problems(out)
    # the real file lacks the subject's age; everything else it has, and nothing of ours is flagged
    assert set(problems) == {"check_subject_age"}, problems
    back = read_export(out)
    with NWBHDF5IO(str(MAZE_TEST_NWB), "r") as io:
        src = io.read()
        assert back.metadata["session_start_time"] == src.session_start_time
        assert back.metadata["timestamps_reference_time"] == src.timestamps_reference_time
        for key in ("session_description", "lab", "institution", "experimenter", "session_id"):
            assert back.metadata[key] == getattr(src, key), key
        for key in ("subject_id", "species", "sex", "age"):
            assert back.metadata["subject"][key] == getattr(src.subject, key), key
        n_source_trials = len(src.trials)
    # the trials table is a real HDF5 external link to the source, relative to the exported file
    (target, where), *_ = back.links.values()
    assert list(back.links) == ["/intervals/trials"] and where == "/intervals/trials"
    assert (out.parent / target).resolve() == MAZE_TEST_NWB.resolve() and back.metadata["has_trials_link"]
    assert n_source_trials == 100
    inputs = back.inputs.set_index("role")
    assert inputs.loc["source", "sha256"] == "ca8a0bef5f189eafb9db1961d617e065cb461360718fde1c16a538922a6fa5fe"

    # read back to the stores' numbers exactly: latents, the split, times on the session clock
    emb = open_store(store, layout="embedding")
    ing = open_store(folder / "ingest.zarr")
    np.testing.assert_array_equal(back.latent[("pca", "M1", 0)], emb["latent"].values)
    np.testing.assert_array_equal(back.trials["source_trial_id"], emb["trial"].values)
    assert list(back.trials["split"]) == list(as_object_strings(emb["split"].values))
    onset = ing["move_onset_time"].to_series().loc[emb["trial"].values].to_numpy()
    expected = onset[:, None] + emb["bin_time"].values[None, :]
    np.testing.assert_array_equal(back.timestamps, expected)
    np.testing.assert_array_equal(back.trials["start_time"], expected[:, 0])
    assert back.hand_velocity is None and back.decoded == {} and back.decoding is None  # the split has no behaviour
    row = back.embeddings.iloc[0]
    assert (row.method, row.area, row.seed, row.n_units) == ("pca", "M1", 0, 55)


def test_export_refuses_a_source_changed_since_ingest_and_leaves_nothing(maze_export):
    folder, _, store = maze_export
    out = folder / "changed" / "Jenkins.nwb"
    with pytest.raises(InputError) as err:
        export_run(
            source=CHEWIE,  # not the file the stores were made from
            ingest=folder / "ingest.zarr",
            prepared=folder / "prepared.zarr",
            embeddings=[store],
            out=out,
            fmt="nwb",
        )
    assert err.value.source == str(CHEWIE) and err.value.field == "sha256" and "\n" not in str(err.value)
    assert not out.parent.exists() or not list(out.parent.iterdir())


@pytest.fixture(scope="module")
def chewie_export(chewie_prepared, tmp_path_factory):
    """Chewie 2016-10-07 (the paper's .mat) -> PCA on M1 -> within-session scores (linear) -> export in memory."""
    folder = tmp_path_factory.mktemp("chewie_export")
    store, model = _pca(chewie_prepared, folder, "M1")
    prepared = open_store(chewie_prepared, layout="prepared")
    emb = open_store(store, layout="embedding")
    decoding = validate_config({"sessions": "x", "data_dir": "y", "decoding": {"decoders": ["linear"]}})["decoding"]
    scores, _ = within_table([Cell.from_stores(emb, prepared)], decoder_specs(decoding))
    with open_source(CHEWIE, "nermat") as (nwb, manager):  # not NWB: nothing to open or link
        assert nwb is None and manager is None
        nwbfile = export_session(prepared, [emb], scores=scores, decoding=decoding, models=[_model_json(model)])
        out = write_session(nwbfile, folder / "Chewie.nwb", manager)
    return out, prepared, emb, scores


def _model_json(folder):
    import json

    return json.loads((folder / "model.json").read_text())


def test_mat_export_without_clock_validates_and_reads_back(chewie_export):
    from pynwb import validate

    out, prepared, emb, scores = chewie_export
    assert validate(path=str(out)) == []
    problems = inspector_problems(out)
    # a .mat has no subject metadata (the sheet gives the id only); nothing else is flagged
    assert set(problems) == set(SOURCE_LACKS), problems
    back = read_export(out)
    assert back.links == {} and not back.metadata["has_trials_link"]
    assert back.metadata["subject"]["subject_id"] == "Chewie" and back.metadata["subject"]["species"] is None
    assert str(back.metadata["session_start_time"].date()) == "2016-10-07"
    assert "no session clock" in back.metadata["module_description"]
    assert back.timestamps is None
    np.testing.assert_array_equal(back.bin_time, prepared["bin_time"].values)
    np.testing.assert_array_equal(back.latent[("pca", "M1", 0)], emb["latent"].values)
    np.testing.assert_array_equal(back.hand_velocity, prepared["velocity"].values)
    decoded = back.decoded[("linear", "pca", "M1", 0)]
    cell = Cell.from_stores(emb, prepared)
    np.testing.assert_array_equal(decoded, decoded_velocity(cell, DecoderSpec("linear")))
    # the decoded velocity is the within-session decoder's: its in-sample R² is the table's
    from sklearn.metrics import r2_score

    train = cell.train
    r2 = r2_score(prepared["velocity"].values[train].reshape(-1, 2), decoded[train].reshape(-1, 2))
    table = back.decoding.set_index(["evaluation", "target", "metric"])
    assert table.loc[("in_sample", "velocity", "r2"), "value"] == pytest.approx(r2, abs=1e-12)
    assert len(back.decoding) == len(scores) and set(back.decoding["area"]) == {"M1"}
    assert (back.embeddings["device"] == "cpu").all()
    # hyper-parameters, versions and the checkpoint's record, one flattened field per row
    records = back.records.set_index(["record", "key"])["value"]
    assert records[("params", "n_components")] == "3" and records[("versions", "ner-pipeline")] == "0.1.0"
    assert len(records[("model", "files.pca.npz")]) == 64  # the checkpoint file's sha256


def test_overlapping_windows_on_a_clock_become_trial_columns(chewie_export, tmp_path):
    """Alignment times closer than the 1.2-s window (as an NWB source could have): no TimeSeries can hold the
    bins in time order, so they stay (trial, bin, ·) columns, with each window on the session clock."""
    import xarray as xr

    out, prepared, emb, _ = chewie_export
    trials = prepared["trial"].values
    go = 10.0 + 0.5 * np.arange(len(trials))  # 0.5 s apart
    ingest = xr.Dataset({"go_cue_time": ("trial", go[::-1])}, coords={"trial": trials[::-1]})
    ingest.attrs.update(layout="spikes", source_file="ingest.zarr")
    path = write_session(export_session(prepared, [emb], ingest=ingest), tmp_path / "overlap.nwb")
    back = read_export(path)
    assert "overlap" in back.metadata["module_description"]
    np.testing.assert_array_equal(back.trials["alignment_time"], go)
    np.testing.assert_array_equal(back.timestamps, go[:, None] + prepared["bin_time"].values[None, :])
    np.testing.assert_array_equal(back.trials["start_time"], go)  # the window starts at the go cue
    np.testing.assert_array_equal(back.latent[("pca", "M1", 0)], emb["latent"].values)
    assert set(inspector_problems(path)) == set(SOURCE_LACKS)
    missing = ingest.isel(trial=slice(1, None))
    with pytest.raises(InputError) as err:
        export_session(prepared, [emb], ingest=missing)
    assert (err.value.source, err.value.field) == ("ingest.zarr", "trial")


def test_export_refuses_an_embedding_of_other_trials_in_one_line(chewie_export):
    out, prepared, emb, _ = chewie_export
    fewer = emb.isel(trial=slice(1, None))
    fewer.attrs["store"] = "emb.zarr"
    with pytest.raises(InputError) as err:
        export_session(prepared, [fewer])
    assert err.value.source == "emb.zarr" and err.value.field == "trial" and "\n" not in str(err.value)

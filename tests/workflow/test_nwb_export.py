"""The demo's NWB exports (rule export_nwb, in the shared `make demo` run: tests/conftest.py's ``demo_run``):
every session's file validates with pynwb and passes nwbinspector but for the subject's age, which the
simulated recordings do not give; one reads back to the stores' and tables' numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.data.store import as_object_strings, open_store
from pipeline.stages.config import load_sheet
from tests.support.nwb import inspector_problems

pytestmark = pytest.mark.slow


def test_demo_exports_validate_and_pass_nwbinspector(demo_run):
    from pynwb import validate

    work, _ = demo_run
    for sid in load_sheet(work / "config/sessions.tsv").index:
        path = work / "results/nwb" / f"{sid}.nwb"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert validate(path=str(path)) == [], sid
        assert set(inspector_problems(path)) == {"check_subject_age"}, sid  # the simulation gives no age
        assert (work / "results/nwb" / f"{sid}.provenance.json").is_file()


def test_demo_export_reads_back_to_the_stores(demo_run):
    from pynwb import NWBHDF5IO
    from sklearn.metrics import r2_score

    from pipeline.report.nwb_export import read_export

    work, _ = demo_run
    sid = "SimC-20161007"
    back = read_export(work / "results/nwb" / f"{sid}.nwb")
    source = work / "resources/simulated" / f"{sid}.nwb"
    with NWBHDF5IO(str(source), "r") as io:
        src = io.read()
        assert back.metadata["session_start_time"] == src.session_start_time
        assert (back.metadata["lab"], back.metadata["session_description"]) == (src.lab, src.session_description)
        assert back.metadata["subject"]["species"] == src.subject.species
    # the source's trials are linked, relative to the export: both live in the working copy
    assert back.links == {"/intervals/trials": (f"../../resources/simulated/{sid}.nwb", "/intervals/trials")}

    prepared = open_store(work / "results/prepared" / f"{sid}.zarr", layout="prepared")
    ingest = open_store(work / "results/ingest" / f"{sid}.zarr")
    trials = prepared["trial"].values
    np.testing.assert_array_equal(back.trials["source_trial_id"], trials)
    assert list(back.trials["split"]) == list(as_object_strings(prepared["split"].values))
    go = ingest["go_cue_time"].to_series().loc[trials].to_numpy()
    np.testing.assert_array_equal(back.timestamps, go[:, None] + prepared["bin_time"].values[None, :])
    velocity = prepared["velocity"].values
    np.testing.assert_array_equal(back.hand_velocity, velocity)
    stores = sorted((work / "results/embeddings").glob(f"*/{sid}/*/seed0.zarr"))
    assert len(stores) == len(back.latent) == 10  # NER on M1, PMd, S1; the seven peers on M1
    train = as_object_strings(prepared["split"].values) == "train"
    scores = pd.concat(
        [pd.read_csv(p, sep="\t") for p in sorted((work / "results/decoding/within").glob("*/seed0.scores.tsv"))]
    )
    in_sample = scores[
        (scores.test_session == sid)
        & (scores.decoder == "linear")
        & (scores.evaluation == "in_sample")
        & (scores.target == "velocity")
        & (scores.metric == "r2")
    ].set_index(["method", "test_area"])["value"]
    for store in stores:
        emb = open_store(store, layout="embedding")
        key = (emb.attrs["method"], emb.attrs["area"], 0)
        np.testing.assert_array_equal(back.latent[key], emb["latent"].values)
        # the decoded velocity is decode_within's linear decoder: its in-sample R² is the workflow's table value
        decoded = back.decoded[("linear", *key)]
        r2 = r2_score(velocity[train].reshape(-1, 2), decoded[train].reshape(-1, 2))
        assert r2 == pytest.approx(in_sample.loc[key[:2]], rel=1e-8), key
    # the decoding table holds the session's rows of every within-session table, values as written there
    mine = scores[scores.test_session == sid]
    assert len(back.decoding) == len(mine)
    keys = ["method", "decoder", "evaluation", "target", "metric"]
    ours = back.decoding.assign(test_area=back.decoding.area).sort_values([*keys, "test_area"])
    theirs = mine.sort_values([*keys, "test_area"])
    np.testing.assert_array_equal(ours["value"].to_numpy(), theirs["value"].to_numpy())

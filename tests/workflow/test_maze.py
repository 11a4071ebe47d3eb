"""The maze analysis (straight vs curved reaches, the paper's Fig. 8): subsets, labels, separation,
training per subset, and the real MC_Maze_Small test NWB (no behaviour) through ingest and prepare."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.analysis.maze import separation, subset_table
from pipeline.data.store import as_object_strings, open_store
from pipeline.errors import InputError
from pipeline.preprocess.labels import movement_labels
from pipeline.preprocess.subsets import select_subset, subset_mask
from pipeline.stages.config import (
    load_config,
    load_sheet,
    maze_method_params,
    maze_preprocessing,
    maze_sessions,
    maze_subset,
    validate_config,
)
from pipeline.stages.rules.ingest import run as ingest
from pipeline.stages.rules.prepare import run as prepare
from pipeline.stages.rules.train import run as train_embedding
from tests.support.paths import MAZE_TEST_NWB, ROOT, requires_real
from tests.support.workflow import snakemake

pytestmark = pytest.mark.xdist_group("maze")  # one pytest worker: its module fixtures run once

MAZE_ROW = {
    "session_id": "SimJ-1",
    "subject": "SimJ",
    "date": "2009-09-18",
    "year": 2009,
    "hemisphere": "left",
    "task": "maze",
    "format": "nwb",
    "area_list": ["M1", "PMd"],
}
LABELS = {"velocity_scale": 10.0, "use_direction": True, "maze_velocity_scale": 1.0}
CPU = {"prefer": "cpu", "allow_cpu": True}


def _config(**maze):
    return validate_config({"sessions": "x", "data_dir": "y", "maze": {"enabled": True, **maze}}, "test.yaml")


def _conditions_store(types, versions):
    n = len(types)
    return xr.Dataset(
        {"rates": (("trial", "bin", "unit"), np.zeros((n, 2, 1), np.float32))},
        coords={
            "trial": np.arange(100, 100 + n),
            "trial_type": ("trial", np.asarray(types)),
            "trial_version": ("trial", np.asarray(versions)),
            "split": ("trial", np.array(["train"] * n, dtype=object)),
        },
    )


# ------------------------------------------------------------------------------------ subsets
def test_subset_selects_its_conditions_and_resplits_chronologically():
    types = [38, 38, 13, 38, 18, 38, 38, 13, 38, 38, 38, 38]
    versions = [0, 1, 0, 2, 0, 0, 1, 1, 0, 1, 2, 1]
    ds = _conditions_store(types, versions)
    spec = {"trial_types": [38], "versions": [0, 1]}
    mask = subset_mask(ds, "straight_curve_38", spec)
    assert mask.tolist() == [t == 38 and v in (0, 1) for t, v in zip(types, versions)]
    sub = select_subset(ds, "straight_curve_38", spec, train_fraction=0.8)
    assert sub.sizes["trial"] == 7 and sub["trial"].values.tolist() == [100, 101, 105, 106, 108, 109, 111]
    assert as_object_strings(sub["split"].values).tolist() == ["train"] * 5 + ["test"] * 2  # int(0.8 * 7)
    assert sub.attrs["subset"] == "straight_curve_38" and '"versions": [0, 1]' in sub.attrs["subset_spec"]


def test_subset_errors_name_the_subset_and_list_the_conditions():
    ds = _conditions_store([38, 38, 13, 13, 13, 13], [0, 1, 0, 1, 0, 1])
    with pytest.raises(InputError) as err:
        subset_mask(ds, "curve_curve", {"trial_types": [38, 31], "versions": [1]}, "s.zarr")
    assert err.value.field == "maze.subsets.curve_curve" and "[31]" in str(err.value)
    assert "(13, 0), (13, 1), (38, 0), (38, 1)" in str(err.value)
    with pytest.raises(InputError, match=r"selects 2 trial\(s\); need at least 5"):
        subset_mask(ds, "tiny", {"trial_types": [38], "versions": [0, 1]}, "s.zarr")
    with pytest.raises(InputError) as err:
        subset_mask(ds.drop_vars("trial_version"), "x", {"trial_types": [38], "versions": [0]}, "s.zarr")
    assert err.value.field == "trial_version" and "not a maze recording" in str(err.value)


def test_maze_config_helpers_fill_the_paper_settings_and_reject_bad_entries():
    cfg = _config(subsets={"straight": {"trial_types": [13, 29]}})
    prep = maze_preprocessing(cfg)
    assert (prep["bin_size_s"], prep["smoothing"]["sd_s"], prep["align_event"]) == (0.005, 0.05, "move_onset")
    assert (prep["window_start_bins"], prep["window_bins"]) == (-10, 100)  # -50 ... +450 ms
    assert prep["rewarded_only"] and prep["nan_policy"] == "error"  # the rest from `preprocessing`
    assert maze_subset(cfg, "straight") == {
        "name": "straight",
        "trial_types": [13, 29],
        "versions": [0, 1, 2],
        "description": "",
        "train_fraction": 0.8,
    }
    assert maze_method_params(cfg, "ner")["max_iterations"] == 5000  # the paper's maze runs
    assert maze_method_params(cfg, "ner")["batch_size"] == 512
    bad = _config(methods={"ner": {"max_iterationz": 5}})
    with pytest.raises(InputError) as err:
        maze_method_params(bad, "ner", "test.yaml")
    assert err.value.field == "maze.methods.ner.max_iterationz" and "unknown key" in err.value.problem
    with pytest.raises(InputError, match=r"maze.subsets.s.trial_types|'trial_types' is a required"):
        _config(subsets={"s": {"versions": [0]}})
    sheet = load_sheet(ROOT / "config/sessions.tsv")
    assert maze_sessions(load_config(ROOT / "config/config.yaml"), sheet) == ["SimJ-20090925"]  # the demo's one
    with pytest.raises(InputError, match=r"\[maze.sessions\]: session 'SimC-20150629' has task 'center_out'"):
        maze_sessions(_config(sessions=["SimC-20150629"]), sheet, "test.yaml")


# ------------------------------------------------------------------------------------ separation
def test_separation_is_high_for_separated_and_at_chance_for_identical_conditions():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 50)
    conditions = np.repeat(["38/0", "38/1", "13/0"], 12)
    straight = np.array([c.endswith("/0") for c in conditions])
    centres = {"38/0": (1.0, 0.0), "38/1": (-1.0, 0.0), "13/0": (0.0, 1.0)}
    paths = np.stack([np.stack([centres[c][0] * t, centres[c][1] * t, t], axis=1) for c in conditions])
    separated = separation(paths + rng.normal(0, 0.05, paths.shape), conditions, straight, seed=0)
    assert separated["condition_accuracy"] == 1.0 and separated["straight_curved_accuracy"] == 1.0
    assert separated["distance_ratio"] > 5 and separated["chance_accuracy"] == pytest.approx(1 / 3)
    same = np.broadcast_to(np.stack([t, t, t], axis=1), paths.shape) + rng.normal(0, 0.3, paths.shape)
    mixed = separation(same, conditions, straight, seed=0)
    assert mixed["condition_accuracy"] < 0.6 and mixed["distance_ratio"] < 0.5
    only_straight = separation(paths[straight], conditions[straight], straight[straight])
    assert np.isnan(only_straight["straight_curved_accuracy"]) and only_straight["condition_accuracy"] == 1.0


def test_simulated_maze_trial_types_are_checked(tmp_path):
    from pipeline.simulate import simulate_session

    kwargs = dict(
        session_id="SimJ-1",
        subject="SimJ",
        date="2009-09-18",
        hemisphere="left",
        task="maze",
        areas=["M1", "PMd"],
        seed=0,
    )
    for params, words in [
        ({"trial_types": [13, 13, 29, 17, 38, 6]}, "has non-unique elements"),
        ({"n_conditions": 7, "n_trials": 30}, "6 trial types for n_conditions = 7"),
    ]:
        with pytest.raises(InputError) as err:
            simulate_session(tmp_path / "m.nwb", tmp_path / "t.npz", params={"maze": params}, **kwargs)
        assert err.value.field == "params.maze.trial_types" and words in str(err.value)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------ a simulated maze session
@pytest.fixture(scope="module")
def maze_prepared(tmp_path_factory):
    """A simulated maze session (NLB layout) through ingest and prepare at the paper's maze settings."""
    from pipeline.simulate import simulate_session

    folder = tmp_path_factory.mktemp("maze")
    simulate_session(
        folder / "maze.nwb",
        folder / "truth.npz",
        session_id="SimJ-1",
        subject="SimJ",
        date="2009-09-18",
        hemisphere="left",
        task="maze",
        areas=["M1", "PMd"],
        seed=3,
        params={"maze": {"n_trials": 90, "units": {"M1": 20, "PMd": 16}}},
    )
    ingest(folder / "maze.nwb", folder / "ingest.zarr", fmt="nwb", areas=["M1", "PMd"], session="SimJ-1")
    cfg = _config()
    prepare(
        folder / "ingest.zarr",
        folder / "prepared.zarr",
        session=MAZE_ROW,
        preprocessing=maze_preprocessing(cfg),
        threads=2,
    )
    return folder


def test_maze_store_has_the_paper_window_and_velocity_labels(maze_prepared):
    ds = open_store(maze_prepared / "prepared.zarr", layout="prepared")
    assert ds.attrs["bin_size_s"] == 0.005 and ds.attrs["smoothing_sd_s"] == 0.05 and ds.attrs["has_behavior"]
    assert ds.sizes["bin"] == 100 and ds.sizes["unit"] == 36
    np.testing.assert_allclose(ds["bin_time"].values[[0, -1]], [-0.05, 0.445], atol=1e-12)
    assert set(ds["trial_type"].values) == {13, 29, 17, 38, 6, 18}  # the paper's straight-set mazes
    assert (ds["straight"].values == (ds["trial_version"].values == 0)).all()
    labels = movement_labels(ds, **LABELS)
    np.testing.assert_array_equal(labels[..., :2], ds["velocity"].values.astype(np.float64))  # (vx, vy, 0)
    assert (labels[..., 2] == 0).all()
    # the hand moves after movement onset: speed at +200 ms far above speed at -50 ms
    speed = np.linalg.norm(ds["velocity"].values, axis=-1).mean(axis=0)
    assert speed[50] > 5 * speed[0]


def test_ner_trains_on_one_subset_with_areas_pooled_and_is_scored(maze_prepared):
    cfg = _config(subsets={"sc": {"trial_types": [13, 38, 18], "versions": [0, 1]}})
    spec = maze_subset(cfg, "sc")
    emb_path, model = maze_prepared / "ner_sc.zarr", maze_prepared / "ner_sc_model"
    params = dict(maze_method_params(cfg, "ner"), max_iterations=60, batch_size=256, verbose=False)
    emb = train_embedding(
        maze_prepared / "prepared.zarr",
        emb_path,
        model,
        method="ner",
        params=params,
        area=["M1", "PMd"],
        seed=0,
        labels=LABELS,
        device=CPU,
        subset=spec,
    )
    ds = open_store(maze_prepared / "prepared.zarr")
    chosen = np.isin(ds["trial_type"].values, [13, 38, 18]) & np.isin(ds["trial_version"].values, [0, 1])
    assert emb["trial"].values.tolist() == ds["trial"].values[chosen].tolist()
    assert emb.attrs["area"] == "M1+PMd" and emb.attrs["n_units"] == 36 and emb.attrs["subset"] == "sc"
    assert int((emb["split"].values == "train").sum()) == int(0.8 * chosen.sum())
    table = subset_table(emb_path, maze_prepared / "prepared.zarr")
    got = {(r.evaluation, r.target, r.metric) for r in table.itertuples()}
    assert {
        ("in_sample", "velocity", "r2"),
        ("in_sample", "position", "r2"),
        ("held_out", "velocity", "r2"),
        ("held_out", "velocity", "r2_swapped"),
        ("held_out", "position", "r2"),
        ("cross_validated", "separation", "condition_accuracy"),
        ("cross_validated", "separation", "straight_curved_accuracy"),
        ("cross_validated", "separation", "distance_ratio"),
    } <= got
    assert (table.n_conditions == 6).all() and (table.session == "SimJ-1").all()
    assert np.isfinite(table.value).all()
    in_sample = table[(table.evaluation == "in_sample") & (table.target == "velocity")].value.item()
    assert in_sample > 0.2  # 60 iterations already encode part of the simulated velocity


# -------------------------------------------------------------- the real MC_Maze_Small test split
@pytest.fixture(scope="module")
def maze_test_split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mc_maze_test")
    ingest(
        MAZE_TEST_NWB,
        folder / "ingest.zarr",
        fmt="nwb",
        areas=["M1", "PMd"],
        session="Jenkins-test",
        reader_options={"require_behavior": False},
    )
    row = dict(MAZE_ROW, session_id="Jenkins-test", subject="Jenkins", date="2009-09-28")
    prepare(
        folder / "ingest.zarr",
        folder / "prepared.zarr",
        session=row,
        preprocessing=maze_preprocessing(_config()),
        threads=2,
    )
    return folder


@requires_real
def test_mc_maze_test_split_without_behaviour_goes_through_ingest_and_prepare(maze_test_split):
    ds = open_store(maze_test_split / "prepared.zarr", layout="prepared")
    assert not ds.attrs["has_behavior"] and np.isnan(ds["velocity"].values).all()
    # 100 trials of 0.7 s with movement onset 0.25 s after the start: -50 ... +450 ms fits every one
    assert ds.sizes["trial"] == 100 and ds.sizes["bin"] == 100 and ds.sizes["unit"] == 107
    assert sorted(set(as_object_strings(ds["area"].values))) == ["M1", "PMd"]
    assert ds["rates"].values.sum() > 0 and np.isfinite(ds["rates"].values).all()


@requires_real
@pytest.mark.parametrize("method", ["ner", "cebra"])
def test_labelled_methods_stop_with_behaviour_missing_on_the_test_split(maze_test_split, method):
    out = maze_test_split / f"{method}.zarr"
    with pytest.raises(InputError) as err:
        train_embedding(
            maze_test_split / "prepared.zarr",
            out,
            maze_test_split / f"{method}_model",
            method=method,
            params={"max_iterations": 5},
            area=["M1", "PMd"],
            seed=0,
            labels=LABELS,
            device=CPU,
        )
    assert err.value.source.endswith("sub-Jenkins_ses-small_desc-test_ecephys.nwb")
    assert err.value.field == "processing/behavior" and "behaviour missing" in str(err.value)
    assert not out.exists() and not (maze_test_split / f"{method}_model").exists()
    assert not list(maze_test_split.glob(f".{method}*"))


@requires_real
def test_unsupervised_methods_run_on_the_test_split(maze_test_split):
    """The training stage in process (the workflow test below runs it from a sheet row, both areas). PCA
    stands for the unsupervised methods: UMAP's fit takes no labels either (tests/realdata/test_peer_methods.py)."""
    emb = train_embedding(
        maze_test_split / "prepared.zarr",
        maze_test_split / "pca.zarr",
        maze_test_split / "pca_model",
        method="pca",
        params={},
        area="M1",
        seed=0,
        labels=LABELS,
        device=CPU,
    )
    assert emb["latent"].shape == (100, 100, 3) and np.isfinite(emb["latent"].values).all()
    assert emb.attrs["n_units"] == 55  # the 2xxx (M1) units of the file


@requires_real
def test_the_test_split_has_no_maze_conditions_for_subsets(maze_test_split):
    spec = {"name": "straight", "trial_types": [13], "versions": [0], "train_fraction": 0.8}
    with pytest.raises(InputError) as err:
        train_embedding(
            maze_test_split / "prepared.zarr",
            maze_test_split / "s.zarr",
            maze_test_split / "s_model",
            method="pca",
            params={},
            area=["M1", "PMd"],
            seed=0,
            labels=LABELS,
            device=CPU,
            subset=spec,
        )
    assert err.value.field == "trial_type" and "test splits do not" in str(err.value)


@requires_real
@pytest.mark.slow
def test_workflow_runs_unsupervised_methods_on_the_test_split_and_stops_ner(workflow_copy):
    """The real test NWB as a lab's sheet row: ingest, prepare and PCA on both areas run; NER fails clearly
    (only PCA: every workflow job costs seconds of start-up; the in-process test above says why PCA)."""
    work = workflow_copy
    (work / "config/mc_maze_test.tsv").write_text(
        "session_id\tsubject\tdate\themisphere\ttask\tformat\tpath\tareas\talign_event\twindow_start_bins\twindow_bins\n"
        f"Jenkins-20090928\tJenkins\t2009-09-28\tleft\tmaze\tnwb\t{MAZE_TEST_NWB}\tM1,PMd\tmove_onset\t-2\t17\n"
    )
    (work / "config/mc_maze_test.yaml").write_text(
        "sessions: config/mc_maze_test.tsv\ndata_dir: /\nsimulation: {enabled: false}\n"
        "methods: {ner: {enabled: true, params: {max_iterations: 5}}, pca: {enabled: true, areas: null}}\n"
        "maze: {enabled: false}\n"
    )
    config = ("--configfile", "config/config.yaml", "config/mc_maze_test.yaml")
    ok = [f"results/embeddings/pca/Jenkins-20090928/{a}/seed0.zarr" for a in ("M1", "PMd")]
    snakemake(*ok, "--cores", "2", *config, cwd=work, timeout=900)
    for target in ok:
        emb = open_store(work / target, layout="embedding")
        assert emb["latent"].shape == (100, 17, 3)  # the sheet's 17-bin window
        assert np.isfinite(emb["latent"].values).all()
        assert emb.attrs["n_units"] == (55 if "/M1/" in target else 52)
    ner = "results/embeddings/ner/Jenkins-20090928/M1/seed0.zarr"
    failed = snakemake(ner, "--cores", "2", *config, cwd=work, check=False)
    assert failed.returncode != 0 and not (work / ner).exists()
    log = (work / "logs/train/ner/Jenkins-20090928/M1/seed0.log").read_text()
    assert "[processing/behavior]: behaviour missing: ner learns from movement labels" in log
    assert "sub-Jenkins_ses-small_desc-test_ecephys.nwb" in log

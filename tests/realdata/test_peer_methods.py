"""Peer embedding methods (CEBRA, PCA, UMAP with and without labels, dPCA): the estimators, seeding,
checkpoints, and held-out decoding on the real Chewie 2016-10-07 M1 session next to NER."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from pipeline.data.origin import sha256_file
from pipeline.embed.methods.base import NotFittedError
from pipeline.embed.methods.cebra import CEBRA, CEBRA16D, SEEDING
from pipeline.embed.methods.dpca import DPCA
from pipeline.embed.methods.pca import PCA
from pipeline.embed.methods.umap import UMAP, UMAPLabels
from pipeline.errors import InputError
from tests.support.paths import requires_real


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: faster than two on a shared 2-core machine; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _toy(n_trials=32, n_bins=20, n_units=12, seed=0):
    """Units tuned to velocity; 8 directions cycling over trials; labels (10 vx, 10 vy, direction)."""
    rng = np.random.default_rng(seed)
    direction = 45.0 * (np.arange(n_trials) % 8)
    speed = np.sin(np.linspace(0, np.pi, n_bins))
    theta = np.deg2rad(direction)[:, None]
    vel = np.stack([speed * np.cos(theta), speed * np.sin(theta)], -1) * 20  # (trial, bin, 2)
    tuning = rng.normal(size=(2, n_units))
    x = np.maximum(vel @ tuning / 10 + 2 + rng.normal(0, 0.3, (n_trials, n_bins, n_units)), 0)
    y = np.concatenate([10 * vel, np.broadcast_to(direction[:, None, None], (n_trials, n_bins, 1))], -1)
    return x.reshape(-1, n_units).astype(np.float32), y.reshape(-1, 3), [n_bins] * n_trials


def _velocity_r2(z_train, y_train, z_test, y_test):
    """Held-out velocity R^2 of a linear decoder fitted on the training embedding (truth first)."""
    reg = LinearRegression().fit(z_train, y_train[:, :2])
    return r2_score(y_test[:, :2], reg.predict(z_test))


def _corrupt_and_expect_error(cls, folder, payload):
    raw = (folder / payload).read_bytes()
    (folder / payload).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=re.escape(payload) + ".*corrupted or was modified"):
        cls.load(folder)


# ---------------------------------------------------------------------------------------- unit tests
def test_constructors_store_the_paper_defaults():
    assert CEBRA().get_params() == {
        "model_architecture": "offset1-model",
        "num_hidden_units": 32,
        "output_dimension": 3,
        "batch_size": 512,
        "learning_rate": 1e-4,
        "temperature": 1.0,
        "max_iterations": 20000,
        "distance": "cosine",
        "conditional": "time_delta",
        "time_offsets": 1,
        "seed": 0,
        "device": "cpu",
        "verbose": False,
    }
    assert CEBRA16D().output_dimension == 16 and CEBRA16D(seed=4).get_params()["seed"] == 4
    assert UMAP().get_params() == {
        "n_neighbors": 68,
        "min_dist": 0.2475,
        "n_components": 2,
        "metric": "euclidean",
        "protocol": "paper",
        "n_epochs": None,
        "seed": 0,
    }
    assert UMAPLabels().get_params()["label_column"] == 2
    assert DPCA().get_params() == {"n_components": 3, "regularizer": "auto", "direction_column": 2, "seed": 0}
    assert PCA().get_params() == {"n_components": 3, "seed": 0}
    names = {cls.name for cls in (CEBRA, CEBRA16D, PCA, UMAP, UMAPLabels, DPCA)}
    assert names == {"cebra", "cebra16d", "pca", "umap", "umap_labels", "dpca"}
    assert CEBRA.trainable_on_gpu and not (PCA.trainable_on_gpu or UMAP.trainable_on_gpu or DPCA.trainable_on_gpu)
    assert UMAPLabels.uses_labels_at_transform and not UMAP.uses_labels_at_transform
    for cls in (CEBRA, PCA, UMAP, DPCA):
        with pytest.raises(NotFittedError):
            cls().transform(np.zeros((3, 4)))


def test_cebra_seeds_weights_and_sampler_and_reloads_identically(tmp_path):
    x, y, _ = _toy()
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    a = CEBRA(max_iterations=20, batch_size=64, seed=5).fit(x, y)
    b = CEBRA(max_iterations=20, batch_size=64, seed=5).fit(x, y)
    c = CEBRA(max_iterations=20, batch_size=64, seed=6).fit(x, y)
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # global RNGs restored
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)
    z = a.transform(x)
    assert z.dtype == np.float32 and z.shape == (len(x), 3)
    np.testing.assert_array_equal(z, b.transform(x))
    assert np.abs(z - c.transform(x)).max() > 1e-3
    np.testing.assert_array_equal(z, a.estimator_.transform(x))  # same as cebra's own transform
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)  # cosine model: unit sphere
    assert a.loss_.shape == (20,) and np.isfinite(a.loss_).all()
    assert set(a.seeding_["sampler_seeds"]) == {"distribution", "distribution.prior"}

    folder = a.save(tmp_path / "ckpt", extra={"session": "toy"})
    assert sorted(p.name for p in folder.iterdir()) == ["loss.npy", "model.json", "model.pt"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["method"] == "cebra" and meta["model"]["architecture"] == "offset1-model"
    assert meta["seeding"]["not_seedable"] == SEEDING["not_seedable"] and meta["extra"]["session"] == "toy"
    again = CEBRA.load(folder)
    np.testing.assert_array_equal(again.transform(x), z)
    np.testing.assert_array_equal(again.loss_, a.loss_)
    assert again.get_params() == a.get_params()
    _corrupt_and_expect_error(CEBRA, folder, "model.pt")
    with pytest.raises(InputError, match="checkpoint of method 'cebra', expected 'cebra16d'"):
        CEBRA16D.load(folder)

    wide = CEBRA16D(max_iterations=3, batch_size=32).fit(x, y)
    assert wide.transform(x).shape == (len(x), 16)
    assert CEBRA16D.load(wide.save(tmp_path / "wide")).transform(x).shape == (len(x), 16)
    with pytest.raises(ValueError, match="context of 10 bins"):
        CEBRA(model_architecture="offset10-model", max_iterations=1).fit(x, y)
    with pytest.raises(ValueError, match="labels y are required"):
        CEBRA(max_iterations=1).fit(x)


def test_pca_projects_and_reloads_identically(tmp_path):
    x, y, lengths = _toy()
    model = PCA().fit(x, y, lengths=lengths)
    z = model.transform(x)
    assert z.dtype == np.float32 and z.shape == (len(x), 3)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)  # centred with the training mean
    assert np.all(np.diff(z.var(0)) <= 0) and model.explained_variance_ratio_.sum() <= 1
    folder = model.save(tmp_path / "pca")
    np.testing.assert_array_equal(PCA.load(folder).transform(x), z)
    _corrupt_and_expect_error(PCA, folder, "pca.npz")
    with pytest.raises(ValueError, match="n_components=20"):
        PCA(n_components=20).fit(x)


def test_dpca_needs_trials_and_directions_to_fit_but_not_to_transform(tmp_path):
    x, y, lengths = _toy()
    model = DPCA(seed=1).fit(x, y, lengths=lengths)
    z = model.transform(x)  # single bins, no labels
    assert z.dtype == np.float32 and z.shape == (len(x), 3)
    assert model.trials_per_direction_ == 4 and list(model.directions_) == [45.0 * k for k in range(8)]
    assert model.regularizer_ > 0 and set(model.explained_variance_ratio_) == {"s", "t", "st"}
    np.testing.assert_array_equal(DPCA(seed=1).fit(x, y, lengths=lengths).transform(x), z)
    # the direction components separate the directions: trial averages differ between directions
    means = z.reshape(32, 20, 3).mean(1)
    assert np.linalg.norm(means[0] - means[4]) > 0.5
    folder = model.save(tmp_path / "dpca")
    np.testing.assert_array_equal(DPCA.load(folder).transform(x), z)
    _corrupt_and_expect_error(DPCA, folder, "dpca.npz")
    with pytest.raises(ValueError, match="pass lengths"):
        DPCA().fit(x, y)
    with pytest.raises(ValueError, match="equal length"):
        DPCA().fit(x, y, lengths=[10, 30] + lengths[2:])
    moving = y.copy()
    moving[3, 2] = 90.0
    with pytest.raises(ValueError, match="constant within each trial"):
        DPCA().fit(x, moving, lengths=lengths)
    with pytest.raises(ValueError, match="at least 2 trials"):
        DPCA().fit(x[:160], y[:160], lengths=lengths[:8])


def test_umap_protocols_training_bins_and_checkpoints(tmp_path):
    x, y, _ = _toy()
    x_new, y_new, _ = _toy(n_trials=16, seed=1)
    both = np.concatenate([x, x_new])

    paper = UMAP(n_neighbors=15, seed=0).fit(x)
    z = paper.transform(both)
    assert z.dtype == np.float32 and z.shape == (len(both), 2)
    np.testing.assert_array_equal(z[: len(x)], paper.embedding_)  # training bins keep their embedding
    separate = UMAP(n_neighbors=15, seed=0).fit(x_new).embedding_
    np.testing.assert_array_equal(z[len(x) :], separate)  # new bins: a separate fit_transform (the paper)
    folder = paper.save(tmp_path / "paper")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["protocol"]["name"] == "paper" and not meta["fit"]["supervised"]
    np.testing.assert_array_equal(UMAP.load(folder).transform(both), z)
    _corrupt_and_expect_error(UMAP, folder, "umap.npz")

    labels = UMAPLabels(n_neighbors=15, seed=0).fit(x, y)
    with pytest.raises(ValueError, match="needs the labels y"):
        labels.transform(x_new)
    np.testing.assert_array_equal(labels.transform(x), labels.embedding_)  # training bins need no labels
    assert labels.transform(x_new, y=y_new).shape == (len(x_new), 2)
    with pytest.raises(ValueError, match="needs the labels y"):
        UMAPLabels().fit(x)

    proper = UMAPLabels(n_neighbors=15, protocol="transform", seed=0).fit(x, y)
    z = proper.transform(both)  # labels are not needed to transform
    np.testing.assert_array_equal(z[len(x) :], proper.reducer_.transform(x_new))
    folder = proper.save(tmp_path / "transform")
    assert json.loads((folder / "model.json").read_text())["protocol"]["name"] == "transform"
    np.testing.assert_array_equal(UMAPLabels.load(folder).transform(both), z)
    # a stored embedding that a refit does not reproduce is refused (checksum updated to get there)
    with np.load(folder / "umap.npz") as data:
        arrays = dict(data)
    arrays["embedding"] = arrays["embedding"] + 1
    np.savez(folder / "umap.npz", **arrays)
    meta = json.loads((folder / "model.json").read_text())
    meta["files"]["umap.npz"] = sha256_file(folder / "umap.npz")
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="did not reproduce the stored embedding"):
        UMAPLabels.load(folder)
    with pytest.raises(ValueError, match="protocol must be one of"):
        UMAP(protocol="refit").fit(x)


# ---------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def chewie(chewie_prepared):
    """Chewie 2016-10-07 M1: bins of all trials, labels, training mask per bin, trial length."""
    from pipeline.data.store import as_object_strings, open_store
    from pipeline.embed.fit import area_inputs
    from pipeline.preprocess.labels import movement_labels

    ds = open_store(chewie_prepared, layout="prepared")
    rates = area_inputs(ds, "M1")
    labels = movement_labels(ds)
    train = as_object_strings(ds["split"].values) == "train"
    n_trials, n_bins, n_units = rates.shape
    assert (n_trials, n_bins, n_units) == (168, 40, 70)
    return {
        "x": rates.reshape(-1, n_units),
        "y": labels.reshape(-1, 3),
        "n_bins": n_bins,
        "train_bins": np.repeat(train, n_bins),
        "n_train": int(train.sum()),
        "n_trials": n_trials,
    }


def _fit_embed(model, data):
    """Fit on the training trials, embed every trial (the training stage's calls); (train, test) embeddings."""
    x, y, tr = data["x"], data["y"], data["train_bins"]
    model.fit(x[tr], y[tr], lengths=[data["n_bins"]] * data["n_train"])
    z = model.transform(x, y=y if model.uses_labels_at_transform else None, lengths=[data["n_bins"]] * data["n_trials"])
    assert z.dtype == np.float32 and z.ndim == 2 and z.shape[0] == len(x)
    return z[tr], z[~tr]


def _report(name, data, z_train, z_test, note=""):
    tr = data["train_bins"]
    score = _velocity_r2(z_train, data["y"][tr], z_test, data["y"][~tr])
    print(f"\n[Chewie 2016-10-07 M1] {name}{note}: held-out velocity R2 = {score:.3f}")
    return score


@requires_real
def test_linear_peers_on_real_chewie(chewie, tmp_path):
    tr = chewie["train_bins"]
    for cls in (PCA, DPCA):
        model = cls(seed=0)
        z_train, z_test = _fit_embed(model, chewie)
        assert z_train.shape == (tr.sum(), 3) and z_test.shape == ((~tr).sum(), 3)
        assert z_train.dtype == z_test.dtype == np.float32
        _report(cls.name, chewie, z_train, z_test)
        again = cls.load(model.save(tmp_path / cls.name, extra={"session": "Chewie-20161007"}))
        np.testing.assert_array_equal(again.transform(chewie["x"][~tr]), z_test)
    assert model.trials_per_direction_ == 14 and model.regularizer_ > 0  # dPCA: 8 directions x 14 trials


@requires_real
def test_umap_on_real_chewie_paper_protocol_is_at_chance_on_test(chewie):
    """The two protocols on real data. Their checkpoints (reload, seeded refit of the test bins, refusal of
    an embedding a refit does not reproduce) are proven on the toy data of the test above."""
    tr = chewie["train_bins"]
    paper = UMAP(seed=0, n_epochs=200)  # 200 layout epochs instead of 500: the properties hold, 2x faster
    z_train, z_test = _fit_embed(paper, chewie)
    assert z_train.shape == (tr.sum(), 2) and z_test.shape == ((~tr).sum(), 2)
    np.testing.assert_array_equal(z_train, paper.embedding_)
    score = _report("umap", chewie, z_train, z_test, " (protocol 'paper': test bins refitted)")
    assert score < 0.1  # separate coordinates: a decoder from the training embedding is at chance

    proper = UMAPLabels(protocol="transform", seed=0, n_epochs=200)
    z_train, z_test = _fit_embed(proper, chewie)
    assert z_train.shape == (tr.sum(), 2) and z_test.shape == ((~tr).sum(), 2)
    # embedded into the training coordinates, held-out bins decode (0.225 at 500 epochs, README)
    assert _report("umap_labels", chewie, z_train, z_test, " (protocol 'transform')") > score + 0.2


@requires_real
def test_cebra_3d_decodes_held_out_velocity_far_worse_than_ner(chewie, chewie_ner, tmp_path):
    """Same small budget for both (2 000 iterations, the paper's other settings): NER >> CEBRA-3D. NER is
    conftest's ``chewie_ner`` (the training stage on the same bins), shared with tests/realdata/test_ner.py."""
    from pipeline.data.store import open_store

    tr = chewie["train_bins"]
    latent = open_store(chewie_ner[0], layout="embedding")["latent"].values
    z = latent.reshape(-1, latent.shape[-1])
    scores = {"ner": _report("ner", chewie, z[tr], z[~tr], " (2000 iterations, training stage)")}
    model = CEBRA(max_iterations=2000, seed=0)
    start = time.perf_counter()
    z_train, z_test = _fit_embed(model, chewie)
    assert z_train.shape == (tr.sum(), 3) and z_test.shape == ((~tr).sum(), 3)
    scores["cebra"] = _report(
        "cebra", chewie, z_train, z_test, f" (2000 iterations, {time.perf_counter() - start:.0f} s)"
    )
    assert scores["ner"] > scores["cebra"] + 0.2
    folder = model.save(tmp_path / "cebra", extra={"session": "Chewie-20161007"})
    again = CEBRA.load(folder)
    np.testing.assert_array_equal(again.transform(chewie["x"][~tr]), z_test)
    _corrupt_and_expect_error(CEBRA, folder, "loss.npy")

    wide = CEBRA16D(max_iterations=200, seed=0)
    z_train, z_test = _fit_embed(wide, chewie)
    assert z_train.shape == (tr.sum(), 16) and z_test.dtype == np.float32
    _report("cebra16d", chewie, z_train, z_test, " (200 iterations only; shape check)")

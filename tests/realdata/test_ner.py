"""NER end to end: the estimator, seeding, checkpoints, the training stage, and decoding quality on
the real Chewie 2016-10-07 M1 session (the paper's own preprocessed file, through our readers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from pipeline.data.store import open_store, validate_embedding
from pipeline.embed.methods import build_method, get_method, method_names
from pipeline.embed.methods.base import NotFittedError, seed_streams
from pipeline.embed.methods.ner import NER
from pipeline.errors import InputError
from tests.support.paths import requires_real

DEVICE_CPU = {"prefer": "cpu", "allow_cpu": True, "wait_s": 0}
LABELS = {"velocity_scale": 10.0, "use_direction": True, "maze_velocity_scale": 1.0}


def _toy(n_trials=30, n_bins=20, n_units=12, seed=0):
    """Units tuned to a rotating velocity; labels (10 vx, 10 vy, direction)."""
    rng = np.random.default_rng(seed)
    direction = 45.0 * rng.integers(0, 8, n_trials)
    speed = np.sin(np.linspace(0, np.pi, n_bins))
    theta = np.deg2rad(direction)[:, None]
    vel = np.stack([speed * np.cos(theta), speed * np.sin(theta)], -1) * 20  # (trial, bin, 2)
    tuning = rng.normal(size=(2, n_units))
    x = np.maximum(vel @ tuning / 10 + 2 + rng.normal(0, 0.3, (n_trials, n_bins, n_units)), 0)
    y = np.concatenate([10 * vel, np.broadcast_to(direction[:, None, None], (n_trials, n_bins, 1))], -1)
    return x.reshape(-1, n_units).astype(np.float32), y.reshape(-1, 3)


def test_registry_lists_methods_and_rejects_unknown_names():
    assert "ner" in method_names() and get_method("ner") is NER
    with pytest.raises(ValueError, match="unknown method 'tsne'; registered methods: .*ner"):
        build_method("tsne")


def test_params_are_only_stored_and_round_trip():
    model = NER(max_iterations=7, seed=3, search_columns=(0, 1, 2))
    params = model.get_params()
    assert params["max_iterations"] == 7 and params["seed"] == 3 and params["search_columns"] == (0, 1, 2)
    assert NER(**params).get_params() == params
    assert "max_iterations=7" in repr(model)
    with pytest.raises(NotFittedError):
        model.transform(np.zeros((3, 4)))


def test_seed_streams_are_distinct_and_stable():
    a, b = seed_streams(0)
    assert a != b and seed_streams(0) == [a, b] and seed_streams(1) != [a, b]
    with pytest.raises(ValueError):
        seed_streams(-1)


def test_same_seed_identical_embeddings_different_seed_differs():
    x, y = _toy()
    state = torch.random.get_rng_state()
    z1 = NER(max_iterations=25, batch_size=64, seed=5).fit(x, y).transform(x)
    z2 = NER(max_iterations=25, batch_size=64, seed=5).fit(x, y).transform(x)
    z3 = NER(max_iterations=25, batch_size=64, seed=6).fit(x, y).transform(x)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is never touched
    np.testing.assert_array_equal(z1, z2)
    assert np.abs(z1 - z3).max() > 1e-3
    assert z1.dtype == np.float32 and z1.shape == (len(x), 3)
    np.testing.assert_allclose(np.linalg.norm(z1, axis=1), 1.0, rtol=1e-5)  # on the unit sphere


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_the_batch_thread_trains_exactly_like_drawing_in_the_loop(precision):
    """train_rank prepares indices and label structures in a background thread, two batches ahead;
    the loss history and weights equal a plain loop that draws and computes everything in turn,
    and the torch thread count is restored afterwards."""
    from pipeline.embed.nn.losses import RankLoss
    from pipeline.embed.nn.sampling import TimeDeltaSampler
    from pipeline.embed.nn.solver import train_rank

    x, y = _toy()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = NER(precision=precision)

    def fresh():
        return model._build_encoder(x.shape[1], 11), TimeDeltaSampler(y, generator=torch.Generator().manual_seed(12))

    threads = torch.get_num_threads()
    encoder, sampler = fresh()
    loss_fn = RankLoss(precision=precision)
    history = train_rank(encoder, xt, yt, sampler, iterations=12, batch_size=64, loss_fn=loss_fn, progress=False)
    assert torch.get_num_threads() == threads

    plain, sampler = fresh()
    optimizer = torch.optim.Adam(plain.parameters(), lr=1e-4, fused=True)
    losses = []
    for _ in range(12):
        ref, pos = sampler.sample(64)
        loss = loss_fn(plain(xt[torch.cat([ref, pos])]), structure=loss_fn.pair_structure(yt[ref]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    np.testing.assert_array_equal(history.loss, losses)
    for a, b in zip(encoder.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


def test_training_lowers_the_loss_and_offset10_trains_within_trials():
    x, y = _toy()
    model = NER(max_iterations=150, batch_size=128, learning_rate=3e-3, seed=0).fit(x, y)
    assert model.loss_.shape == (150,) and np.isfinite(model.loss_).all()
    assert model.loss_[-20:].mean() < model.loss_[:20].mean() - 0.02
    conv = NER(encoder="offset10", max_iterations=5, batch_size=32, seed=0).fit(x, y, lengths=[20] * 30)
    assert conv.transform(x, lengths=[20] * 30).shape == (len(x), 3)


def test_bad_inputs_are_rejected():
    x, y = _toy()
    with pytest.raises(ValueError, match="labels y are required"):
        NER(max_iterations=1).fit(x)
    with pytest.raises(ValueError, match="NaN"):
        NER(max_iterations=1).fit(np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), y)
    with pytest.raises(ValueError, match="bins"):
        NER(max_iterations=1).fit(x, y[:-1])
    model = NER(max_iterations=2, batch_size=16).fit(x, y)
    with pytest.raises(ValueError, match="fitted on 12"):
        model.transform(x[:, :5])


def test_checkpoint_reloads_identically_and_corruption_is_a_clear_error(tmp_path):
    x, y = _toy()
    model = NER(max_iterations=20, batch_size=64, seed=2).fit(x, y)
    folder = model.save(tmp_path / "ckpt", extra={"session": "toy"})
    assert sorted(p.name for p in folder.iterdir()) == ["loss.npy", "model.json", "model.pt"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["method"] == "ner" and meta["params"]["seed"] == 2 and meta["extra"]["session"] == "toy"
    assert meta["versions"]["torch"] == torch.__version__ and set(meta["files"]) == {"model.pt", "loss.npy"}
    again = NER.load(folder)
    np.testing.assert_array_equal(again.transform(x), model.transform(x))
    np.testing.assert_array_equal(again.loss_, model.loss_)
    assert again.get_params() == model.get_params()

    raw = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"model\.pt.*corrupted or was modified"):
        NER.load(folder)
    (folder / "model.pt").write_bytes(raw)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(InputError, match=r"model\.json.*not valid JSON"):
        NER.load(folder)
    with pytest.raises(InputError, match="sidecar not found"):
        NER.load(tmp_path / "nowhere")


def _position_r2(y_true, y_pred, n_bins):
    """The paper's position R^2: velocities integrated within each trial from the first bin."""

    def integrate(v):
        return np.cumsum(v.reshape(-1, n_bins, 2), axis=1).reshape(-1, 2)

    return r2_score(integrate(y_true), integrate(y_pred))


def _decode(store, prepared):
    """Linear velocity decoder fitted on the training bins of the embedding."""
    emb = open_store(store, layout="embedding")
    prep = open_store(prepared, layout="prepared")
    train = emb["split"].values == "train"
    z = emb["latent"].values
    v = 10 * prep["velocity"].values
    n_bins = z.shape[1]
    z_tr, z_te = z[train].reshape(-1, z.shape[-1]), z[~train].reshape(-1, z.shape[-1])
    v_tr, v_te = v[train].reshape(-1, 2), v[~train].reshape(-1, 2)
    reg = LinearRegression().fit(z_tr, v_tr)
    return {
        "velocity_train": r2_score(v_tr, reg.predict(z_tr)),
        "velocity_test": r2_score(v_te, reg.predict(z_te)),  # correct R^2: (truth, prediction)
        "position_train": _position_r2(v_tr, reg.predict(z_tr), n_bins),
        "position_test": _position_r2(v_te, reg.predict(z_te), n_bins),
    }


@requires_real
def test_ner_on_real_chewie_m1_decodes_held_out_velocity(chewie_prepared, chewie_ner):
    """The paper's settings (offset1, batch 512, lr 1e-4, tau 1) with 2 000 instead of 20 000 iterations
    (conftest's ``chewie_ner``, trained by the training stage)."""
    store, model_dir = chewie_ner
    emb = open_store(store, layout="embedding")
    validate_embedding(emb, store)
    assert dict(emb["latent"].sizes) == {"trial": 168, "bin": 40, "dim": 3}
    assert emb.attrs["n_units"] == 70 and emb.attrs["iterations"] == 2000 and emb.attrs["seed"] == 0
    assert json.loads(emb.attrs["device"])["device"] == "cpu" and emb.attrs["code_fingerprint"] == "fp"
    assert json.loads(emb.attrs["params"])["batch_size"] == 512
    scores = _decode(store, chewie_prepared)
    print("NER Chewie 2016-10-07 M1, 2000 iterations:", scores)
    assert scores["velocity_test"] >= 0.75
    assert scores["position_train"] >= 0.90
    # the checkpoint embeds the same bins identically
    prep = open_store(chewie_prepared, layout="prepared")
    m1 = prep["rates"].sel(unit=prep["area"] == "M1").values
    z = NER.load(model_dir).transform(m1.reshape(-1, m1.shape[-1]))
    np.testing.assert_array_equal(z.reshape(emb["latent"].shape), emb["latent"].values)


@requires_real
def test_ner_with_shuffled_labels_decodes_nothing(chewie_prepared, tmp_path):
    """Labels permuted across training bins: the embedding carries no held-out velocity. 300 iterations
    (measured held-out R² for seeds 0, 1, 2: -0.00, 0.05, 0.02; an untrained network: 0.08-0.13; the
    true labels after 2 000: 0.77, test above)."""
    from pipeline.embed.fit import area_inputs

    prep = open_store(chewie_prepared, layout="prepared")
    from pipeline.preprocess.labels import movement_labels

    x = area_inputs(prep, "M1")
    y = movement_labels(prep)
    train = prep["split"].values == "train"
    n_units, n_bins = x.shape[-1], x.shape[1]
    y_tr = y[train].reshape(-1, 3)
    shuffled = y_tr[np.random.default_rng(0).permutation(len(y_tr))]
    model = NER(max_iterations=300, seed=0).fit(x[train].reshape(-1, n_units), shuffled)
    z_tr = model.transform(x[train].reshape(-1, n_units))
    z_te = model.transform(x[~train].reshape(-1, n_units))
    reg = LinearRegression().fit(z_tr, y_tr[:, :2])
    held_out = r2_score(y[~train].reshape(-1, 3)[:, :2], reg.predict(z_te))
    print("shuffled-label NER held-out velocity R2:", held_out)
    assert held_out < 0.1
    assert n_bins == 40


@requires_real
def test_training_stage_rejects_a_missing_area_and_cpu_when_not_allowed(chewie_prepared, tmp_path):
    from pipeline.embed.device import DeviceUnavailable
    from pipeline.stages.rules.train import run as train_embedding

    store, model_dir = tmp_path / "emb.zarr", tmp_path / "model"
    with pytest.raises(InputError, match=r"prepared\.zarr \[area\]: no units of area 'S1'"):
        train_embedding(
            chewie_prepared,
            store,
            model_dir,
            method="ner",
            params={"max_iterations": 1},
            area="S1",
            seed=0,
            labels=LABELS,
            device=DEVICE_CPU,
        )
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailable, match="allow_cpu"):
            train_embedding(
                chewie_prepared,
                store,
                model_dir,
                method="ner",
                params={"max_iterations": 1},
                area="M1",
                seed=0,
                labels=LABELS,
                device={"prefer": "cuda", "allow_cpu": False},
            )
    with pytest.raises(ValueError, match="unknown method"):
        train_embedding(
            chewie_prepared,
            store,
            model_dir,
            method="nope",
            params={},
            area="M1",
            seed=0,
            labels=LABELS,
            device=DEVICE_CPU,
        )
    assert not store.exists() and not model_dir.exists()
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_the_cpu_closely():
    x, y = _toy()
    z_cpu = NER(max_iterations=30, batch_size=64, seed=1).fit(x, y).transform(x)
    z_gpu = NER(max_iterations=30, batch_size=64, seed=1, device="cuda").fit(x, y).transform(x)
    np.testing.assert_allclose(z_gpu, z_cpu, atol=1e-3)


def test_config_defaults_are_the_methods_own_defaults():
    """Every registered method has a config block whose parameter defaults equal its constructor's."""
    import inspect

    from pipeline.stages.config import validate_config

    config = validate_config({"sessions": "x", "data_dir": "y"})
    assert sorted(config["methods"]) == method_names()
    for name in method_names():
        cls = get_method(name)
        signature = inspect.signature(cls.__init__).parameters
        defaults = {k: p.default for k, p in signature.items() if k not in ("self", "seed", "device")}
        defaults.pop("verbose", None)  # the workflow turns progress bars on (they go to the job log)
        configured = config["methods"][name]["params"]
        configured = {k: v for k, v in configured.items() if k != "verbose"}
        assert set(configured) == set(defaults), name
        for key, value in configured.items():
            expected = list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key]
            assert value == expected, (name, key)


def test_gpu_methods_are_the_gpu_capable_classes():
    from pipeline.embed.methods import GPU_METHODS

    assert GPU_METHODS == {name for name in method_names() if get_method(name).trainable_on_gpu}

"""piVAE: the estimator, its Gaussian algebra, the volume-preserving GIN decoder, seeding,
checkpoints, the authors' protocol, and short trainings on the real Chewie 2016-10-07 M1 session."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from torch.distributions import Independent, Normal, kl_divergence

from pipeline.embed.methods.base import NotFittedError
from pipeline.embed.methods.pivae import (
    PROTOCOLS,
    AffineCoupling,
    GINDecoder,
    GINFlow,
    PiVAE,
    _context,
    _inside_trial,
    _mean_loss,
    _split_validation,
    _window_segments,
    gaussian_kl,
    gaussian_product,
)
from pipeline.errors import InputError
from tests.support.paths import requires_real

N_TRIALS, N_BINS, N_UNITS = 24, 20, 12
LENGTHS = [N_BINS] * N_TRIALS


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these tiny networks are fastest that way on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _toy(seed=0):
    """Poisson counts of units tuned to a reach velocity; labels (10 vx, 10 vy, direction)."""
    rng = np.random.default_rng(seed)
    direction = 45.0 * rng.integers(0, 8, N_TRIALS)
    speed = np.sin(np.linspace(0, np.pi, N_BINS))
    theta = np.deg2rad(direction)[:, None]
    vel = np.stack([speed * np.cos(theta), speed * np.sin(theta)], -1)  # (trial, bin, 2)
    rate = np.exp(vel @ rng.normal(size=(2, N_UNITS)) * 0.8)
    x = rng.poisson(rate).astype(np.float32).reshape(-1, N_UNITS)
    y = np.concatenate([10 * vel, np.broadcast_to(direction[:, None, None], (N_TRIALS, N_BINS, 1))], -1)
    return x, y.reshape(-1, 3)


def _fit(seed=0, **params):
    x, y = _toy()
    return PiVAE(**{"epochs": 2, "batch_size": 100, "seed": seed, **params}).fit(x, y, lengths=LENGTHS)


def test_class_attributes_and_params_are_only_stored():
    assert PiVAE.name == "pivae" and PiVAE.uses_labels_at_transform and PiVAE.trainable_on_gpu
    model = PiVAE(epochs=7, seed=3)
    params = model.get_params()
    assert params["epochs"] == 7 and params["seed"] == 3 and params["output_dimension"] == 3
    assert params["batch_size"] == 200 and params["learning_rate"] == 2.5e-4 and params["gen_nodes"] == 60
    assert PiVAE(**params).get_params() == params
    with pytest.raises(NotFittedError):
        model.transform(np.zeros((3, 4)), y=np.zeros((3, 3)))


def test_shapes_histories_and_validation_choice():
    x, y = _toy()
    model = _fit()
    z = model.transform(x, y=y, lengths=LENGTHS)
    assert z.shape == (len(x), 3) and z.dtype == np.float32 and np.isfinite(z).all()
    # 480 bins: 360 train bins in batches of 100 -> 4 iterations per epoch; 120 validation bins
    assert model.loss_.shape == (8,) and np.isfinite(model.loss_).all()
    assert model.val_loss_.shape == (2,) and model.best_epoch_ == 1 + int(np.argmin(model.val_loss_))
    assert model.training_seconds_ > 0 and model.n_features_in_ == N_UNITS and model.n_labels_in_ == 3
    full = PiVAE(epochs=2, batch_size=100, validation_fraction=0.0, output_dimension=2).fit(x, y)  # one sequence
    assert full.loss_.shape == (10,) and full.val_loss_.shape == (0,) and full.best_epoch_ == 2
    assert full.transform(x, y=y).shape == (len(x), 2)


def test_same_seed_identical_embeddings_different_seed_differs():
    x, y = _toy()
    state = torch.random.get_rng_state()
    z1 = _fit(seed=5).transform(x, y=y, lengths=LENGTHS)
    z2 = _fit(seed=5).transform(x, y=y, lengths=LENGTHS)
    z3 = _fit(seed=6).transform(x, y=y, lengths=LENGTHS)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is never touched
    np.testing.assert_array_equal(z1, z2)
    assert np.abs(z1 - z3).max() > 1e-3


def test_training_lowers_the_loss():
    model = _fit(epochs=15, learning_rate=3e-3)
    assert model.loss_[-8:].mean() < model.loss_[:8].mean() - 0.5
    assert model.val_loss_[-1] < model.val_loss_[0]


def test_windows_are_zero_padded_within_trials_and_validation_is_the_last_bins():
    x = torch.arange(1.0, 13.0)[:, None].repeat(1, 2)  # 12 bins, values 1..12
    lengths = [4, 8]
    context = _context(x, torch.arange(12), lengths, _inside_trial(lengths, x.device))
    assert context.shape == (12, 2, 10)
    # bin 1 (trial 0) sees t-5..t+4 = [-4..5] -> only bins 0..3 of its trial, zeros elsewhere
    np.testing.assert_array_equal(context[1, 0].numpy(), [0, 0, 0, 0, 1, 2, 3, 4, 0, 0])
    # bin 4 starts trial 1: nothing from trial 0
    np.testing.assert_array_equal(context[4, 0].numpy(), [0, 0, 0, 0, 0, 5, 6, 7, 8, 9])
    assert context[:, :, 5].equal(x)  # the centre bin is the bin itself
    assert _split_validation([20, 20, 20, 20], 30) == ([20, 20, 10], [10, 20])
    assert _split_validation([20, 20], 0) == ([20, 20], [])


def test_product_of_gaussians_matches_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    ma, mb = (
        torch.randn(50, 3, generator=gen, dtype=torch.float64),
        torch.randn(50, 3, generator=gen, dtype=torch.float64),
    )
    la, lb = (
        2 * torch.randn(50, 3, generator=gen, dtype=torch.float64),
        2 * torch.randn(50, 3, generator=gen, dtype=torch.float64),
    )
    mean, logvar = gaussian_product(ma, la, mb, lb)
    va, vb = la.exp(), lb.exp()
    var = 1 / (1 / va + 1 / vb)
    torch.testing.assert_close(logvar.exp(), var)
    torch.testing.assert_close(mean, var * (ma / va + mb / vb))
    # N(z; a) N(z; b) / N(z; product) does not depend on z
    ratios = []
    for z in torch.randn(5, 50, 3, generator=gen, dtype=torch.float64):
        log_ab = Normal(ma, (la / 2).exp()).log_prob(z) + Normal(mb, (lb / 2).exp()).log_prob(z)
        ratios.append(log_ab - Normal(mean, (logvar / 2).exp()).log_prob(z))
    for r in ratios[1:]:
        torch.testing.assert_close(r, ratios[0])


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    mq, mp, lq, lp = (torch.randn(40, 3, generator=gen, dtype=torch.float64) for _ in range(4))
    expected = kl_divergence(Independent(Normal(mq, (lq / 2).exp()), 1), Independent(Normal(mp, (lp / 2).exp()), 1))
    torch.testing.assert_close(gaussian_kl(mq, lq, mp, lp), expected)
    assert torch.all(gaussian_kl(mq, lq, mq, lq).abs() < 1e-12)


def _randomised(module, seed):
    """Weights large enough that the coupling scales are far from zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module.double()


@pytest.mark.parametrize("n_dims", [2, 5, 8])
def test_gin_flow_is_volume_preserving_and_invertible(n_dims):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(n_dims)
        coupling, flow = AffineCoupling(n_dims, 16), GINFlow(n_dims, 16, n_blk=2)
    coupling, flow = _randomised(coupling, 0), _randomised(flow, 1)
    x = torch.randn(4, n_dims, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    if n_dims > 2:  # the scales are not trivially zero
        assert coupling.scale_shift(x[:, : n_dims // 2])[0].abs().max() > 0.01
    for module in (coupling, flow):
        for row in x:
            jac = torch.autograd.functional.jacobian(lambda v: module(v[None])[0], row)
            sign, logabsdet = torch.linalg.slogdet(jac)
            assert sign != 0 and abs(float(logabsdet)) < 1e-8
        torch.testing.assert_close(module.inverse(module(x)), x)
        assert not torch.allclose(module(x), x)


def test_decoder_gives_positive_rates_and_needs_more_neurons_than_latents():
    decoder = GINDecoder(3, N_UNITS, 20, 2)
    assert (decoder(torch.randn(7, 3)) > 0).all()
    with pytest.raises(ValueError, match="more neurons"):
        GINDecoder(3, 3, 20, 2)


def test_bad_inputs_are_rejected():
    x, y = _toy()
    with pytest.raises(ValueError, match="labels y are required"):
        PiVAE(epochs=1).fit(x)
    with pytest.raises(ValueError, match="lengths must be positive integers summing"):
        PiVAE(epochs=1).fit(x, y, lengths=[7, 7])
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        PiVAE(epochs=0).fit(x, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        PiVAE(validation_fraction=1.0).fit(x, y)
    with pytest.raises(ValueError, match="more neurons"):
        PiVAE(epochs=1, output_dimension=N_UNITS).fit(x, y)
    model = _fit(epochs=1)
    with pytest.raises(ValueError, match="labels y are required"):
        model.transform(x)
    with pytest.raises(ValueError, match=f"fitted on {N_UNITS}"):
        model.transform(x[:, :5], y=y)
    with pytest.raises(ValueError, match="2 label columns but the model was fitted on 3"):
        model.transform(x, y=y[:, :2])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"protocol": "authors"}, "protocol must be one of ['ours', 'paper'], got 'authors'"),
        ({"protocol": None}, "protocol must be one of ['ours', 'paper'], got None"),
        ({"windows": "across"}, "windows must be one of ['within_trials', 'across_trials'] or None (the protocol's)"),
        ({"split": "sessions"}, "split must be one of ['bins', 'trials'] or None (the protocol's), got 'sessions'"),
        ({"reconstruct": 10}, "reconstruct must be one of ['centre_bin', 'window'] or None (the protocol's), got 10"),
        ({"standardize_labels": 1}, "standardize_labels must be one of [True, False] or None (the protocol's), got 1"),
        (
            {"protocol": "paper", "validation_fraction": 0.01},
            "split 'trials' holds out whole trials: validation_fraction 0.01 of 24 trial(s) is 0",
        ),
    ],
)
def test_bad_protocols_are_refused_in_one_line(params, message):
    x, y = _toy()
    with pytest.raises(ValueError) as err:
        PiVAE(epochs=1, **params).fit(x, y, lengths=LENGTHS)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="split 'trials' holds out whole trials.*of 1 trial"):
        PiVAE(epochs=1, protocol="paper").fit(x, y)  # no trial structure to hold trials out of


def test_paper_protocol_splits_whole_trials_decodes_the_window_and_reloads(tmp_path):
    x, y = _toy()
    model = _fit(protocol="paper")
    assert model.protocol_ == PROTOCOLS["paper"] and model.get_params()["protocol"] == "paper"
    # 24 trials: the last round(0.25 x 24) = 6 whole trials validate
    assert (model.n_train_bins_, model.n_validation_bins_) == (18 * N_BINS, 6 * N_BINS)
    assert model.network_.decoder.lift[-1].out_features == 10 * N_UNITS - 3  # the whole 10-bin window
    assert model.network_.decoder.lift[0].out_features == 10 * N_UNITS // 4  # gen_nodes is unused
    assert float(model.network_.prior.label_scale.min()) == 1.0  # raw labels
    ours = _fit()
    assert (ours.n_train_bins_, ours.n_validation_bins_) == (360, 120) and ours.protocol_ == PROTOCOLS["ours"]
    assert ours.network_.decoder.lift[-1].out_features == N_UNITS - 3
    # one component overridden: the others stay the protocol's
    mixed = _fit(windows="across_trials", epochs=1)
    assert mixed.protocol_ == {**PROTOCOLS["ours"], "windows": "across_trials"}
    again = PiVAE.load(model.save(tmp_path / "ckpt"))
    np.testing.assert_array_equal(again.transform(x, y=y, lengths=LENGTHS), model.transform(x, y=y, lengths=LENGTHS))
    assert (again.n_train_bins_, again.n_validation_bins_, again.protocol_) == (360, 120, PROTOCOLS["paper"])


def test_checkpoint_reloads_identically_and_corruption_is_a_clear_error(tmp_path):
    x, y = _toy()
    model = _fit(seed=2)
    folder = model.save(tmp_path / "ckpt", extra={"session": "toy"})
    assert sorted(p.name for p in folder.iterdir()) == ["loss.npy", "model.json", "model.pt", "val_loss.npy"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["method"] == "pivae" and meta["params"]["seed"] == 2 and meta["extra"]["session"] == "toy"
    assert meta["fit"]["best_epoch"] == model.best_epoch_ and meta["fit"]["n_labels_in"] == 3
    state = torch.random.get_rng_state()
    again = PiVAE.load(folder)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(again.transform(x, y=y, lengths=LENGTHS), model.transform(x, y=y, lengths=LENGTHS))
    np.testing.assert_array_equal(again.loss_, model.loss_)
    np.testing.assert_array_equal(again.val_loss_, model.val_loss_)
    assert again.get_params() == model.get_params() and again.best_epoch_ == model.best_epoch_

    raw = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"model\.pt.*corrupted or was modified"):
        PiVAE.load(folder)
    (folder / "model.pt").write_bytes(raw)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(InputError, match=r"model\.json.*not valid JSON"):
        PiVAE.load(folder)
    with pytest.raises(InputError, match="sidecar not found"):
        PiVAE.load(tmp_path / "nowhere")


def test_weights_of_another_architecture_are_an_input_error(tmp_path):
    model = _fit()
    folder = model.save(tmp_path / "ckpt")
    meta = json.loads((folder / "model.json").read_text())
    meta["params"]["gen_nodes"] = 30  # the recorded architecture no longer matches model.pt
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="weights do not load"):
        PiVAE.load(folder)


@requires_real
def test_pivae_on_real_chewie_m1_decodes_velocity(chewie_prepared):
    """A short training (8 of the 50 epochs) on the training trials; linear decoder train -> test."""
    from pipeline.data.store import open_store
    from pipeline.embed.fit import area_inputs
    from pipeline.preprocess.labels import movement_labels

    prep = open_store(chewie_prepared, layout="prepared")
    x, y = area_inputs(prep, "M1"), movement_labels(prep)
    train = prep["split"].values == "train"
    n_trials, n_bins, n_units = x.shape
    model = PiVAE(epochs=8, seed=0).fit(
        x[train].reshape(-1, n_units), y[train].reshape(-1, 3), lengths=[n_bins] * int(train.sum())
    )
    z = model.transform(x.reshape(-1, n_units), y=y.reshape(-1, 3), lengths=[n_bins] * n_trials)
    z = z.reshape(n_trials, n_bins, -1)
    assert np.isfinite(z).all() and z.shape == (168, 40, 3)
    assert model.training_seconds_ > 0  # its time is a benchmark's business (bench_pivae_protocol), not a test's
    z_tr, z_te = z[train].reshape(-1, 3), z[~train].reshape(-1, 3)
    v_tr, v_te = y[train].reshape(-1, 3)[:, :2], y[~train].reshape(-1, 3)[:, :2]
    reg = LinearRegression().fit(z_tr, v_tr)
    held_out = r2_score(v_te, reg.predict(z_te))
    print(
        f"piVAE Chewie 2016-10-07 M1, 8 epochs ({model.training_seconds_:.1f} s, best epoch "
        f"{model.best_epoch_}): velocity R2 train {r2_score(v_tr, reg.predict(z_tr)):.3f}, test {held_out:.3f}"
    )
    assert held_out > 0.0


@requires_real
def test_paper_protocol_on_real_chewie_splits_60_20_and_windows_cross_trials(chewie_prepared):
    """protocol="paper" inside fit on the workflow's training trials (the first 80 %): the first
    75 % of them train, the last 25 % (whole trials) validate = 60/20 of the session, and the
    windows of training, validation and transform are cut from the concatenated bins."""
    from pipeline.data.store import open_store
    from pipeline.embed.fit import area_inputs
    from pipeline.preprocess.labels import movement_labels

    prep = open_store(chewie_prepared, layout="prepared")
    x, y = area_inputs(prep, "M1"), movement_labels(prep)
    train = prep["split"].values == "train"
    n_trials, n_bins, n_units = x.shape
    x_tr, y_tr = x[train].reshape(-1, n_units), y[train].reshape(-1, 3)
    assert (n_trials, int(train.sum())) == (168, 134)
    model = PiVAE(protocol="paper", epochs=1, seed=0).fit(x_tr, y_tr, lengths=[n_bins] * 134)
    # 134 training trials: 100 train (59.5 % of the session), the last 34 validate (20.2 %)
    assert (model.n_train_bins_, model.n_validation_bins_) == (100 * n_bins, 34 * n_bins)
    assert abs(model.n_train_bins_ / (n_trials * n_bins) - 0.6) < 0.01
    assert abs(model.n_validation_bins_ / (n_trials * n_bins) - 0.2) < 0.01

    # the validation loss of the (only) epoch is that of windows across the validation trials
    n_tr, n_val = model.n_train_bins_, model.n_validation_bins_
    x_val = torch.from_numpy(x_tr[n_tr:].astype(np.float32))
    u_val = torch.from_numpy(y_tr[n_tr:].astype(np.float32))
    across, within = [n_val], [n_bins] * 34
    assert _window_segments("across_trials", within) == across
    assert _mean_loss(model.network_, x_val, u_val, across, _inside_trial(across, x_val.device)) == pytest.approx(
        model.val_loss_[0], rel=1e-6
    )
    assert _mean_loss(model.network_, x_val, u_val, within, _inside_trial(within, x_val.device)) != pytest.approx(
        model.val_loss_[0], rel=1e-4
    )
    # the window of a trial's first bin reads the previous trial's last five bins
    first = 10 * n_bins  # bin 0 of validation trial 10
    context = _context(x_val, torch.tensor([first]), across, _inside_trial(across, x_val.device))[0]
    torch.testing.assert_close(context, x_val[first - 5 : first + 5].T)

    # transform too: changing trial 9's last bins moves the embedding of trial 10's first bin
    x_all, y_all = x.reshape(-1, n_units), y.reshape(-1, 3)
    changed = x_all.copy()
    changed[10 * n_bins - 5 : 10 * n_bins] += 1.0
    lengths = [n_bins] * n_trials
    z, z_changed = (model.transform(v, y=y_all, lengths=lengths) for v in (x_all, changed))
    assert np.abs(z_changed[10 * n_bins] - z[10 * n_bins]).max() > 1e-4
    model.set_params(windows="within_trials")  # the same weights with our windows: trial 10 is blind to it
    z, z_changed = (model.transform(v, y=y_all, lengths=lengths) for v in (x_all, changed))
    np.testing.assert_array_equal(z_changed[10 * n_bins], z[10 * n_bins])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_the_cpu_closely():
    x, y = _toy()
    z_cpu = _fit(seed=1).transform(x, y=y, lengths=LENGTHS)
    z_gpu = _fit(seed=1, device="cuda").transform(x, y=y, lengths=LENGTHS)
    np.testing.assert_allclose(z_gpu, z_cpu, rtol=1e-2, atol=1e-2)  # cuDNN may convolve in TF32

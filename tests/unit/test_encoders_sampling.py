"""Encoders (offset1 / offset10) and the seeded time-delta positive sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.embed.nn.encoders import (
    ENCODERS,
    Offset1Encoder,
    Offset10Encoder,
    build_encoder,
    windows,
)
from pipeline.embed.nn.sampling import TimeDeltaSampler

N = 7


def _offset1_params(n, h, out):
    half = h // 2
    return n * h + h + h * h + h + h * half + half + half * out + out


def _offset10_params(n, h, out):
    return 2 * n * h + h + 3 * (3 * h * h + h) + 3 * h * out + out


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- encoders
def test_offset1_shapes_unit_norm_and_layers():
    torch.manual_seed(0)
    enc = Offset1Encoder(N)
    z = enc(torch.randn(16, N))
    assert z.shape == (16, 3)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(16))
    # (B, N, 1) windows are accepted too and give the same embedding
    x = torch.randn(5, N)
    torch.testing.assert_close(enc(x[:, :, None]), enc(x))

    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(N, 32), (32, 32), (32, 16), (16, 3)]
    assert sum(isinstance(m, nn.GELU) for m in enc.modules()) == 3
    assert _n_params(enc) == _offset1_params(N, 32, 3)
    assert enc.receptive_field == (0, 1)
    assert (enc.n_inputs, enc.n_output) == (N, 3)

    wide = Offset1Encoder(N, n_hidden=40, n_output=16, normalize=False)
    linears = [m for m in wide.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(N, 40), (40, 40), (40, 20), (20, 16)]
    assert _n_params(wide) == _offset1_params(N, 40, 16)
    assert not torch.allclose(wide(torch.randn(4, N)).norm(dim=1), torch.ones(4))


def test_offset1_sequence_matches_per_bin():
    enc = Offset1Encoder(N)
    x = torch.randn(2, N, 6)
    seq = enc.forward_sequence(x)
    assert seq.shape == (2, 3, 6)
    torch.testing.assert_close(seq[:, :, 4], enc(x[:, :, 4]))


def test_offset10_shapes_params_and_receptive_field():
    torch.manual_seed(0)
    enc = Offset10Encoder(N)
    z = enc(torch.randn(8, N, 10))
    assert z.shape == (8, 3)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(8))
    assert _n_params(enc) == _offset10_params(N, 32, 3)
    assert sum(isinstance(m, nn.GELU) for m in enc.modules()) == 4
    assert enc.receptive_field == (5, 5) and enc.window_length == 10
    with pytest.raises(ValueError, match="10 time bins"):
        enc(torch.randn(2, N, 11))
    # the conv stack maps length L to L - 9: exactly 10 bins give one output
    assert enc.forward_sequence(torch.randn(1, N, 10)).shape == (1, 3, 1)
    assert enc.forward_sequence(torch.randn(1, N, 25)).shape == (1, 3, 16)

    # perturbing input step j changes exactly outputs k with k <= j <= k + 9
    x = torch.randn(1, N, 30, dtype=torch.float64)
    enc = enc.double()
    base = enc.forward_sequence(x)
    for j in (0, 9, 14, 29):
        x2 = x.clone()
        x2[0, :, j] += 1.0
        changed = (enc.forward_sequence(x2) - base).abs().amax(dim=(0, 1)) > 0
        expected = torch.zeros(21, dtype=torch.bool)
        expected[max(0, j - 9) : min(20, j) + 1] = True
        assert torch.equal(changed, expected), j


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_config_round_trip(name, tmp_path):
    enc = build_encoder(name, n_inputs=N, n_hidden=24, n_output=5)
    assert isinstance(enc, ENCODERS[name]) and enc.name == name
    sidecar = tmp_path / "model.json"
    sidecar.write_text(json.dumps({"encoder": enc.name, "encoder_config": enc.config()}))
    torch.save(enc.state_dict(), tmp_path / "model.pt")

    meta = json.loads(sidecar.read_text())
    rebuilt = build_encoder(meta["encoder"], **meta["encoder_config"])
    rebuilt.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert rebuilt.config() == enc.config() == {"n_inputs": N, "n_hidden": 24, "n_output": 5, "normalize": True}
    x = windows(torch.randn(12, N), enc.receptive_field)
    enc.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), enc(x), rtol=0, atol=0)


def test_build_encoder_errors():
    with pytest.raises(ValueError, match=r"'offset5'.*offset1, offset10"):
        build_encoder("offset5", n_inputs=N)
    with pytest.raises(ValueError, match="n_inputs"):
        build_encoder("offset1", n_inputs=0)
    with pytest.raises(ValueError, match="n_hidden"):
        Offset1Encoder(N, n_hidden=1)
    with pytest.raises(ValueError, match="shape"):
        Offset1Encoder(N)(torch.randn(4, N + 1))


def test_windows_padding_and_alignment():
    T = 13
    x = torch.randn(T, N)
    # offset1: one bin, the bin itself
    torch.testing.assert_close(windows(x, (0, 1)), x[:, :, None])
    w = windows(x, (5, 5))
    assert w.shape == (T, N, 10)
    torch.testing.assert_close(w[7], x[2:12].T)  # interior: t-5 ... t+4
    torch.testing.assert_close(w[0][:, :6], x[0][:, None].expand(N, 6))  # replicate at the start
    torch.testing.assert_close(w[-1][:, -4:], x[-1][:, None].expand(N, 4))
    # index subset = rows of the full result
    torch.testing.assert_close(windows(x, (5, 5), index=torch.tensor([3, 0, 12])), w[[3, 0, 12]])

    # consistent with one convolution pass over the replicate-padded session
    enc = Offset10Encoder(N).double().eval()
    xd = x.double()
    seq = enc.forward_sequence(F.pad(xd.T[None], (5, 4), mode="replicate"))[0].T
    torch.testing.assert_close(enc(windows(xd, enc.receptive_field)), seq)

    # trial edges: windows do not cross the boundary between trials of 6 and 7 bins
    wt = windows(x, (5, 5), lengths=[6, 7])
    torch.testing.assert_close(wt[5][:, -4:], x[5][:, None].expand(N, 4))
    torch.testing.assert_close(wt[6][:, :6], x[6][:, None].expand(N, 6))
    torch.testing.assert_close(wt[6][:, 5:], x[6:11].T)
    with pytest.raises(ValueError, match="lengths"):
        windows(x, (5, 5), lengths=[6, 6])
    with pytest.raises(ValueError, match="receptive_field"):
        windows(x, (1, 0))


# --------------------------------------------------------------------------- sampler
def _labels(T=400, seed=0):
    rng = np.random.default_rng(seed)
    vel = rng.normal(scale=50.0, size=(T, 2))
    angle = 45.0 * rng.integers(0, 8, size=(T, 1))
    return np.hstack([vel, angle])


def _brute_force(labels, ref, s, columns=(0, 1), time_offset=1):
    """Independent numpy reimplementation: squared-Euclidean argmin over all bins."""
    y = labels[:, list(columns)]
    delta = np.zeros_like(y)
    delta[time_offset:] = y[time_offset:] - y[:-time_offset]
    q = y[ref] + delta[s]
    d2 = ((y[None, :, :] - q[:, None, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


@pytest.mark.parametrize("time_offset", [1, 3])
def test_sampler_matches_brute_force(time_offset):
    labels = _labels()
    T = len(labels)
    sampler = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(7), time_offset=time_offset)
    replay = torch.Generator().manual_seed(7)  # replays the documented draw order
    for _ in range(3):
        ref, pos = sampler.sample(256)
        exp_ref = torch.randint(T, (256,), generator=replay)
        exp_s = torch.randint(T, (256,), generator=replay)
        assert ref.dtype == pos.dtype == torch.int64 and ref.device.type == "cpu"
        assert torch.equal(ref, exp_ref)
        expected = _brute_force(labels, exp_ref.numpy(), exp_s.numpy(), time_offset=time_offset)
        np.testing.assert_array_equal(pos.numpy(), expected)
    # sample_with_deltas exposes the same draws
    draw = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(3)).sample_with_deltas(64)
    np.testing.assert_array_equal(
        draw.positive.numpy(), _brute_force(labels, draw.reference.numpy(), draw.delta_index.numpy())
    )


def test_sampler_determinism_and_no_global_rng():
    labels = _labels()
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(1))
    b = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(1))
    c = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(2))
    for _ in range(3):
        ra, pa = a.sample(128)
        rb, pb = b.sample(128)
        rc, pc = c.sample(128)
        assert torch.equal(ra, rb) and torch.equal(pa, pb)
        assert not torch.equal(ra, rc) and not torch.equal(pa, pc)
        assert torch.equal(a.sample_negatives(32), b.sample_negatives(32))
    assert torch.equal(torch.get_rng_state(), torch_state)
    new_np = np.random.get_state()
    assert new_np[0] == np_state[0] and np.array_equal(new_np[1], np_state[1]) and new_np[2:] == np_state[2:]


def test_sampler_ignores_angle_column():
    labels = _labels()
    other = labels.copy()
    other[:, 2] = np.random.default_rng(9).uniform(0, 360, size=len(labels))
    a = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(4))
    b = TimeDeltaSampler(other, generator=torch.Generator().manual_seed(4))
    for _ in range(3):
        ra, pa = a.sample(200)
        rb, pb = b.sample(200)
        assert torch.equal(ra, rb) and torch.equal(pa, pb)
    # stock-CEBRA search over all three columns is available and does use the angle
    full = TimeDeltaSampler(other, generator=torch.Generator().manual_seed(4), position_columns=(0, 1, 2))
    ref, pos = full.sample(200)
    exp_s = torch.Generator().manual_seed(4)
    exp_ref = torch.randint(len(other), (200,), generator=exp_s)
    s = torch.randint(len(other), (200,), generator=exp_s)
    np.testing.assert_array_equal(pos.numpy(), _brute_force(other, exp_ref.numpy(), s.numpy(), columns=(0, 1, 2)))
    assert not torch.equal(pos, pa)


def test_zero_delta_gives_reference_itself():
    labels = _labels()
    sampler = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(0), time_offset=2)
    assert np.all(sampler.deltas[:2] == 0)
    ref = torch.arange(len(labels))
    for s in (0, 1):
        assert torch.equal(sampler.positives(ref, torch.full_like(ref, s)), ref)
    # a drawn batch contains the reference itself when its delta bin has zero change
    draw = TimeDeltaSampler(labels[:20], generator=torch.Generator().manual_seed(0)).sample_with_deltas(400)
    zero = draw.delta_index == 0
    assert zero.any() and torch.equal(draw.positive[zero], draw.reference[zero])


def test_ties_go_to_lowest_index():
    # bins 3..6 are equidistant (distance 1) from the origin; bins 7..10 duplicate them
    labels = np.array(
        [[5, 5], [6, 6], [7, 7], [0, -1], [1, 0], [-1, 0], [0, 1], [1, 0], [0, 1], [-1, 0], [0, -1]], float
    )
    sampler = TimeDeltaSampler(labels, generator=torch.Generator().manual_seed(0))
    assert sampler.nearest([[0.0, 0.0]]).tolist() == [3]
    assert sampler.nearest([[0.9, 0.1], [6.0, 6.0], [-0.0, 1.0]]).tolist() == [4, 1, 6]
    # a shuffled, duplicated integer lattice: most queries have several nearest bins at exactly the
    # same distance, and the tree is deep enough that a plain cKDTree k=1 query picks other ones
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(12), np.arange(12)), -1).reshape(-1, 2).astype(float)
    lattice = np.vstack([grid, grid])[rng.permutation(2 * len(grid))]
    lattice_sampler = TimeDeltaSampler(lattice, generator=torch.Generator().manual_seed(0))
    half = rng.integers(0, 22, size=(300, 2)) / 2.0
    d2 = ((lattice[None] - half[:, None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(lattice_sampler.nearest(half).numpy(), d2.argmin(axis=1))
    for data in (labels, lattice):  # any draw equals brute force (which takes the first argmin)
        draw = TimeDeltaSampler(data, generator=torch.Generator().manual_seed(1)).sample_with_deltas(300)
        np.testing.assert_array_equal(
            draw.positive.numpy(), _brute_force(data, draw.reference.numpy(), draw.delta_index.numpy())
        )
    # a single distinct point: everything maps to its first bin
    const = TimeDeltaSampler(np.ones((5, 3)), generator=torch.Generator())
    assert const.sample(4)[1].tolist() == [0, 0, 0, 0]


def test_sampler_input_validation():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="labels"):
        TimeDeltaSampler(np.zeros(10), generator=g)
    with pytest.raises(ValueError, match="labels"):
        TimeDeltaSampler(np.zeros((1, 3)), generator=g)
    bad = _labels(20)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="labels"):
        TimeDeltaSampler(bad, generator=g)
    with pytest.raises(ValueError, match="position_columns"):
        TimeDeltaSampler(_labels(20), generator=g, position_columns=(0, 3))
    with pytest.raises(ValueError, match="time_offset"):
        TimeDeltaSampler(_labels(20), generator=g, time_offset=0)
    with pytest.raises(TypeError, match="generator"):
        TimeDeltaSampler(_labels(20), generator=np.random.default_rng(0))
    sampler = TimeDeltaSampler(torch.as_tensor(_labels(20), dtype=torch.float32), generator=g)
    with pytest.raises(ValueError, match="batch_size"):
        sampler.sample(0)
    with pytest.raises(ValueError, match="ref_idx"):
        sampler.positives([0, 20], [0, 1])

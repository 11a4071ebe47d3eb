"""Prepared stores from real recordings: schema, round trip, labels, split, alignment."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

from pipeline.data.store import as_object_strings, open_store, validate_prepared, write_store
from pipeline.stages.rules.ingest import run as ingest
from pipeline.stages.rules.prepare import run as prepare
from tests.support.nwb import write_nwb
from tests.support.paths import CHIPS, PAPER, requires_real


def _prepare(tmp_path, source, fmt, areas, row, prep, reader_options=None):
    ingest(
        source,
        tmp_path / "ingest.zarr",
        fmt=fmt,
        areas=areas,
        session=row["session_id"],
        reader_options=reader_options,
        code_fingerprint="abc",
    )
    prepare(
        tmp_path / "ingest.zarr",
        tmp_path / "prepared.zarr",
        session=row,
        preprocessing=prep,
        code_fingerprint="def",
        threads=2,
    )
    return open_store(tmp_path / "prepared.zarr", layout="prepared")


def test_store_round_trip(tmp_path):
    ds = xr.Dataset(
        {
            "rates": (("trial", "bin", "unit"), np.random.default_rng(0).random((5, 4, 3), dtype=np.float32)),
            "counts": (("trial", "unit"), np.arange(15, dtype=np.uint16).reshape(5, 3)),
        },
        coords={
            "trial": np.arange(5),
            "unit": np.array(["a", "b", "c"], dtype=object),
            "area": ("unit", np.array(["M1", "M1", "PMd"])),
            "split": ("trial", np.array(["train"] * 4 + ["test"])),
        },
        attrs={"layout": "test", "year": 2016, "nested": {"a": 1}, "flag": True},
    )
    write_store(ds, tmp_path / "s.zarr")
    back = open_store(tmp_path / "s.zarr", layout="test")
    assert back["rates"].dtype == np.float32 and back["counts"].dtype == np.uint16
    back = back.load()
    for name in ("rates", "counts", "trial"):
        xr.testing.assert_equal(
            back[name].drop_vars(["unit", "area", "split"], errors="ignore"),
            ds[name].drop_vars(["unit", "area", "split"], errors="ignore"),
        )
    for name in ("unit", "area", "split"):  # strings come back as StringDType; values are equal
        assert list(as_object_strings(back[name].values)) == list(ds[name].values.astype(str))
        assert back[name].dims == ds[name].dims
    assert back.attrs == ds.attrs
    group = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert group.metadata.zarr_format == 3
    assert not (tmp_path / "s.zarr" / "zarr.json").read_text().count('"consolidated_metadata": {')
    codecs = group["counts"].metadata.codecs
    assert any("blosc" in type(c).__name__.lower() for c in codecs)
    assert group["rates"].chunks == (5, 4, 3)
    assert not list(tmp_path.glob(".s.zarr.tmp-*"))  # the temp folder was renamed away


def test_write_failure_leaves_nothing(tmp_path):
    ds = xr.Dataset({"x": ("a", np.array([object(), object()], dtype=object))})  # not serialisable
    with pytest.raises(ValueError):
        write_store(ds, tmp_path / "bad.zarr")
    assert list(tmp_path.iterdir()) == []


@requires_real
def test_prepare_paper_session(tmp_path, session_row, prep_config):
    row = dict(session_row, session_id="Chewie-20161007", format="nermat", area_list=["M1", "PMd"])
    ds = _prepare(
        tmp_path,
        PAPER / "Chewie_20161007_neural_con_dis_index.mat",
        "nermat",
        ["M1", "PMd"],
        row,
        prep_config,
        {"trial_bins": 40},
    )
    validate_prepared(ds)
    assert dict(ds.sizes) == {"trial": 168, "bin": 40, "unit": 207, "axis": 2}
    assert (ds["split"].values == "train").sum() == int(0.8 * 168) == 134
    assert list(ds["split"].values[:134]) == ["train"] * 134  # chronological
    raw = scipy_mat(PAPER / "Chewie_20161007_neural_con_dis_index.mat")
    # already smoothed: the rates are the file's values, untouched
    np.testing.assert_allclose(ds["rates"].values[3, :, :70], raw["neural_M1"][120:160], rtol=1e-6)
    np.testing.assert_allclose(ds["velocity"].values[3], raw["continuous_index"][120:160], rtol=1e-6)
    np.testing.assert_allclose(
        ds["position"].values[3], 0.03 * np.cumsum(raw["continuous_index"][120:160], 0), rtol=1e-5, atol=1e-6
    )
    assert ds.attrs["smoothed_by"] == "source" and ds.attrs["year"] == 2016
    assert ds.attrs["code_fingerprint"] == "def" and len(ds.attrs["source_sha256"]) == 64
    np.testing.assert_allclose(ds["bin_time"].values[:3], [0, 0.03, 0.06])


def scipy_mat(path):
    import scipy.io

    return scipy.io.loadmat(path, squeeze_me=True)


@requires_real
def test_prepare_chips_trialdata_rebins_and_smooths(tmp_path, session_row, prep_config):
    row = dict(session_row, session_id="Chips", format="trialdata", area_list=["S1"])
    prep = dict(prep_config, window_start_bins=-3, window_bins=16)
    ds = _prepare(tmp_path, CHIPS / "tdGo2Fac.mat", "trialdata", ["S1"], row, prep)
    assert ds.sizes["trial"] == 544 and ds.sizes["unit"] == 26 and ds.sizes["bin"] == 16
    np.testing.assert_allclose(ds["bin_time"].values[[0, 3]], [-0.09, 0.0])
    # re-binned 10 -> 30 ms, anchored on the go cue (native bin 20), then smoothed: total spikes of the
    # unsmoothed 30-ms window equal the native counts of native bins 11..58
    from pipeline.io.trialdata import read_trialdata

    source = read_trialdata(CHIPS / "tdGo2Fac.mat")
    native = source["counts"].values
    no_smooth = dict(prep, smoothing={"sd_s": 0.0, "half_width_s": 0.0})
    raw = _prepare(tmp_path / "raw", CHIPS / "tdGo2Fac.mat", "trialdata", ["S1"], row, no_smooth)
    np.testing.assert_array_equal(raw["rates"].values[0, 0], native[0, 11:14].sum(axis=0))
    np.testing.assert_array_equal(raw["rates"].values.sum(axis=1), native[:, 11:59].sum(axis=1))
    # smoothing moves spikes between bins but (away from trial edges) not across the whole trial
    assert ds["rates"].values.sum() == pytest.approx(raw["rates"].values.sum(), rel=0.05)
    # velocity: 30 ms means of the 10 ms samples; recorded position kept beside the integrated one
    vel = source["velocity"].values
    np.testing.assert_allclose(ds["velocity"].values[0, 4], vel[0, 23:26].mean(axis=0), rtol=1e-5)
    assert "recorded_position" in ds and ds["position"].values[:, 2].std() < 1e-3  # ~0 just before the cue
    speed = np.linalg.norm(ds["velocity"].values, axis=-1).mean(axis=0)
    assert np.argmax(speed) > 3  # the reach comes after the go cue


def test_prepare_continuous_nwb(tmp_path, session_row, prep_config, monkeypatch):
    import pipeline.preprocess.prepare

    monkeypatch.setattr(pipeline.preprocess.prepare, "TRIAL_CHUNK", 4)  # several dask tasks, several zarr chunks
    nwb = write_nwb(tmp_path / "t.nwb")
    prep = dict(prep_config, window_bins=40)
    ds = _prepare(tmp_path, nwb, "nwb", ["M1", "PMd"], session_row, prep)
    assert ds.sizes["trial"] == 11  # trial 5 was not rewarded
    assert ds["rates"].encoding["chunks"] == (4, 40, 8)
    assert ds.attrs["trials_dropped"] == {"not rewarded": 1}
    assert 5 not in ds["trial"].values
    assert set(ds["direction"].values) <= set(range(0, 360, 45))
    np.testing.assert_array_equal(ds["direction"].values[:4], [0, 45, 90, 135])
    speed = np.linalg.norm(ds["velocity"].values, axis=-1).mean(axis=0)
    assert 15 <= np.argmax(speed) <= 18  # the synthetic reach peaks 0.5 s after the go cue
    # rates equal the smoothed counts of a direct binning of the same spikes around the go cue
    from pipeline.io.nwb import read_nwb
    from pipeline.preprocess.prepare import bin_trial_windows, gaussian_kernel, smooth_trials

    src = read_nwb(nwb)
    go = src["go_cue_time"].values[0]
    counts = bin_trial_windows(
        src["spike_time"].values, src["spike_unit"].values, src.sizes["unit"], np.array([go - 4 * 0.03]), 0.03, 48
    )
    expect = smooth_trials(counts, gaussian_kernel(1.5, 4))[0, 4:44]
    np.testing.assert_allclose(ds["rates"].values[0], expect, rtol=1e-5, atol=1e-6)


def test_prepare_window_outside_trial_is_dropped(tmp_path, session_row, prep_config):
    nwb = write_nwb(tmp_path / "t.nwb")
    prep = dict(prep_config, window_bins=55)  # 0.5 + 1.65 s > 2 s trials
    ingest(nwb, tmp_path / "i.zarr", fmt="nwb", areas=["M1"], session="T-1")
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=r"\[trials\].*window outside trial"):
        prepare(tmp_path / "i.zarr", tmp_path / "p.zarr", session=session_row, preprocessing=prep)
    assert not (tmp_path / "p.zarr").exists()


def test_writes_remove_temp_folders_left_by_a_killed_writer(tmp_path):
    """A SIGKILLed job can leave ``.<name>.tmp-*`` beside its output; the next write of that output
    (stores and checkpoints alike) removes it, and leaves the siblings of other outputs alone."""
    import xarray as xr

    from pipeline.data.store import write_store
    from pipeline.embed.methods.base import write_checkpoint

    for name in (".emb.zarr.tmp-dead0001", ".seed0.tmp-dead0002", ".other.zarr.tmp-live0003"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "half-written").write_text("x")
    write_store(xr.Dataset({"a": ("x", np.zeros(3))}), tmp_path / "emb.zarr")
    write_checkpoint(tmp_path / "seed0", {"method": "test"}, {"w.npy": lambda p: np.save(p, np.ones(2))})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.zarr.tmp-live0003", "emb.zarr", "seed0"]

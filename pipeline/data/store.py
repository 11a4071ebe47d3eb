"""The one place that knows the zarr layouts of our stores and how they are encoded.

Stores are xarray Datasets written as zarr v3 with explicit codecs and chunks and *without*
consolidated metadata (not part of the v3 spec), and read back lazily with the same flag.

Two ingest layouts exist (``attrs["layout"]``):

``spikes``  (continuous recordings, e.g. NWB)
    ``spike_time(spike)`` float64 s, sorted ascending; ``spike_unit(spike)`` int32 position on ``unit``;
    ``unit`` (source unit ids) with ``area(unit)``, ``electrode(unit)``; behaviour
    ``velocity(time, axis)`` cm/s and optionally ``position(time, axis)`` cm on the source's own
    sample clock ``time`` (s); the trial table on ``trial`` with ``start_time``, ``stop_time`` and one
    ``{event}_time`` per event (NaN when absent).

``aligned`` (sources that are already cut into trials: TrialData, the paper's .mat files)
    ``counts(trial, bin, unit)`` on the source's bin grid (``attrs["bin_size_s"]``; float when the
    source is already smoothed, ``attrs["smoothed"]``), ``n_bins(trial)`` valid bins per trial,
    ``velocity(trial, bin, axis)`` and optionally ``position(trial, bin, axis)``, one
    ``{event}_bin(trial)`` per event (0-based, -1 when absent).

Both carry ``direction(trial)`` (degrees, as found), ``rewarded(trial)`` and optional maze columns.

The prepared layout (``attrs["layout"] == "prepared"``) is the canonical input of every method; see
:func:`validate_prepared`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from pipeline.data.atomic import atomic_path
from pipeline.errors import InputError

ZARR_FORMAT = 3
CONSOLIDATED = False
#: target uncompressed bytes per chunk along the leading dimension
CHUNK_BYTES = 4 << 20

INGEST_LAYOUTS = ("spikes", "aligned")

PREPARED_VARS = {
    "rates": ("trial", "bin", "unit"),
    "velocity": ("trial", "bin", "axis"),
    "position": ("trial", "bin", "axis"),
}
PREPARED_COORDS = ("unit", "area", "trial", "direction", "split", "bin_time", "axis")
PREPARED_ATTRS = (
    "session",
    "subject",
    "date",
    "year",
    "hemisphere",
    "task",
    "bin_size_s",
    "smoothing_sd_s",
    "align_event",
    "source_file",
    "source_sha256",
    "package_version",
    "code_fingerprint",
)


def _compressors(dtype: np.dtype) -> list:
    """Blosc/zstd with bit-shuffle for integer and bool arrays (sparse counts), plain zstd for floats."""
    if dtype.kind in "iub":
        return [BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")]
    return [ZstdCodec(level=3)]


def _chunks(var: xr.Variable) -> tuple[int, ...]:
    """Chunk only along the leading dimension, sized to about :data:`CHUNK_BYTES`.

    A dask-backed variable keeps its dask chunks (one zarr chunk per task, so tasks write in parallel
    without sharing a chunk).
    """
    if var.ndim == 0:
        return ()
    if var.chunks is not None:
        return tuple(int(max(c)) for c in var.chunks)
    row = int(np.prod(var.shape[1:], dtype=np.int64)) * var.dtype.itemsize
    lead = max(1, min(var.shape[0], CHUNK_BYTES // max(row, 1)))
    return (lead, *var.shape[1:])


def encoding_for(ds: xr.Dataset) -> dict:
    """Explicit zarr v3 encoding (codecs, chunks, fill values) for every numeric variable and coord."""
    enc = {}
    for name, var in {**ds.coords, **ds.data_vars}.items():
        if var.dtype.kind not in "iufb" or var.ndim == 0:
            continue  # strings are written as v3 variable-length strings with defaults
        fill = np.nan if var.dtype.kind == "f" else (False if var.dtype.kind == "b" else 0)
        enc[name] = {
            "compressors": _compressors(var.dtype),
            "chunks": _chunks(var.variable),
            "fill_value": fill,
        }
    return enc


def as_object_strings(values) -> np.ndarray:
    """Any string array (``<U``, object, numpy ``StringDType`` as read back from zarr v3) as object str."""
    return np.array([str(v) for v in np.asarray(values).ravel()], dtype=object).reshape(np.shape(values))


def _plain_strings(ds: xr.Dataset) -> xr.Dataset:
    """Store strings as object arrays (zarr v3 vlen strings); fixed-width ``<U`` is unstable in v3."""
    for name, var in {**ds.coords, **ds.data_vars}.items():
        if var.dtype.kind in "UT":
            ds[name] = var.copy(data=as_object_strings(var.values))
    return ds


def write_store(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (:func:`pipeline.data.atomic.atomic_path`): a failure at any point
    leaves nothing at ``path``. Dask-backed variables are computed chunk by chunk by the active dask
    scheduler."""
    path = Path(path)
    ds = _plain_strings(ds.drop_encoding())
    with atomic_path(path) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=ZARR_FORMAT, consolidated=CONSOLIDATED, encoding=encoding_for(ds))
    return path


def open_store(path: str | os.PathLike, layout: str | tuple[str, ...] | None = None) -> xr.Dataset:
    """Open a store lazily (dask arrays, one dask chunk per zarr chunk).

    Args:
        path: the ``.zarr`` folder.
        layout: when given, the store's ``attrs["layout"]`` must be (one of) this.

    Raises:
        InputError: the folder is not a store of ours, or has another layout.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp inside directory outputs
            warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy")
            ds = xr.open_zarr(path, consolidated=CONSOLIDATED, chunks={}, zarr_format=ZARR_FORMAT)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError) as exc:
        raise InputError(path, None, f"not a readable zarr v3 store ({exc})") from exc
    if layout is not None:
        allowed = (layout,) if isinstance(layout, str) else layout
        found = ds.attrs.get("layout")
        if found not in allowed:
            raise InputError(path, "attrs.layout", f"expected one of {allowed}, found {found!r}")
    return ds


def validate_prepared(ds: xr.Dataset, source: str | os.PathLike | None = None) -> None:
    """Check that ``ds`` follows the prepared-store schema (variables, dims, coords, attrs, dtypes).

    Raises:
        InputError: naming the first missing or malformed field.
    """
    for name, dims in PREPARED_VARS.items():
        if name not in ds.data_vars:
            raise InputError(source, name, "missing variable of the prepared store")
        if ds[name].dims != dims:
            raise InputError(source, name, f"dims {ds[name].dims}, expected {dims}")
    if ds["rates"].dtype != np.float32:
        raise InputError(source, "rates", f"dtype {ds['rates'].dtype}, expected float32")
    for name in PREPARED_COORDS:
        if name not in ds.coords:
            raise InputError(source, name, "missing coordinate of the prepared store")
    for name in PREPARED_ATTRS:
        if name not in ds.attrs:
            raise InputError(source, f"attrs.{name}", "missing attribute of the prepared store")
    splits = set(as_object_strings(ds["split"].values))
    if not splits <= {"train", "test"}:
        raise InputError(source, "split", f"unexpected values {sorted(splits)}")


EMBEDDING_COORDS = ("trial", "direction", "split", "bin_time", "dim")
EMBEDDING_ATTRS = (
    "method",
    "session",
    "area",
    "seed",
    "params",
    "device",
    "iterations",
    "training_seconds",
    "uses_labels_at_transform",
    "n_units",
    "source_sha256",
    "package_version",
    "code_fingerprint",
    "versions",
)


def validate_embedding(ds: xr.Dataset, source: str | os.PathLike | None = None) -> None:
    """Check the embedding-store schema: ``latent(trial, bin, dim)`` float32, coords and attrs.

    Raises:
        InputError: naming the first missing or malformed field.
    """
    if ds.attrs.get("layout") != "embedding":
        raise InputError(source, "attrs.layout", f"expected 'embedding', found {ds.attrs.get('layout')!r}")
    if "latent" not in ds.data_vars:
        raise InputError(source, "latent", "missing variable of the embedding store")
    if ds["latent"].dims != ("trial", "bin", "dim"):
        raise InputError(source, "latent", f"dims {ds['latent'].dims}, expected ('trial', 'bin', 'dim')")
    if ds["latent"].dtype != np.float32:
        raise InputError(source, "latent", f"dtype {ds['latent'].dtype}, expected float32")
    for name in EMBEDDING_COORDS:
        if name not in ds.coords:
            raise InputError(source, name, "missing coordinate of the embedding store")
    for name in EMBEDDING_ATTRS:
        if name not in ds.attrs:
            raise InputError(source, f"attrs.{name}", "missing attribute of the embedding store")

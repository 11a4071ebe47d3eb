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

import logging
import os
import warnings
from collections.abc import Mapping
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

log = logging.getLogger(__name__)

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


#: the trial events every ingest store carries (NaN time / bin -1 when a trial lacks one)
INGEST_EVENTS = ("go_cue", "move_onset", "target_on")
#: optional maze condition columns (MC_Maze), carried as trial coordinates into prepared stores
MAZE_COORDS = ("trial_type", "trial_version", "maze_id")
_XY = ("axis", np.array(["x", "y"], dtype=object))


def _trial_table(trial, direction, rewarded, result, maze: Mapping[str, np.ndarray | None] | None) -> tuple[dict, dict]:
    data = {"direction": ("trial", direction), "rewarded": ("trial", rewarded)}
    coords = {"trial": ("trial", trial)}
    coords.update({name: ("trial", values) for name, values in (maze or {}).items() if values is not None})
    if result is not None:
        data["result"] = ("trial", result)
    return data, coords


def spikes_dataset(
    *,
    spike_time: np.ndarray,
    spike_unit: np.ndarray,
    unit: np.ndarray,
    area: np.ndarray,
    electrode: np.ndarray,
    trial: np.ndarray,
    trial_times: Mapping[str, np.ndarray],
    direction: np.ndarray,
    direction_source: str,
    rewarded: np.ndarray,
    result: np.ndarray | None = None,
    maze: Mapping[str, np.ndarray | None] | None = None,
    time: np.ndarray | None = None,
    velocity: np.ndarray | None = None,
    position: np.ndarray | None = None,
    behaviour_source: Mapping[str, str] | None = None,
    attrs: Mapping,
    source: str | os.PathLike | None = None,
) -> xr.Dataset:
    """The ``spikes`` ingest dataset (module docstring), validated.

    Args:
        spike_time, spike_unit: every spike's time (s) and unit position; sorted here by time (stable).
        unit, area, electrode: per unit.
        trial, trial_times: trial ids and ``start_time``, ``stop_time``, ``{event}_time`` columns (s);
            trials are put in ``start_time`` order (the chronological split follows it).
        direction, direction_source: target direction per trial in degrees, and where it came from.
        rewarded, result: per trial (``result`` the source's outcome codes, optional).
        maze: optional :data:`MAZE_COORDS` columns.
        time, velocity, position: the behaviour on its own sample clock (``position`` optional).
        behaviour_source: the source's names of ``velocity`` / ``position``.
        attrs: ``reader`` and the recording's metadata.
    """
    order = np.argsort(spike_time, kind="stable")
    data, coords = _trial_table(trial, direction, rewarded, result, maze)
    ds = xr.Dataset(
        {
            "spike_time": ("spike", spike_time[order]),
            "spike_unit": ("spike", spike_unit[order]),
            **{name: ("trial", values) for name, values in trial_times.items()},
            **data,
        },
        coords={"unit": ("unit", unit), "area": ("unit", area.astype(object)), "electrode": ("unit", electrode)}
        | coords,
    )
    if velocity is not None:
        ds = ds.assign_coords(time=("time", time), axis=_XY)
        ds["velocity"] = (("time", "axis"), velocity)
        ds["velocity"].attrs.update(units="cm/s", source=(behaviour_source or {}).get("velocity", ""))
        if position is not None:
            ds["position"] = (("time", "axis"), position)
            ds["position"].attrs.update(units="cm", source=(behaviour_source or {}).get("position", ""))
        ds["time"].attrs["units"] = "s"
    ds["spike_time"].attrs["units"] = "s"
    ds["direction"].attrs.update(units="deg", source=direction_source)
    ds.attrs.update(layout="spikes", has_behavior=velocity is not None, **attrs)
    validate_ingest(ds, source)
    start = ds["start_time"].values
    if not np.isfinite(start).all():
        raise InputError(source, "intervals/trials.start_time", "start times must be finite")
    if np.any(np.diff(start) < 0):  # rows out of time order: the chronological split needs time order
        log.info("%s: trials are not in start_time order; sorted by start_time", source)
        ds = ds.isel(trial=np.argsort(start, kind="stable"))
    return ds


def aligned_dataset(
    *,
    counts: np.ndarray,
    n_bins: np.ndarray,
    velocity: np.ndarray,
    event_bins: Mapping[str, np.ndarray],
    trial: np.ndarray,
    unit: np.ndarray,
    area: np.ndarray,
    direction: np.ndarray,
    direction_source: str,
    rewarded: np.ndarray,
    result: np.ndarray | None = None,
    position: np.ndarray | None = None,
    bin_size_s: float,
    smoothed: bool,
    attrs: Mapping,
    source: str | os.PathLike | None = None,
) -> xr.Dataset:
    """The ``aligned`` ingest dataset (module docstring), validated.

    Args:
        counts: ``(trial, bin, unit)`` counts (or smoothed rates when ``smoothed``) on the source's grid.
        n_bins: valid bins per trial; event_bins: ``{event}_bin`` columns (0-based, -1 when absent).
        velocity, position: ``(trial, bin, axis)`` cm/s and cm (``position`` optional).
        direction: degrees; it is stored modulo 360.
        bin_size_s, smoothed: the source's bin grid; attrs: ``reader`` and metadata.
    """
    data, coords = _trial_table(trial, np.mod(direction, 360.0), rewarded, result, None)
    ds = xr.Dataset(
        {
            "counts": (("trial", "bin", "unit"), counts),
            "n_bins": ("trial", np.asarray(n_bins, dtype=np.int64)),
            "velocity": (("trial", "bin", "axis"), velocity),
            **{name: ("trial", values) for name, values in event_bins.items()},
            **data,
        },
        coords=coords | {"unit": ("unit", unit), "area": ("unit", area), "axis": _XY},
    )
    if position is not None:
        ds["position"] = (("trial", "bin", "axis"), position)
        ds["position"].attrs["units"] = "cm"
    ds["velocity"].attrs["units"] = "cm/s"
    ds["direction"].attrs.update(units="deg", source=direction_source)
    ds.attrs.update(layout="aligned", bin_size_s=bin_size_s, smoothed=smoothed, has_behavior=True, **attrs)
    validate_ingest(ds, source)
    return ds


_INGEST_VARS = {
    "spikes": {"spike_time": ("spike",), "spike_unit": ("spike",), "start_time": ("trial",), "stop_time": ("trial",)},
    "aligned": {"counts": ("trial", "bin", "unit"), "n_bins": ("trial",), "velocity": ("trial", "bin", "axis")},
}


def validate_ingest(ds: xr.Dataset, source: str | os.PathLike | None = None) -> None:
    """Check the ingest schema of either layout (variables and their dims, the per-unit ``area``, the
    per-trial ``direction`` and ``rewarded``).

    Raises:
        InputError: naming the first missing or malformed field.
    """
    layout = ds.attrs.get("layout")
    if layout not in INGEST_LAYOUTS:
        raise InputError(source, "attrs.layout", f"expected one of {INGEST_LAYOUTS}, found {layout!r}")
    required = {**_INGEST_VARS[layout], "direction": ("trial",), "rewarded": ("trial",)}
    for name, dims in required.items():
        if name not in ds.variables:
            raise InputError(source, name, f"missing variable of the {layout} ingest store")
        if ds[name].dims != dims:
            raise InputError(source, name, f"dims {ds[name].dims}, expected {dims}")
    if "area" not in ds.coords or ds["area"].dims != ("unit",):
        raise InputError(source, "area", "missing per-unit coordinate of the ingest store")


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


def prepared_dataset(
    *,
    rates,
    velocity: np.ndarray,
    position: np.ndarray,
    recorded_position: np.ndarray | None = None,
    trial: np.ndarray,
    unit: np.ndarray,
    area: np.ndarray,
    bin_time: np.ndarray,
    direction: np.ndarray,
    target_angle: np.ndarray,
    split: np.ndarray,
    maze: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping,
    source: str | os.PathLike | None = None,
) -> xr.Dataset:
    """The prepared dataset (:data:`PREPARED_VARS`, :data:`PREPARED_COORDS`, :data:`PREPARED_ATTRS`),
    validated.

    Args:
        rates: ``(trial, bin, unit)`` float32 smoothed counts per bin (numpy or dask).
        velocity, position: ``(trial, bin, axis)`` float32 bin means (cm/s) and the velocity integrated
            from the alignment bin (cm); recorded_position: the source's own position (optional).
        trial, unit, area: ids; bin_time: left bin edges relative to ``attrs["align_event"]`` (s).
        direction, target_angle: 45-degree class and the source's angle per trial; split: train/test.
        maze: optional :data:`MAZE_COORDS` columns (``straight`` is derived from ``trial_version``).
        attrs: the session, preprocessing and provenance attributes.
    """
    ds = xr.Dataset(
        {
            "rates": (("trial", "bin", "unit"), rates),
            "velocity": (("trial", "bin", "axis"), velocity),
            "position": (("trial", "bin", "axis"), position),
        },
        coords={
            "trial": ("trial", trial),
            "unit": ("unit", unit),
            "area": ("unit", area),
            "axis": _XY,
            "bin": ("bin", np.arange(len(bin_time))),
            "bin_time": ("bin", bin_time),
            "direction": ("trial", direction),
            "target_angle": ("trial", target_angle),
            "split": ("trial", split),
        },
    )
    if recorded_position is not None:
        ds["recorded_position"] = (("trial", "bin", "axis"), recorded_position)
        ds["recorded_position"].attrs.update(units="cm", description="recorded hand/cursor position, bin means")
    ds = ds.assign_coords({name: ("trial", values) for name, values in (maze or {}).items()})
    if "trial_version" in ds.coords:
        ds = ds.assign_coords(straight=("trial", ds["trial_version"].values == 0))
    ds["rates"].attrs.update(units="count/bin", description="Gaussian-smoothed spike counts per bin")
    ds["velocity"].attrs.update(units="cm/s", description="hand velocity, bin means")
    ds["position"].attrs.update(units="cm", description="velocity integrated from the alignment bin")
    ds["bin_time"].attrs.update(units="s", description=f"left bin edge relative to {attrs['align_event']}")
    ds["direction"].attrs.update(units="deg", description="target direction rounded to 45-degree classes")
    ds.attrs.update(layout="prepared", areas=sorted(set(area)), **attrs)
    validate_prepared(ds, source)
    return ds


def embedding_dataset(
    *,
    latent: np.ndarray,
    loss: np.ndarray,
    coords: Mapping[str, xr.Variable],
    attrs: Mapping,
    source: str | os.PathLike | None = None,
) -> xr.Dataset:
    """The embedding dataset (``latent(trial, bin, dim)`` float32, the training ``loss`` per iteration
    when the method has one, the prepared store's trial and bin coordinates), validated.

    Args:
        latent: the embedding of every bin; loss: one value per iteration (empty: none).
        coords: the prepared store's coordinates carried over (``trial``, ``direction``, ``split``...).
        attrs: method, session, area, seed, params, device, timings and provenance (``method`` names the
            method in the variables' descriptions).
    """
    method = attrs["method"]
    ds = xr.Dataset({"latent": (("trial", "bin", "dim"), latent)}, coords=dict(coords)).assign_coords(
        dim=np.arange(latent.shape[-1])
    )
    if loss.size:
        ds["loss"] = ("iteration", loss)
        ds["loss"].attrs.update(description=f"training loss of every iteration ({method})")
    ds["latent"].attrs.update(description=f"{method} embedding of every bin (train and test trials)")
    ds.attrs.update(layout="embedding", **attrs)
    validate_embedding(ds, source)
    return ds


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

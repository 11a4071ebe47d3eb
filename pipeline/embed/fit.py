"""The training stage in memory: prepared dataset -> fitted method -> embedding dataset (and the model).

One job trains one ``(method, session, area, seed)`` cell, as the paper (one independent model per
session and area): fit on the bins of the training trials, embed every trial (train and test) with
the same model; the rule (:mod:`pipeline.stages.rules.train`) writes
``results/embeddings/{method}/{session}/{area}/seed{seed}.zarr`` and the checkpoint folder.
GPU-capable methods lease a device first (:mod:`pipeline.embed.device`). The maze analysis trains the
same way on one trial subset of a session with its areas pooled (:mod:`pipeline.analysis.maze`).

Methods that learn from movement labels (every method but PCA and UMAP) stop with a "behaviour
missing" error on a recording without hand/cursor velocity (e.g. an NLB test split).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from os import PathLike

import numpy as np
import xarray as xr

from pipeline import __version__
from pipeline.data.origin import versions
from pipeline.data.store import (
    as_object_strings,
    embedding_dataset,
    validate_prepared,
)
from pipeline.embed.device import acquire_device
from pipeline.embed.methods import EmbeddingMethod, get_method
from pipeline.errors import InputError
from pipeline.preprocess.labels import LABEL_COLUMNS, movement_labels

__all__ = ["area_inputs", "fit_embedding"]

log = logging.getLogger(__name__)

#: prepared coords (on ``trial`` or ``bin``) carried into the embedding store when present
_CARRIED_COORDS = (
    "trial",
    "direction",
    "target_angle",
    "split",
    "bin",
    "bin_time",
    "trial_type",
    "trial_version",
    "maze_id",
    "straight",
)


def area_inputs(ds: xr.Dataset, area: str | Sequence[str], source: str | PathLike | None = None) -> np.ndarray:
    """``(trial, bin, unit)`` float32 rates of the units of ``area`` (a list pools several areas, in
    the store's unit order).

    Raises:
        InputError: the store has no unit of an asked area (the message lists the areas it has), or
            the rates contain NaN.
    """
    wanted = [area] if isinstance(area, str) else list(area)
    areas = as_object_strings(ds["area"].values)
    for name in wanted:
        if not (areas == name).any():
            raise InputError(source, "area", f"no units of area {name!r}; the store has {sorted(set(areas))}")
    mask = np.isin(areas, wanted)
    rates = np.asarray(ds["rates"].isel(unit=np.flatnonzero(mask)).values, dtype=np.float32)
    if not np.isfinite(rates).all():
        raise InputError(
            source, "rates", f"{int((~np.isfinite(rates)).sum())} NaN/inf rates in area {'+'.join(wanted)}"
        )
    return rates


def _check_behaviour(ds: xr.Dataset, method: str, source) -> None:
    """Raise "behaviour missing" when ``method`` needs labels and the recording has no velocity."""
    if not bool(ds.attrs.get("has_behavior", True)):
        raise InputError(
            ds.attrs.get("source_file") or source,
            "processing/behavior",
            f"behaviour missing: {method} learns from movement labels (hand velocity), and this "
            f"recording has no hand/cursor velocity; run a method without labels (pca, umap) "
            f"on it, or give a recording with behaviour (an NLB *train* file)",
        )


def _check_sizes(method: str, params: Mapping, train_bins: int, n_units: int, source) -> None:
    """Settings that pass the schema but not this recording: a batch of more bins than the training
    split holds (NER's sampler would allocate for it: 80 GB measured), more components than bins or
    units."""
    cls = get_method(method)
    merged = {**cls().get_params(), **params}
    if "batch_size" in merged and method in ("ner", "cebra", "cebra16d") and merged["batch_size"] > train_bins:
        raise InputError(
            source,
            f"methods.{method}.params.batch_size",
            f"{merged['batch_size']} is more than the {train_bins} training bins of this recording",
        )
    if "n_components" in merged and merged["n_components"] > min(train_bins, n_units):
        raise InputError(
            source,
            f"methods.{method}.params.n_components",
            f"{merged['n_components']} components from {n_units} units and {train_bins} training bins "
            f"(at most {min(train_bins, n_units)})",
        )


def fit_embedding(
    ds: xr.Dataset,
    *,
    method: str,
    params: Mapping | None = None,
    area: str | Sequence[str],
    seed: int = 0,
    labels: Mapping | None = None,
    device: Mapping | None = None,
    code_fingerprint: str = "",
    threads: int = 1,
    subset: Mapping | None = None,
    source: str | PathLike | None = None,
) -> tuple[xr.Dataset, EmbeddingMethod]:
    """Train ``method`` on one session/area of a prepared dataset and embed every trial, in memory.

    Args:
        ds: the prepared dataset of the session (:func:`pipeline.preprocess.prepare.prepare_dataset`, or a
            prepared store opened).
        method: registry name (:data:`pipeline.embed.methods.METHODS`).
        params: the method's constructor arguments (without ``seed``/``device``); defaults if None.
        area: brain area whose units are the input, or a list of areas pooled into one population.
        seed: the run's seed.
        labels: the config's ``labels`` block (:func:`pipeline.preprocess.labels.movement_labels` arguments;
            its defaults if None).
        device: the config's ``device`` block (``prefer``, ``allow_cpu``, ``wait_s``); None: a GPU when
            one is free, else the CPU.
        code_fingerprint: fingerprint of this stage's modules (recorded).
        threads: CPU threads for torch.
        subset: train on one maze trial subset only: ``name``, ``trial_types``, ``versions``,
            ``train_fraction`` (:func:`pipeline.preprocess.subsets.select_subset`); recorded in the attrs.
        source: what to name in error messages (default: the dataset's session).

    Returns:
        The embedding dataset (``latent(trial, bin, dim)`` with the trials' coordinates and the record
        of how it was made) and the fitted model.

    Raises:
        InputError: bad dataset, area, subset or labels, or labels asked of a recording without
            behaviour (naming the source and field).
    """
    source = source if source is not None else ds.attrs.get("session", "prepared dataset")
    labels = dict(labels) if labels is not None else {}
    device = dict(device) if device is not None else {"prefer": "cuda", "allow_cpu": True, "wait_s": 0.0}
    validate_prepared(ds, source)
    if subset is not None:
        from pipeline.preprocess.subsets import select_subset

        ds = select_subset(ds, subset["name"], subset, train_fraction=float(subset["train_fraction"]), source=source)
    cls = get_method(method)
    area_name = area if isinstance(area, str) else "+".join(area)
    rates = area_inputs(ds, area, source)
    y = None
    if cls.needs_labels:
        _check_behaviour(ds, method, source)
        y = movement_labels(ds, **labels)
    train = as_object_strings(ds["split"].values) == "train"
    if train.sum() < 2:
        raise InputError(source, "split", f"{int(train.sum())} training trial(s); need at least 2")
    n_trials, n_bins, n_units = rates.shape
    _check_sizes(method, dict(params or {}), int(train.sum()) * n_bins, n_units, source)

    lease = None
    if cls.trainable_on_gpu:  # torch is imported by these methods only (PCA, dPCA, UMAP start faster)
        import torch

        torch.set_num_threads(max(1, int(threads)))
        lease = acquire_device(
            device.get("prefer", "cuda"),
            allow_cpu=bool(device.get("allow_cpu", False)),
            wait_s=float(device.get("wait_s", 0.0)),
        )
        run_device = lease.device
        device_info = lease.describe()
    else:
        device_info = {"device": "cpu", "reason": f"{method} runs on the CPU"}
    try:
        init = dict(params or {}, seed=int(seed))
        if cls.trainable_on_gpu:
            init["device"] = str(run_device)
        model = cls(**init)
        log.info(
            "training %s on %s/%s%s: %d train trials x %d bins, %d units, seed %d, %s",
            method,
            ds.attrs["session"],
            area_name,
            f" (subset {subset['name']})" if subset else "",
            int(train.sum()),
            n_bins,
            n_units,
            seed,
            device_info["device"],
        )
        start = time.perf_counter()
        model.fit(
            rates[train].reshape(-1, n_units),
            None if y is None else y[train].reshape(-1, y.shape[-1]),
            lengths=[n_bins] * int(train.sum()),
        )
        fit_seconds = time.perf_counter() - start
        latent = model.transform(
            rates.reshape(-1, n_units),
            y=y.reshape(-1, y.shape[-1]) if cls.uses_labels_at_transform else None,
            lengths=[n_bins] * n_trials,
        )
    finally:
        if lease is not None:
            lease.release()
    latent = latent.reshape(n_trials, n_bins, -1).astype(np.float32)
    loss = np.asarray(getattr(model, "loss_", np.empty(0)), dtype=np.float64)

    provenance = {
        "session": ds.attrs["session"],
        "area": area_name,
        "seed": int(seed),
        "method": method,
        "code_fingerprint": code_fingerprint,
    }
    if subset is not None:
        provenance.update(subset=subset["name"], subset_spec=ds.attrs["subset_spec"])
    out = embedding_dataset(
        latent=latent,
        loss=loss,
        coords={name: ds[name].variable.load() for name in _CARRIED_COORDS if name in ds.coords},
        attrs=dict(
            **provenance,
            subject=ds.attrs["subject"],
            date=ds.attrs["date"],
            year=int(ds.attrs["year"]),
            hemisphere=ds.attrs["hemisphere"],
            task=ds.attrs["task"],
            bin_size_s=float(ds.attrs["bin_size_s"]),
            params=json.dumps(model.get_params(), sort_keys=True, default=str),
            labels=json.dumps({"columns": list(LABEL_COLUMNS), **labels}, sort_keys=True),
            device=json.dumps(device_info, sort_keys=True),
            iterations=int(loss.size),
            final_loss=float(loss[-1]) if loss.size else float("nan"),
            training_seconds=float(fit_seconds),
            uses_labels_at_transform=bool(cls.uses_labels_at_transform),
            n_units=int(n_units),
            source_sha256=ds.attrs["source_sha256"],
            prepared_code_fingerprint=ds.attrs["code_fingerprint"],
            package_version=__version__,
            versions=versions(),
        ),
        source=source,
    )
    return out, model

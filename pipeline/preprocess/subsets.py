"""Maze trial subsets: the trials of a set of maze conditions, re-split as the paper (NER_METHOD.md §4).

A subset (config ``maze.subsets.<name>``) lists ``trial_types`` and ``versions``: the trials whose
``(trial_type, trial_version)`` is among them. The training stage selects a subset before it fits
(:func:`select_subset`); the maze analysis (:mod:`pipeline.analysis.maze`) scores what was trained on it. This
module sits below both, so that training does not depend on the analysis code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from os import PathLike

import numpy as np
import xarray as xr

from pipeline.errors import InputError

__all__ = ["select_subset", "subset_mask"]


def _maze_coords(ds: xr.Dataset, source) -> tuple[np.ndarray, np.ndarray]:
    for name in ("trial_type", "trial_version"):
        if name not in ds.coords:
            raise InputError(
                source,
                name,
                "not a maze recording: trials have no trial_type/trial_version "
                "(NLB MC_Maze train files have them; the test splits do not)",
            )
    return (np.asarray(ds["trial_type"].values, dtype=np.int64), np.asarray(ds["trial_version"].values, dtype=np.int64))


def subset_mask(ds: xr.Dataset, name: str, spec: Mapping, source: str | PathLike | None = None) -> np.ndarray:
    """Boolean ``(trial,)`` mask of subset ``name`` (``spec``: ``trial_types``, ``versions``).

    Raises:
        InputError: the store has no maze conditions, a listed trial type has no trial of the listed
            versions (the message lists the conditions the session has), or fewer than 5 trials are
            selected (too few for an 80/20 split with two training trials).
    """
    types, versions = _maze_coords(ds, source)
    mask = np.isin(types, spec["trial_types"]) & np.isin(versions, spec["versions"])
    missing = [t for t in spec["trial_types"] if not (mask & (types == t)).any()]
    if missing:
        have = sorted({(int(t), int(v)) for t, v in zip(types, versions)})
        raise InputError(
            source,
            f"maze.subsets.{name}",
            f"trial type(s) {missing} have no trial of version(s) {list(spec['versions'])}; "
            f"the session's (trial_type, trial_version) conditions are {have}",
        )
    if mask.sum() < 5:
        raise InputError(source, f"maze.subsets.{name}", f"selects {int(mask.sum())} trial(s); need at least 5")
    return mask


def select_subset(
    ds: xr.Dataset, name: str, spec: Mapping, *, train_fraction: float, source: str | PathLike | None = None
) -> xr.Dataset:
    """The trials of subset ``name``, re-split as the paper: the first ``int(train_fraction * n)``
    trials of the subset (chronological) train, the rest test. The subset is recorded in the attrs."""
    mask = subset_mask(ds, name, spec, source)
    sub = ds.isel(trial=np.flatnonzero(mask))
    n = sub.sizes["trial"]
    n_train = int(train_fraction * n)
    if n_train < 2 or n_train == n:
        raise InputError(
            source,
            f"maze.subsets.{name}",
            f"{n} trials give {n_train} training and {n - n_train} test trial(s) at train_fraction {train_fraction}",
        )
    split = np.where(np.arange(n) < n_train, "train", "test").astype(object)
    sub = sub.assign_coords(split=("trial", split))
    sub.attrs.update(
        subset=name,
        subset_spec=json.dumps({k: list(map(int, spec[k])) for k in ("trial_types", "versions")}),
        train_fraction=float(train_fraction),
    )
    return sub

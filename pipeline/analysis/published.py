"""The NER authors' published embeddings as decoding cells (NeuroscienceAI/NER ``data_NER`` npz files).

Each file holds one Chewie M1 session embedded by the authors' own trained model: ``cebra_veldir_train``
/ ``cebra_veldir_test`` ``(bins, dim)`` (40-bin trials, train = the first 80 % of the trials in
recording order), ``continuous_index_train`` / ``_test`` ``(bins, 3)`` = ``(10·vx, 10·vy, direction
in degrees)``. Layout and provenance: ``../shared/data/real/ner_paper_results/README.md``. File names
``Chewie_<YYYYMMDD>_M1.npz`` under ``embeddings/<METHOD>/``; 2015 days are the right hemisphere,
2016 days the left (NER_METHOD.md §6.1).
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np

from pipeline.analysis.decoding import Cell, direction_classes
from pipeline.errors import InputError

__all__ = ["BINS_PER_TRIAL", "published_cell", "published_cells"]

#: bins per trial of every published embedding (30 ms bins, 0 ... 1170 ms after the go cue)
BINS_PER_TRIAL = 40
_NAME = re.compile(r"^(?P<subject>[A-Za-z]+)_(?P<date>\d{8})_(?P<area>M1|PMd|S1)\.npz$")
_KEYS = ("cebra_veldir_train", "cebra_veldir_test", "continuous_index_train", "continuous_index_test")


def published_cell(path: str | PathLike, method: str | None = None) -> Cell:
    """One published embedding file as a :class:`Cell` (train + test trials, labels, split).

    Args:
        path: ``<Subject>_<YYYYMMDD>_<area>.npz``.
        method: the method name written in the cell (default: the file's folder, e.g. ``NER``).

    Raises:
        InputError: a file name or array that does not follow the layout (naming the file and key).
    """
    path = Path(path)
    match = _NAME.match(path.name)
    if match is None:
        raise InputError(path, "name", "expected <Subject>_<YYYYMMDD>_<area>.npz")
    with np.load(path) as npz:
        missing = [k for k in _KEYS if k not in npz.files]
        if missing:
            raise InputError(path, missing[0], f"not in the file (keys: {sorted(npz.files)})")
        train, test = npz["cebra_veldir_train"], npz["cebra_veldir_test"]
        labels_train, labels_test = npz["continuous_index_train"], npz["continuous_index_test"]
    for key, latent, labels in (("train", train, labels_train), ("test", test, labels_test)):
        if latent.ndim != 2 or labels.shape != (len(latent), 3) or len(latent) % BINS_PER_TRIAL:
            raise InputError(
                path, f"cebra_veldir_{key}", f"{latent.shape} / labels {labels.shape}: not whole 40-bin trials"
            )
    latent = np.concatenate([train, test]).reshape(-1, BINS_PER_TRIAL, train.shape[1])
    labels = np.concatenate([labels_train, labels_test]).reshape(-1, BINS_PER_TRIAL, 3)
    date = match["date"]
    meta = dict(
        session=date[2:],
        area=match["area"],
        subject=match["subject"],
        year=int(date[:4]),
        hemisphere="right" if date.startswith("2015") else "left",
        method=method or path.parent.name,
        seed=0,
    )
    return Cell(
        date[2:],
        latent.astype(np.float64),
        labels[..., :2].astype(np.float64),
        direction_classes(labels[:, 0, 2]),
        np.arange(len(latent)) < len(train) // BINS_PER_TRIAL,
        0.03 * np.arange(BINS_PER_TRIAL),
        meta=meta,
    )


def published_cells(folder: str | PathLike, method: str) -> list[Cell]:
    """Every ``embeddings/<method>/*.npz`` of a published-results folder, in date order.

    Raises:
        InputError: no such file.
    """
    files = sorted(Path(folder, "embeddings", method).glob("*.npz"))
    if not files:
        raise InputError(Path(folder, "embeddings", method), "embeddings", "no published embedding (*.npz) here")
    return [published_cell(f) for f in files]

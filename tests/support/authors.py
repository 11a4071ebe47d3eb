"""The NER authors' own embeddings (../shared/data/real/ner_paper_results) as decoding cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.analysis.decoding import Cell, direction_classes
from tests.support.paths import REAL

#: the authors' results folder: embeddings per method and session, their score tables
RESULTS = REAL / "ner_paper_results"


def authors_cell(method: str, date: str, results: str | Path = RESULTS) -> Cell:
    """Chewie's M1 cell of one day from the authors' npz: train + test embeddings, 40-bin trials, labels
    (10·vx, 10·vy) and the direction class of the target angle (degrees).

    Args:
        method: the folder of ``embeddings/`` (``NER``, ``CEBRA3D``...).
        date: ``YYMMDD`` (``161007``); 2015 days are the right hemisphere.
        results: the authors' results folder.
    """
    d = np.load(Path(results) / "embeddings" / method / f"Chewie_20{date}_M1.npz")
    latent = np.concatenate([d["cebra_veldir_train"], d["cebra_veldir_test"]]).reshape(-1, 40, 3)
    labels = np.concatenate([d["continuous_index_train"], d["continuous_index_test"]]).reshape(-1, 40, 3)
    train = np.arange(len(latent)) < len(d["cebra_veldir_train"]) // 40
    meta = dict(
        session=date,
        area="M1",
        subject="Chewie",
        year=2000 + int(date[:2]),
        hemisphere="right" if date.startswith("15") else "left",
        method=method,
        seed=0,
    )
    return Cell(
        date, latent, labels[..., :2], direction_classes(labels[:, 0, 2]), train, 0.03 * np.arange(40), meta=meta
    )

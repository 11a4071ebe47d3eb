"""The NER authors' own embeddings (../shared/data/real/ner_paper_results) as decoding cells."""

from __future__ import annotations

from pathlib import Path

from pipeline.analysis.decoding import Cell
from pipeline.analysis.published import published_cell
from tests.support.paths import REAL

#: the authors' results folder: embeddings per method and session, their score tables
RESULTS = REAL / "ner_paper_results"


def authors_cell(method: str, date: str, results: str | Path = RESULTS) -> Cell:
    """Chewie's M1 cell of one day (``YYMMDD``, e.g. ``161007``) from the authors' npz of ``method``
    (the folder of ``embeddings/``: ``NER``, ``CEBRA3D``) (:func:`pipeline.analysis.published.published_cell`)."""
    return published_cell(Path(results) / "embeddings" / method / f"Chewie_20{date}_M1.npz")

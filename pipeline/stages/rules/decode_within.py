"""rule decode_within: embedding and prepared stores -> the within-session score tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.crossdecode import decoder_specs, within_table
from pipeline.analysis.decoding import Cell
from pipeline.data.tables import write_table


def run(
    cells: Sequence[tuple[str | PathLike, str | PathLike]],
    decoding: Mapping,
    scores_out: str | PathLike,
    accuracy_out: str | PathLike,
) -> pd.DataFrame:
    """rule decode_within: every cell of one method and seed, in-sample and held-out
    (:func:`pipeline.analysis.crossdecode.within_table`); ``cells`` holds each cell's (embedding store,
    prepared store) (:meth:`pipeline.stages.plan.Plan.within_pairs`)."""
    scores, accuracy = within_table(Cell.load_all(cells), decoder_specs(decoding))
    write_table(scores, scores_out)
    write_table(accuracy, accuracy_out)
    return scores

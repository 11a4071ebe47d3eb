"""rule cross_decode: embedding and prepared stores -> the decode matrices of one group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis import crossdecode
from pipeline.analysis.decoding import Cell
from pipeline.data.tables import write_table


def run(
    cells: Sequence[tuple[str | PathLike, str | PathLike]],
    decoding: Mapping,
    group: str,
    scores_out: str | PathLike,
    accuracy_out: str | PathLike,
) -> pd.DataFrame:
    """rule cross_decode: the decode matrices of one comparison group, method and seed
    (:func:`pipeline.analysis.crossdecode.cross_decode`); ``cells`` in matrix order."""
    specs = crossdecode.decoder_specs(decoding)
    scores, accuracy = crossdecode.cross_decode(
        Cell.load_all(cells),
        specs,
        group=group,
        alignments=decoding["alignments"],
    )
    write_table(scores, scores_out)
    write_table(accuracy, accuracy_out)
    return scores

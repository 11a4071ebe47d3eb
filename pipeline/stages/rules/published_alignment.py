"""rule published_alignment: the authors' published embeddings -> every alignment variant's scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.crossdecode import cross_decode
from pipeline.analysis.decoding import DecoderSpec
from pipeline.analysis.published import published_cells
from pipeline.data.tables import write_table
from pipeline.report import plots

#: the published methods this evaluates (folders of ``embeddings/``)
PUBLISHED_METHODS = ("NER", "CEBRA3D")


def run(
    folder: str | PathLike,
    outputs: Mapping[str, str | PathLike],
    *,
    alignments: Sequence[str],
    methods: Sequence[str] = PUBLISHED_METHODS,
) -> pd.DataFrame:
    """rule published_alignment: every ordered pair of each method's published sessions decoded with
    the linear decoder under every alignment variant (:func:`pipeline.analysis.crossdecode.cross_decode`:
    the label-free and few-shot variants beside the paper's), the table and the figure.

    Args:
        folder: the published-results folder (``embeddings/<METHOD>/<Subject>_<YYYYMMDD>_<area>.npz``).
        outputs: paths ``scores``, ``figure``.
        alignments: the variants (config ``decoding.alignments``).
        methods: the folders of ``embeddings/`` to evaluate.
    """
    scores = pd.concat(
        [
            cross_decode(
                published_cells(folder, method),
                [DecoderSpec("linear")],
                group=f"published_{method.lower()}",
                alignments=alignments,
            )[0]
            for method in methods
        ],
        ignore_index=True,
    )
    write_table(scores, outputs["scores"])
    plots.plot_alignment_curve(scores, outputs["figure"])
    return scores

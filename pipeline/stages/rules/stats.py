"""rules stats_within and stats_group: score tables -> the tests and the block summary."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import pandas as pd

from pipeline.analysis.stats import all_statistics, block_summary
from pipeline.data.tables import read_tables, write_table


def run(score_paths: Sequence[str | PathLike], tests_out: str | PathLike, blocks_out: str | PathLike) -> pd.DataFrame:
    """rules stats_within and stats_group: the tests (:func:`pipeline.analysis.stats.all_statistics`) and
    the block summary (:func:`pipeline.analysis.stats.block_summary`) of decode score tables."""
    scores = read_tables(score_paths, "scores")
    source = ", ".join(map(str, score_paths))
    tests = all_statistics(scores, source=source)
    write_table(tests, tests_out)
    write_table(block_summary(scores, source=source), blocks_out)
    return tests

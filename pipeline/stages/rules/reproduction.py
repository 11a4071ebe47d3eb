"""rule reproduction: score and block tables -> the paper-reproduction table."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import pandas as pd

from pipeline.data.tables import read_tables, write_table
from pipeline.report.reproduction import BLOCK_COLUMNS, reproduction_table, to_markdown


def run(
    within_paths: Sequence[str], block_paths: Sequence[str], tsv_out: str | PathLike, md_out: str | PathLike
) -> pd.DataFrame:
    """rule reproduction: :func:`pipeline.report.reproduction.reproduction_table` as TSV and markdown."""
    within = read_tables(within_paths, "within-session tables (is any method enabled?)")
    blocks = read_tables(block_paths, "block summaries") if block_paths else pd.DataFrame(columns=BLOCK_COLUMNS)
    table = reproduction_table(within, blocks)
    write_table(table, tsv_out, float_format="%.6g")
    write_table(to_markdown(table), md_out)
    return table

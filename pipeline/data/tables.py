"""Reading and writing the tidy TSV tables of the decoding, statistics and reproduction stages.

One reader (concatenate a rule's input tables) and one writer (atomic: :mod:`pipeline.data.atomic`, so a
failed job never leaves a partial table).
Column meanings: ``docs/tables.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from pipeline.data.atomic import atomic_path
from pipeline.errors import InputError

__all__ = ["read_tables", "write_table"]


def read_tables(paths: Sequence[str | PathLike], field: str = "tables") -> pd.DataFrame:
    """Concatenate tidy TSVs into one frame.

    Raises:
        InputError: no path given (``field`` names what was expected).
    """
    if not paths:
        raise InputError(None, field, "no tables to read")
    return pd.concat([pd.read_csv(p, sep="\t") for p in paths], ignore_index=True)


def write_table(table: pd.DataFrame | str, out: str | PathLike, *, float_format: str = "%.10g") -> Path:
    """Write a frame as TSV (or text as is) atomically; creates the parent folder."""
    out = Path(out)
    with atomic_path(out) as tmp:
        if isinstance(table, str):
            tmp.write_text(table)
        else:
            table.to_csv(tmp, sep="\t", index=False, float_format=float_format)
    return out

"""One error type for bad input, so every stage reports problems the same way.

A user who points the pipeline at a wrong file should read *which file* and *which field* is wrong
in one line, without a traceback through pynwb or zarr internals.
"""

from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """Bad input data or configuration.

    Args:
        source: the file (or config/sheet) the problem was found in.
        field: the field, column, variable or config key at fault.
        problem: what is wrong, in words a user can act on.
    """

    def __init__(self, source: str | PathLike | None, field: str | None, problem: str):
        self.source = str(source) if source is not None else None
        self.field = field
        self.problem = problem
        where = self.source or "<input>"
        what = f" [{field}]" if field else ""
        super().__init__(f"{where}{what}: {problem}")

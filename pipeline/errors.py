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
        self.problem = " ".join(str(problem).split())  # one line, whatever a library put in it
        where = self.source or "<input>"
        what = f" [{field}]" if field else ""
        super().__init__(f"{where}{what}: {self.problem}")


def schema_problem(error) -> tuple[list, str]:
    """The path (keys from the validated document's root) and the words of a JSON-schema validation
    error (a ``jsonschema.ValidationError``, typically ``best_match``'s), made specific:

    - an ``anyOf`` (one value for every area, or ``{area: value}``) reports the failure inside the
      alternative of the value's own kind instead of "not valid under any of the given schemas";
    - an unknown key (``additionalProperties``) or a key outside ``propertyNames`` is named in the path.
    """
    while error.validator in ("anyOf", "oneOf") and error.context:
        kind = "object" if isinstance(error.instance, dict) else "array" if isinstance(error.instance, list) else None
        inner = [e for e in error.context if e.validator != "type"] or list(error.context)
        if kind is not None:  # the alternative whose type matches the value
            matching = [e for e in inner if e.schema_path and _branch_type(error, e) == kind]
            inner = matching or inner
        error = min(inner, key=lambda e: (-len(e.absolute_path), e.validator == "type"))
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - known)
        if unknown:
            listing = f" (known: {', '.join(sorted(known))})" if known else ""
            return [*path, unknown[0]], f"unknown key {unknown[0]!r}{listing}"
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        allowed = error.schema.get("enum")
        listing = f" (allowed: {', '.join(map(str, allowed))})" if allowed else ""
        return [*path, error.instance], f"unknown key {error.instance!r}{listing}"
    return path, error.message


def _branch_type(parent, child) -> str | None:
    """The ``type`` of the ``anyOf`` alternative a context error ``child`` of ``parent`` came from."""
    branches = parent.schema.get(parent.validator, [])
    index = child.relative_schema_path[0] if child.relative_schema_path else None
    if not isinstance(index, int) or index >= len(branches):
        return None
    branch = branches[index]
    resolved = child.schema if "$ref" in branch else branch
    return branch.get("type") or resolved.get("type")

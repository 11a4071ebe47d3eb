"""Checks every reader applies to what it found, so that a convention the file does not state is never
guessed: target directions in their declared unit, spike counts as non-negative whole numbers, trial ids
unique. Each failure is one :class:`~pipeline.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

#: ``direction_units`` a reader accepts: the format's documented convention, or a declared unit
DIRECTION_UNITS = ("default", "deg", "rad")
_TWO_PI = 2 * np.pi + 1e-6


def direction_degrees(
    values, unit: str, path: str | PathLike, field: str, *, default: str, option: str = "readers.direction_units"
) -> tuple[np.ndarray, str]:
    """Target directions in degrees, from values declared to be in ``unit`` (``default``: the format's
    convention ``default``), refusing values that cannot be in that unit.

    Radians must lie within ±2π. Degrees must lie within ±360, and a set of at least three distinct,
    not all whole values that all lie within ±2π is refused as radians written where degrees belong
    (reach targets in degrees that close to zero do not occur). NaN (a trial without a target) passes.

    Returns:
        (degrees modulo 360, a description of the source such as ``"target_dir (rad)"``).

    Raises:
        InputError: naming ``field`` for non-numbers, an unknown unit or values outside its range.
    """
    if unit not in DIRECTION_UNITS:
        raise InputError(path, option, f"unknown direction unit {unit!r} (known: {', '.join(DIRECTION_UNITS)})")
    unit = default if unit == "default" else unit
    try:
        raw = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        kinds = sorted({type(v).__name__ for v in np.ravel(np.asarray(values, dtype=object))})
        raise InputError(path, field, f"target directions must be numbers, found {', '.join(kinds)}") from None
    finite = raw[np.isfinite(raw)]
    if np.isinf(raw).any():
        raise InputError(path, field, "target directions contain inf")
    if unit == "rad" and finite.size and np.abs(finite).max() > _TWO_PI:
        raise InputError(
            path,
            field,
            f"values up to {np.abs(finite).max():.4g} are outside ±2π, so not radians as declared "
            f"({option}: rad); if they are degrees, set {option}: deg",
        )
    if unit == "deg":
        if finite.size and np.abs(finite).max() > 360 + 1e-6:
            raise InputError(path, field, f"values up to {np.abs(finite).max():.4g} are outside ±360 degrees")
        distinct = np.unique(finite)
        if distinct.size >= 3 and np.abs(distinct).max() <= _TWO_PI and not np.all(distinct == np.round(distinct)):
            raise InputError(
                path,
                field,
                f"every value lies within ±2π ({distinct.size} distinct, e.g. {distinct[1]:.4g}): these look like "
                f"radians, but the unit is degrees; set {option}: rad if they are",
            )
    deg = np.degrees(raw) if unit == "rad" else raw
    return np.mod(deg, 360.0), f"{field.rsplit('.', 1)[-1]} ({unit})"


def recording_file(path: str | PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` that names an existing file.

    Raises:
        InputError: the path is a directory, or does not exist (field ``path``).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "path", "is a directory, not a recording file")
    if not path.is_file():
        raise InputError(path, "path", "file not found")
    return path


def spike_counts(values, path: str | PathLike, field: str) -> np.ndarray:
    """Binned spike counts as ``uint16``, refusing what a count cannot be (negative, fractional, NaN or
    beyond 65 535 per bin) instead of wrapping or truncating it."""
    counts = np.asarray(values)
    if counts.dtype.kind not in "iufb":
        raise InputError(path, field, f"spike counts must be numbers, found dtype {counts.dtype}")
    if counts.dtype.kind == "f":
        if not np.isfinite(counts).all():
            raise InputError(path, field, "spike counts contain NaN or inf")
        if np.any(counts != np.round(counts)):
            bad = counts[counts != np.round(counts)].ravel()[0]
            raise InputError(
                path, field, f"spike counts must be whole numbers, found {bad:g} (rates or smoothed data?)"
            )
    if counts.size and counts.min() < 0:
        raise InputError(path, field, f"spike counts must be >= 0, found {counts.min():g}")
    if counts.size and counts.max() > np.iinfo(np.uint16).max:
        raise InputError(path, field, f"{counts.max():g} spikes in one bin exceeds 65535")
    return counts.astype(np.uint16)


def unique_trial_ids(ids, path: str | PathLike, field: str) -> np.ndarray:
    """Trial ids as int64, refusing duplicates (which would silently merge or reorder trials)."""
    ids = np.asarray(ids, dtype=np.int64)
    values, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise InputError(path, field, f"duplicate trial ids {values[counts > 1][:5].tolist()}")
    return ids

"""Movement labels of the embedding methods, built from a prepared store (NER_METHOD.md section 2.1).

Center-out sessions: ``(scale * vx, scale * vy, theta)`` per bin, with ``scale = 10`` and ``theta``
the trial's target direction in degrees (0, 45, ..., 315), constant within a trial. The x10 is what
balances velocity against the 0-180 degree circular angle term of the label distance.

Maze sessions: ``(vx, vy, 0)`` as the paper (angle column zero, velocity unscaled): the target
direction of a maze reach says nothing about the path taken.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.errors import InputError

__all__ = ["LABEL_COLUMNS", "movement_labels"]

#: Names of the label columns, in order.
LABEL_COLUMNS = ("vx", "vy", "direction_deg")


def movement_labels(
    ds: xr.Dataset, *, velocity_scale: float = 10.0, use_direction: bool = True, maze_velocity_scale: float = 1.0
) -> np.ndarray:
    """``(trial, bin, 3)`` float64 labels of a prepared store.

    Args:
        ds: a prepared store (``velocity(trial, bin, axis)``, ``direction(trial)``, ``attrs.task``).
        velocity_scale: factor on velocity for center-out sessions (the paper: 10).
        use_direction: third column = target direction (degrees) for center-out sessions; zero
            otherwise.
        maze_velocity_scale: factor on velocity for maze sessions (the paper: 1).

    Raises:
        InputError: the store has no finite velocity or direction where needed (names the session
            and the field).
    """
    source = ds.attrs.get("session", "prepared store")
    velocity = np.asarray(ds["velocity"].values, dtype=np.float64)
    if not np.isfinite(velocity).all():
        raise InputError(source, "velocity", "labels need finite hand velocity in every bin")
    maze = ds.attrs.get("task") == "maze"
    scale = maze_velocity_scale if maze else velocity_scale
    labels = np.zeros(velocity.shape[:2] + (3,), dtype=np.float64)
    labels[..., :2] = scale * velocity
    if use_direction and not maze:
        direction = np.asarray(ds["direction"].values, dtype=np.float64)
        if not np.isfinite(direction).all():
            raise InputError(source, "direction", "labels need a target direction for every trial")
        labels[..., 2] = np.mod(direction, 360.0)[:, None]
    return labels

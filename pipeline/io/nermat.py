"""Reader for the NER paper's preprocessed ``*_neural_con_dis_index.mat`` files.

These are already binned (30 ms), Gaussian-smoothed (sd 45 ms) and cut from the go cue: rows are
trials concatenated in recording order, ``t_dur`` rows per trial (stored in Han files, 40 for Chewie).
Variables: ``neural_M1`` / ``neural_PMd`` / ``neural_S1`` (rows × units), ``continuous_index``
(rows × 2 hand velocity, cm/s), ``discrete_index`` (rows, target direction in degrees).
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import scipy.io
import xarray as xr

from pipeline.data.store import aligned_dataset
from pipeline.errors import InputError
from pipeline.io.checks import direction_degrees, recording_file

BIN_SIZE_S = 0.03
SMOOTHING_SD_S = 0.045
_AREA_VARS = {"M1": "neural_M1", "PMd": "neural_PMd", "S1": "neural_S1"}


def read_nermat(
    path: str | PathLike,
    areas: list[str] | None = None,
    *,
    trial_bins: int | None = None,
    direction_units: str = "default",
) -> xr.Dataset:
    """Read one paper session into the ``aligned`` ingest layout (go cue at bin 0 of every trial).

    Args:
        path: the ``.mat`` file.
        areas: areas to keep (default: every ``neural_*`` variable present).
        trial_bins: rows per trial when the file has no ``t_dur`` (the paper used 40 for Chewie).
        direction_units: unit of ``discrete_index``: ``"default"`` (degrees, as the paper's files) or
            ``"rad"``; values outside the unit's range are refused (radians read as degrees would put
            every trial in direction class 0).

    Raises:
        InputError: naming the file and the variable at fault (missing variables, a row count that
            is not a multiple of the trial length, a direction that changes within a trial, NaNs).
    """
    path = recording_file(path)
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True)
    except Exception as exc:
        raise InputError(path, None, f"not a readable MATLAB file: {exc}") from exc
    found = [a for a, var in _AREA_VARS.items() if var in mat]
    wanted = areas if areas is not None else found
    missing = [a for a in wanted if a not in found]
    if missing:
        raise InputError(path, "areas", f"area(s) {missing} not in the file (it has {found})")
    for var in ("continuous_index", "discrete_index"):
        if var not in mat:
            raise InputError(path, var, "missing variable")
    velocity = np.asarray(mat["continuous_index"], dtype=np.float64)
    direction, direction_source = direction_degrees(
        np.ravel(mat["discrete_index"]), direction_units, path, "discrete_index", default="deg"
    )
    n_rows = len(direction)
    if "t_dur" in mat:
        t_dur = int(mat["t_dur"])
    elif trial_bins is not None:
        t_dur = int(trial_bins)
    else:
        raise InputError(path, "t_dur", "no t_dur in the file; give the trial length (window_bins) in the sheet")
    if velocity.shape != (n_rows, 2):
        raise InputError(path, "continuous_index", f"shape {velocity.shape}, expected ({n_rows}, 2)")
    if n_rows % t_dur:
        raise InputError(path, "t_dur", f"{n_rows} rows are not a whole number of {t_dur}-bin trials")
    n_trials = n_rows // t_dur
    blocks = direction.reshape(n_trials, t_dur)
    bad = np.flatnonzero(np.any(blocks != blocks[:, :1], axis=1))
    if bad.size:
        raise InputError(
            path, "discrete_index", f"direction changes within trial {int(bad[0])}: the trial length {t_dur} is wrong"
        )
    rates, unit_area = [], []
    for area in wanted:
        data = np.asarray(mat[_AREA_VARS[area]], dtype=np.float32)
        if data.ndim != 2 or data.shape[0] != n_rows:
            raise InputError(path, _AREA_VARS[area], f"shape {data.shape}, expected ({n_rows}, units)")
        if not np.all(np.isfinite(data)):
            raise InputError(path, _AREA_VARS[area], "contains NaN or inf")
        rates.append(data.reshape(n_trials, t_dur, -1))
        unit_area += [area] * data.shape[1]
    counts = np.concatenate(rates, axis=2)
    unit_label = [f"{a}:{i}" for a in wanted for i in range(int((np.array(unit_area) == a).sum()))]
    return aligned_dataset(
        counts=counts,
        n_bins=np.full(n_trials, t_dur, dtype=np.int64),
        velocity=velocity.reshape(n_trials, t_dur, 2),
        event_bins={
            "go_cue_bin": np.zeros(n_trials, dtype=np.int64),
            "move_onset_bin": np.full(n_trials, -1, dtype=np.int64),
            "target_on_bin": np.full(n_trials, -1, dtype=np.int64),
        },
        trial=np.arange(n_trials, dtype=np.int64),
        unit=np.array(unit_label, dtype=object),
        area=np.array(unit_area, dtype=object),
        direction=blocks[:, 0],
        direction_source=direction_source,
        rewarded=np.ones(n_trials, dtype=bool),
        bin_size_s=BIN_SIZE_S,
        smoothed=True,
        attrs={"reader": "nermat", "smoothing_sd_s": SMOOTHING_SD_S},
        source=path,
    )

"""Reader for Miller-lab TrialData ``.mat`` files (the ``td`` / ``trial_data`` struct array).

TrialData is already cut into trials and binned (``bin_size``, usually 10 ms); per trial it holds
``{array}_spikes`` (bins × units counts, e.g. ``M1_spikes``, ``PMd_spikes``, ``LeftS1_spikes``),
``vel``/``pos`` (bins × 2, cm/s and cm), 1-based event indices (``idx_goCueTime``,
``idx_movement_on``, ``idx_tgtOnTime``; NaN when the event is outside the window), the target
direction (``target_direction`` in radians, or ``tgtDir`` in degrees) and ``result`` ("R" = rewarded).
Trials may differ in length; they are padded to the longest with ``n_bins`` recording the valid bins.
MATLAB v7.3 (HDF5) files are not read: re-save them with ``save(..., '-v7')``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import scipy.io
import xarray as xr

from pipeline.data.store import aligned_dataset
from pipeline.errors import InputError
from pipeline.io.checks import direction_degrees, recording_file, spike_counts, unique_trial_ids
from pipeline.io.nwb import normalise_area

_STRUCT_NAMES = ("td", "trial_data", "trialData")
_EVENT_FIELDS = {
    "go_cue": ("idx_goCueTime", "idx_go_cue"),
    "move_onset": ("idx_movement_on", "idx_movementOnset", "idx_movement_onset"),
    "target_on": ("idx_tgtOnTime", "idx_targetOnTime", "idx_target_on"),
}


def _load_struct(path: Path, variable: str | None):
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as exc:
        raise InputError(path, None, "MATLAB v7.3 (HDF5) files are not supported; re-save with -v7") from exc
    except Exception as exc:
        raise InputError(path, None, f"not a readable MATLAB file: {exc}") from exc
    names = [variable] if variable else [n for n in _STRUCT_NAMES if n in mat]
    if not names:
        names = [k for k, v in mat.items() if not k.startswith("__") and getattr(v, "dtype", None) == np.dtype(object)]
    if not names or names[0] not in mat:
        raise InputError(path, variable or "td", "no TrialData struct array found")
    td = np.atleast_1d(mat[names[0]])
    if td.size == 0 or not hasattr(td[0], "_fieldnames"):
        raise InputError(path, names[0], "is not a struct array of trials")
    return names[0], td


def _field(path, name, trial, field, index):
    if not hasattr(trial, field):
        raise InputError(path, f"{name}({index + 1}).{field}", "missing field")
    return getattr(trial, field)


def read_trialdata(
    path: str | PathLike,
    areas: list[str] | None = None,
    *,
    variable: str | None = None,
    direction_units: str = "default",
) -> xr.Dataset:
    """Read a TrialData file into the ``aligned`` ingest layout (see :mod:`pipeline.data.store`).

    Args:
        path: the ``.mat`` file.
        areas: areas to keep; each must have a ``*_spikes`` field.
        variable: name of the struct array (default: ``td``/``trial_data``, else the only struct).
        direction_units: unit of the direction field: ``"default"`` (``target_direction`` radians,
            ``tgtDir`` degrees, the TrialData conventions), ``"deg"`` or ``"rad"``; values outside the
            unit's range are refused.

    Raises:
        InputError: naming the file and the struct field at fault.
    """
    path = recording_file(path)
    name, td = _load_struct(path, variable)
    fields = td[0]._fieldnames
    arrays = {f[: -len("_spikes")]: normalise_area(f[: -len("_spikes")]) for f in fields if f.endswith("_spikes")}
    found = sorted(set(arrays.values()))
    wanted = areas if areas is not None else found
    missing = [a for a in wanted if a not in found]
    if missing:
        raise InputError(path, "areas", f"area(s) {missing} not in the file (its *_spikes fields give {found})")
    use = [prefix for prefix, area in arrays.items() if area in wanted]

    n_trials = len(td)
    lengths = np.zeros(n_trials, dtype=np.int64)
    for i, t in enumerate(td):
        vel = np.asarray(_field(path, name, t, "vel", i))
        if vel.ndim != 2 or vel.shape[1] < 2:
            raise InputError(path, f"{name}({i + 1}).vel", f"shape {vel.shape}, expected (bins, 2): x and y velocity")
        lengths[i] = vel.shape[0]
    n_max = int(lengths.max())
    bin_sizes = {float(_field(path, name, t, "bin_size", i)) for i, t in enumerate(td)}
    if len(bin_sizes) != 1:
        raise InputError(path, f"{name}.bin_size", f"trials disagree on the bin size: {sorted(bin_sizes)}")

    blocks, unit_area, unit_label = [], [], []
    for prefix in use:
        first = np.atleast_2d(getattr(td[0], f"{prefix}_spikes"))
        n_units = first.shape[1]
        block = np.zeros((n_trials, n_max, n_units), dtype=np.uint16)
        for i, t in enumerate(td):
            field = f"{name}({i + 1}).{prefix}_spikes"
            counts = spike_counts(np.atleast_2d(_field(path, name, t, f"{prefix}_spikes", i)), path, field)
            if counts.shape != (lengths[i], n_units):
                raise InputError(
                    path,
                    field,
                    f"shape {counts.shape}, expected ({lengths[i]}, {n_units})",
                )
            block[i, : lengths[i]] = counts
        blocks.append(block)
        guide = getattr(td[0], f"{prefix}_unit_guide", None)
        labels = (
            [f"{prefix}:{int(e)}.{int(u)}" for e, u in np.atleast_2d(guide)]
            if guide is not None and np.size(guide)
            else [f"{prefix}:{k}" for k in range(n_units)]
        )
        unit_area += [arrays[prefix]] * n_units
        unit_label += labels
    counts = np.concatenate(blocks, axis=2)

    def kinematic(field):
        if not hasattr(td[0], field):
            return None
        out = np.full((n_trials, n_max, 2), np.nan)
        for i, t in enumerate(td):
            out[i, : lengths[i]] = np.atleast_2d(getattr(t, field))[:, :2]
        return out

    velocity = kinematic("vel")
    if velocity is None:
        raise InputError(path, f"{name}.vel", "no hand velocity field")
    position = kinematic("pos")

    events = {}
    for event, candidates in _EVENT_FIELDS.items():
        field = next((f for f in candidates if f in fields), None)
        idx = np.full(n_trials, -1, dtype=np.int64)
        if field is not None:
            raw = np.array(
                [np.nan if np.size(getattr(t, field)) == 0 else float(np.atleast_1d(getattr(t, field))[0]) for t in td]
            )
            ok = np.isfinite(raw)
            idx[ok] = raw[ok].astype(np.int64) - 1  # 1-based MATLAB index -> 0-based bin
        events[f"{event}_bin"] = idx

    field = next((f for f in ("target_direction", "tgtDir") if f in fields), None)
    if field is not None:
        values = [np.nan if np.size(getattr(t, field)) == 0 else getattr(t, field) for t in td]
        direction, direction_source = direction_degrees(
            values, direction_units, path, f"{name}.{field}", default="rad" if field == "target_direction" else "deg"
        )
    else:
        raise InputError(path, f"{name}.target_direction", "no target direction field (target_direction/tgtDir)")
    result = np.array([str(t.result).strip() for t in td], dtype=object) if "result" in fields else None
    trial_ids = (
        unique_trial_ids([t.trial_id for t in td], path, f"{name}.trial_id")
        if "trial_id" in fields
        else np.arange(n_trials, dtype=np.int64)
    )
    if np.any(np.diff(trial_ids) < 0):  # the chronological split follows trial order: ids give it
        raise InputError(
            path,
            f"{name}.trial_id",
            "trials are not in trial-id order; the train/test split is chronological, so sort the struct by "
            "trial_id (or by time) first",
        )

    meta = {f"trialdata_{k}": str(getattr(td[0], k)) for k in ("monkey", "date", "task") if k in fields}
    return aligned_dataset(
        counts=counts,
        n_bins=lengths,
        velocity=velocity,
        event_bins=events,
        trial=trial_ids,
        unit=np.array(unit_label, dtype=object),
        area=np.array(unit_area, dtype=object),
        direction=direction,
        direction_source=direction_source,
        rewarded=result == "R" if result is not None else np.ones(n_trials, bool),
        result=result,
        position=position,
        bin_size_s=bin_sizes.pop(),
        smoothed=False,
        attrs={"reader": "trialdata", "trialdata_variable": name, **meta},
        source=path,
    )

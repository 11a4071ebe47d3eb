"""NWB reader for the NLB (MC_Maze family, Area2_Bump) and DANDI 000688 (Perich/Miller) layouts.

Everything is materialised inside one ``with NWBHDF5IO(...)`` block (lazy pynwb datasets die with
their IO object). Spike times come in two bulk reads (flat times + end offsets), never one read per
unit, and only the trial columns we use are read.

Areas: a unit's area is the ``location`` of its electrodes row, except for the MC_Maze files (lab
Shenoy, unit ids 1000-2999), whose ``units/electrodes`` holds the row *within* each 96-channel array so
that every unit looks like PMd; there the unit-id prefix gives the area (1xxx = PMd, 2xxx = M1; M1 rows
are offset by 96) and the electrodes' ``location``, where present, must agree with it.
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import xarray as xr

from pipeline.data.store import INGEST_EVENTS, MAZE_COORDS, spikes_dataset
from pipeline.errors import InputError
from pipeline.io.checks import direction_degrees, recording_file, unique_trial_ids

_VELOCITY_SERIES = ("hand_vel", "cursor_vel")
_POSITION_SERIES = ("hand_pos", "cursor_pos")
_VELOCITY_UNITS = {"cm/s": 1.0, "mm/s": 0.1, "m/s": 100.0, "cm s-1": 1.0, "mm s-1": 0.1, "m s-1": 100.0}
_POSITION_UNITS = {"cm": 1.0, "mm": 0.1, "m": 100.0, "centimeters": 1.0, "millimeters": 0.1, "meters": 100.0}
_AREA_ALIASES = {
    "m1": "M1",
    "pmd": "PMd",
    "s1": "S1",
    "area2": "S1",
    "s1area2": "S1",
    "area 2": "S1",
    "primary motor cortex": "M1",
    "dorsal premotor cortex": "PMd",
    "primary somatosensory cortex (area 2)": "S1",
}
_MAZE_PREFIX_AREA = {1: "PMd", 2: "M1"}


def normalise_area(name: str) -> str:
    """Map electrode locations / TrialData prefixes (``LeftS1Area2``, ``area2``, ``m1``) to M1/PMd/S1."""
    key = name.strip()
    for side in ("Left", "Right", "left", "right"):
        if key.startswith(side) and len(key) > len(side):
            key = key[len(side) :]
    return _AREA_ALIASES.get(key.lower().lstrip("_"), key)


def _short(exc: Exception, limit: int = 240) -> str:
    """A library exception in a few words: pynwb's ConstructError prints the whole HDF5 tree before
    saying what is wrong, after its last "Could not construct"."""
    text = str(exc)
    if "Could not construct" in text:
        text = "could not construct" + text.rsplit("Could not construct", 1)[-1].rstrip("')\"")
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _uses_maze_prefix(lab: str | None, unit_ids: np.ndarray) -> bool:
    """True for MC_Maze files (the Shenoy lab's NLB releases), whose unit ids encode the array (1xxx PMd,
    2xxx M1). Ids in that range alone do not make a file MC_Maze: any lab's ids may lie there."""
    four_digit = len(unit_ids) > 0 and bool(np.all((unit_ids >= 1000) & (unit_ids < 3000)))
    return (lab or "").strip().lower() == "shenoy" and four_digit


def unit_areas(path, unit_ids, electrode_rows, locations, lab) -> tuple[np.ndarray, np.ndarray]:
    """Area and global electrodes-table row of every unit (see the module docstring for MC_Maze).

    Raises:
        InputError: no electrodes table (outside MC_Maze), rows outside it, or an MC_Maze unit whose
            id prefix and electrode ``location`` name different areas.
    """
    unit_ids = np.asarray(unit_ids)
    rows = np.asarray(electrode_rows, dtype=np.int64).copy()
    if _uses_maze_prefix(lab, unit_ids):
        prefix = unit_ids // 1000
        if not set(np.unique(prefix)) <= set(_MAZE_PREFIX_AREA):
            raise InputError(path, "units.id", f"MC_Maze unit-id prefixes {sorted(set(prefix))} not in {{1, 2}}")
        areas = np.array([_MAZE_PREFIX_AREA[p] for p in prefix], dtype=object)
        if len(locations) == 192:
            rows = np.where((prefix == 2) & (rows < 96), rows + 96, rows)
        if len(locations) and rows.size and rows.min() >= 0 and rows.max() < len(locations):
            located = np.array([normalise_area(str(locations[r])) for r in rows], dtype=object)
            bad = np.flatnonzero(located != areas)
            if bad.size:
                i = bad[0]
                raise InputError(
                    path,
                    "general/extracellular_ephys/electrodes.location",
                    f"unit {unit_ids[i]}: its MC_Maze id prefix says {areas[i]} but its electrode's location says "
                    f"{located[i]} ({bad.size} unit(s) disagree)",
                )
        return areas, rows
    if len(locations) == 0:
        raise InputError(
            path, "general/extracellular_ephys/electrodes.location", "no electrodes table, so unit areas are unknown"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= len(locations)):
        raise InputError(path, "units.electrodes", "electrode rows outside the electrodes table")
    areas = np.array([normalise_area(str(locations[r])) for r in rows], dtype=object)
    return areas, rows


def _behaviour_series(nwb) -> dict:
    """Every TimeSeries under ``processing/behavior``, containers flattened (``Velocity/cursor_vel``)."""
    if "behavior" not in nwb.processing:
        return {}
    found = {}
    for name, obj in nwb.processing["behavior"].data_interfaces.items():
        inner = getattr(obj, "time_series", None) or getattr(obj, "spatial_series", None)
        if inner:
            for sub_name, ts in inner.items():
                found[sub_name] = (f"{name}/{sub_name}", ts)
        elif hasattr(obj, "data"):
            found[name] = (name, obj)
    return found


def _read_series(path, label, ts, units_table) -> tuple[np.ndarray, np.ndarray]:
    unit = (ts.unit or "").strip()
    if unit not in units_table:
        raise InputError(
            path, f"processing/behavior/{label}.unit", f"unknown unit {unit!r} (known: {sorted(units_table)})"
        )
    # one factor (source unit -> cm), applied once: metres read back as x * 100, not x * 1.0 * 100
    data = np.asarray(ts.data[:], dtype=np.float64) * (float(ts.conversion or 1.0) * units_table[unit])
    if data.ndim != 2 or data.shape[1] < 2:
        raise InputError(path, f"processing/behavior/{label}", f"expected (samples, >=2) data, got {data.shape}")
    if ts.timestamps is not None:
        times = np.asarray(ts.timestamps[:], dtype=np.float64)
    else:
        times = float(ts.starting_time or 0.0) + np.arange(len(data)) / float(ts.rate)
    return times, data[:, :2]


def _column(table, name, dtype=None):
    if name not in table.colnames:
        return None
    data = np.asarray(table[name].data[:])
    return data.astype(dtype) if dtype is not None else data


def _directions(path, trials, direction_units: str) -> tuple[np.ndarray, str]:
    """Reach direction per trial in degrees: ``target_dir`` (000688/Area2_Bump; radians unless declared
    otherwise, checked by :func:`pipeline.io.checks.direction_degrees`) or the angle of
    ``target_pos[active_target]`` (MC_Maze)."""
    n = len(trials)
    if "target_dir" in trials.colnames:
        raw = trials["target_dir"].data[:]
        return direction_degrees(raw, direction_units, path, "intervals/trials.target_dir", default="rad")
    if "target_pos" in trials.colnames and "active_target" in trials.colnames:
        column = trials["target_pos"]
        ends = np.asarray(column.data[:], dtype=np.int64)
        flat = np.asarray(column.target.data[:], dtype=np.float64)
        starts = np.concatenate([[0], ends[:-1]])
        active = np.asarray(trials["active_target"].data[:], dtype=np.int64)
        if np.any(active < 0) or np.any(starts + active >= ends):
            raise InputError(path, "intervals/trials.active_target", "index outside target_pos")
        xy = flat[starts + active]
        return np.mod(np.degrees(np.arctan2(xy[:, 1], xy[:, 0])), 360.0), "target_pos[active_target]"
    return np.full(n, np.nan), "none"


def read_nwb(
    path: str | PathLike,
    areas: list[str] | None = None,
    *,
    direction_units: str = "default",
    require_behavior: bool = True,
) -> xr.Dataset:
    """Read one NWB session into the ``spikes`` ingest layout (see :mod:`pipeline.data.store`).

    Args:
        path: the ``.nwb`` file.
        areas: areas to keep (M1/PMd/S1); None keeps every unit.
        direction_units: units of ``target_dir``: ``"rad"`` (``"default"``, the convention of these
            files) or ``"deg"``; values outside the declared unit's range are refused.
        require_behavior: raise when no hand/cursor velocity is found (set False to read
            spiking-only files such as NLB test splits).

    Raises:
        InputError: naming the file and the NWB field that is missing or malformed.
    """
    from pynwb import NWBHDF5IO

    path = recording_file(path)
    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
    except Exception as exc:  # h5py/hdmf raise many types for a non-NWB file
        raise InputError(path, None, f"not a readable NWB (HDF5) file: {exc}") from exc
    with io:
        try:
            nwb = io.read()
        except Exception as exc:  # an HDF5 file that is not NWB: pynwb/hdmf raise TypeError, KeyError...
            raise InputError(path, None, f"an HDF5 file but not a readable NWB file ({_short(exc)})") from exc
        units = nwb.units
        if units is None or "spike_times" not in units.colnames:
            raise InputError(path, "units.spike_times", "no units table with spike times")
        unit_ids = np.asarray(units.id.data[:], dtype=np.int64)
        flat_times = np.asarray(units.spike_times.data[:], dtype=np.float64)  # bulk read 1
        ends = np.asarray(units.spike_times_index.data[:], dtype=np.int64)  # bulk read 2
        if not np.isfinite(flat_times).all():
            owner = np.searchsorted(ends, np.flatnonzero(~np.isfinite(flat_times)), side="right")
            raise InputError(
                path,
                "units.spike_times",
                f"{int((~np.isfinite(flat_times)).sum())} spike times are NaN or inf (unit ids "
                f"{sorted(set(unit_ids[owner].tolist()))[:5]})",
            )
        if "electrodes" in units.colnames:
            column = units["electrodes"]  # a VectorIndex when ragged (one electrode list per unit)
            if hasattr(column, "target"):
                e_ends = np.asarray(column.data[:], dtype=np.int64)
                flat_rows = np.asarray(column.target.data[:], dtype=np.int64)
                rows = flat_rows[np.concatenate([[0], e_ends[:-1]])]  # first electrode of each unit
            else:
                rows = np.asarray(column.data[:], dtype=np.int64)
        else:
            rows = np.full(len(unit_ids), -1, dtype=np.int64)
        locations = (
            np.asarray(nwb.electrodes["location"].data[:]).astype(str)
            if nwb.electrodes is not None and "location" in nwb.electrodes.colnames
            else np.array([])
        )
        unit_area, unit_row = unit_areas(path, unit_ids, rows, locations, nwb.lab)

        trials = nwb.trials
        if trials is None or len(trials) == 0:
            raise InputError(path, "intervals/trials", "no trials table")
        trial_ids = unique_trial_ids(trials.id.data[:], path, "intervals/trials.id")
        trial_vars = {
            "start_time": _column(trials, "start_time", np.float64),
            "stop_time": _column(trials, "stop_time", np.float64),
        }
        for event in INGEST_EVENTS:
            col = _column(trials, f"{event}_time", np.float64)
            trial_vars[f"{event}_time"] = col if col is not None else np.full(len(trial_ids), np.nan)
        direction, direction_source = _directions(path, trials, direction_units)
        result = _column(trials, "result")
        success = _column(trials, "success", bool)
        maze = {name: _column(trials, name, np.int64) for name in MAZE_COORDS}

        series = _behaviour_series(nwb)
        vel_key = next((k for k in _VELOCITY_SERIES if k in series), None)
        pos_key = next((k for k in _POSITION_SERIES if k in series), None)
        velocity = position = None
        if vel_key is not None:
            vel_time, velocity = _read_series(path, series[vel_key][0], series[vel_key][1], _VELOCITY_UNITS)
        elif require_behavior:
            raise InputError(
                path,
                "processing/behavior",
                f"no hand/cursor velocity series (looked for {list(_VELOCITY_SERIES)}, "
                f"found {sorted(series) or 'none'})",
            )
        if pos_key is not None and velocity is not None:
            pos_time, position = _read_series(path, series[pos_key][0], series[pos_key][1], _POSITION_UNITS)
            if len(pos_time) != len(vel_time) or not np.allclose(pos_time, vel_time):
                position = np.stack([np.interp(vel_time, pos_time, position[:, i]) for i in range(2)], axis=1)
        meta = {
            "nwb_identifier": str(nwb.identifier),
            "nwb_session_start_time": nwb.session_start_time.isoformat(),
            "nwb_lab": str(nwb.lab or ""),
            "nwb_subject": str(getattr(nwb.subject, "subject_id", "") or ""),
        }

    if trial_vars["start_time"] is None or trial_vars["stop_time"] is None:
        raise InputError(path, "intervals/trials.start_time", "trials need start_time and stop_time")
    counts_per_unit = np.diff(np.concatenate([[0], ends]))
    spike_unit = np.repeat(np.arange(len(unit_ids), dtype=np.int32), counts_per_unit)

    keep = np.ones(len(unit_ids), dtype=bool)
    if areas is not None:
        present = sorted(set(unit_area))
        missing = [a for a in areas if a not in present]
        if missing:
            raise InputError(path, "areas", f"area(s) {missing} not in the file (it has {present})")
        keep = np.isin(unit_area, areas)
    new_index = np.full(len(unit_ids), -1, dtype=np.int32)
    new_index[keep] = np.arange(keep.sum(), dtype=np.int32)
    spike_keep = keep[spike_unit]
    times, spike_unit = flat_times[spike_keep], new_index[spike_unit[spike_keep]]
    if result is not None:
        rewarded = np.char.strip(result.astype(str)) == "R"
    elif success is not None:
        rewarded = success.astype(bool)
    else:
        rewarded = np.ones(len(trial_ids), dtype=bool)

    return spikes_dataset(
        spike_time=times,
        spike_unit=spike_unit,
        unit=unit_ids[keep],
        area=unit_area[keep],
        electrode=unit_row[keep],
        trial=trial_ids,
        trial_times=trial_vars,
        direction=direction,
        direction_source=direction_source,
        rewarded=rewarded,
        result=np.char.strip(result.astype(str)).astype(object) if result is not None else None,
        maze=maze,
        time=vel_time if velocity is not None else None,
        velocity=velocity,
        position=position,
        behaviour_source={"velocity": series[vel_key][0], "position": series[pos_key][0] if pos_key else ""}
        if velocity is not None
        else None,
        attrs={"reader": "nwb", **meta},
        source=path,
    )

"""One simulated session end to end (:func:`simulate_session`): the draws in their fixed order, the NWB
file and the ground-truth archive, written atomically.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.atomic import atomic_paths
from pipeline.simulate.kinematics import _behavior, _center_out_trials, _maze_trials
from pipeline.simulate.nwb import _build_center_out_nwb, _build_maze_nwb, _nwb_file
from pipeline.simulate.params import AREAS, _input_error, _validate_arguments, resolve_params
from pipeline.simulate.spikes import _simulate_spikes
from pipeline.simulate.units import _draw_units, _population, _Units


def _write_outputs(nwb_path: Path, truth_path: Path, nwbfile: Any, truth: Mapping[str, Any]) -> None:
    """Write the NWB file and truth archive atomically.

    Both are written to temporary files beside their targets and moved into
    place together (:func:`pipeline.data.atomic.atomic_paths`): on any error no
    partial or mismatched output remains.

    Args:
        nwb_path: Final NWB path.
        truth_path: Final ``.npz`` path.
        nwbfile: NWBFile to write.
        truth: Arrays for ``np.savez_compressed`` (no object dtypes).
    """
    from pynwb import NWBHDF5IO

    with atomic_paths(nwb_path, truth_path) as (tmp_nwb, tmp_truth):
        with NWBHDF5IO(str(tmp_nwb), mode="w") as io:
            io.write(nwbfile)
        with open(tmp_truth, "wb") as fh:
            np.savez_compressed(fh, **truth)


def _truth_arrays(
    *,
    seed: int,
    session_id: str,
    task: str,
    subject: str,
    date: str,
    hemisphere: str,
    areas: Sequence[str],
    units: _Units,
    spikes: Sequence[np.ndarray],
    trials: Mapping[str, np.ndarray],
    duration: float,
    behavior_rate: float,
    dt: float,
    rate_dt: float,
) -> dict[str, np.ndarray]:
    """Assemble the ground-truth arrays (plain dtypes, no pickles).

    Args:
        seed: Seed.
        session_id: Session id.
        task: Task name.
        subject: Subject id.
        date: Session date string.
        hemisphere: Hemisphere.
        areas: Recorded areas.
        units: Unit truth.
        spikes: Spike times per unit.
        trials: Trial arrays.
        duration: Session duration (s).
        behavior_rate: Behaviour sampling rate (Hz).
        dt: Resolution of the kinematics grid and lags (s).
        rate_dt: Width of the piecewise-constant rate bins (s).

    Returns:
        Mapping of key to numpy array.
    """
    out: dict[str, np.ndarray] = {
        "seed": np.array(int(seed), dtype=np.int64),
        "session_id": np.array(session_id, dtype=f"<U{max(1, len(session_id))}"),
        "task": np.array(task),
        "subject": np.array(subject),
        "date": np.array(date),
        "hemisphere": np.array(hemisphere),
        "areas": np.array(list(areas), dtype="<U3"),
        "behavior_rate_hz": np.array(float(behavior_rate)),
        "neural_dt_s": np.array(float(dt)),
        "rate_dt_s": np.array(float(rate_dt)),
        "session_duration_s": np.array(float(duration)),
        "distance_unit": np.array("cm"),
    }
    out.update(units.values)
    n_spikes = np.array([len(s) for s in spikes], dtype=np.int64)
    out["n_spikes"] = n_spikes
    out["mean_rate_hz"] = n_spikes / float(duration)
    for key, value in trials.items():
        if key in ("session_end", "instructed_delay"):
            continue
        out[key] = np.asarray(value)
    out["instructed_delay_s"] = np.asarray(trials["instructed_delay"])
    for key, value in out.items():
        if value.dtype == object:  # pragma: no cover - defensive
            raise TypeError(f"truth field {key!r} has object dtype")
    return out


def simulate_session(
    nwb_path: str | os.PathLike,
    truth_path: str | os.PathLike,
    *,
    session_id: str,
    subject: str,
    date: str,
    hemisphere: str,
    task: str,
    areas: list[str],
    seed: int,
    params: dict | None = None,
) -> None:
    """Simulate one session and write it as an NWB file plus a truth archive.

    Args:
        nwb_path: Output NWB file.
        truth_path: Output ground-truth ``.npz`` (see the module docstring for
            its keys).
        session_id: Session identifier (NWB ``identifier``/``session_id``);
            mixed into the random seed so sessions differ.
        subject: Subject id (``Subject.subject_id``).
        date: Session date ``YYYY-MM-DD``; ``session_start_time`` is its
            midnight UTC.
        hemisphere: ``'left'`` or ``'right'`` (written into the electrode group
            descriptions, ``session_description`` and ``notes``).
        task: ``'center_out'`` (Miller layout) or ``'maze'`` (NLB layout).
        areas: Subset of ``['M1', 'PMd', 'S1']`` (maze: ``M1``/``PMd`` only).
        seed: Non-negative integer seed. The population tuning of a subject,
            year and area comes from
            ``np.random.default_rng([seed, crc32(subject), year, area index])``;
            every other draw from
            ``np.random.default_rng([seed, zlib.crc32(session_id.encode())])``.
        params: Overrides of :data:`DEFAULT_PARAMS`, per block
            (``center_out``, ``maze``, ``neural``); a given key replaces the
            default value (a mapping for a per-area ``neural`` key updates the
            default mapping area by area).

    Raises:
        pipeline.errors.InputError: (a ValueError) On an invalid argument or
            parameter; its ``field`` (also in the message,
            ``simulate_session [<field>]: ...``) names the offending argument
            (``task``, ``areas``, ``params.maze.n_trials`` ...). Nothing is
            written in that case.
        OSError: If writing fails; no output or temporary file is left.
    """
    nwb_p, truth_p, day, ordered_areas = _validate_arguments(
        nwb_path, truth_path, session_id, subject, date, hemisphere, task, areas, seed
    )
    cfg_all = resolve_params(params)
    cfg, neu = cfg_all[task], cfg_all["neural"]
    counts = cfg["units"]
    for area in ordered_areas:
        if area not in counts:
            raise _input_error(f"params.{task}.units", f"no unit count for area {area!r}")

    rng = np.random.default_rng([int(seed), zlib.crc32(session_id.encode("utf-8"))])
    extra: dict[str, Any] = {}
    if task == "center_out":
        trials, segments = _center_out_trials(rng, cfg)
    else:
        trials, segments, extra = _maze_trials(rng, cfg)
    duration = float(trials["session_end"])
    rate = float(cfg["behavior_rate_hz"])
    behavior = _behavior(rng, segments, duration, rate, float(cfg["position_noise_cm"]))
    duration = (len(behavior["pos"]) - 1) / rate
    population = {area: _population(int(seed), subject, day.year, area, neu) for area in ordered_areas}
    units = _draw_units(rng, task, ordered_areas, counts, neu, population)
    spikes, shared_latent, encoding = _simulate_spikes(rng, units, segments, trials, duration, neu)
    for area, latent in zip([a for a in AREAS if a in ordered_areas], shared_latent):
        trials[f"shared_gain_latent_{area}"] = latent
    trials.update(encoding)

    nwbfile = _nwb_file(
        task=task,
        session_id=session_id,
        subject=subject,
        day=day,
        hemisphere=hemisphere,
        areas=ordered_areas,
        seed=int(seed),
    )
    # the spike trains end where pipeline.simulate.spikes cut them: below the last whole dt_s bin's end
    observed_end = int(np.ceil(duration / float(neu["dt_s"]))) * float(neu["dt_s"])
    if task == "center_out":
        _build_center_out_nwb(nwbfile, ordered_areas, hemisphere, units, spikes, trials, behavior, rate, observed_end)
    else:
        _build_maze_nwb(
            nwbfile,
            hemisphere,
            units,
            spikes,
            trials,
            extra["target_pos_list"],
            behavior,
            rate,
            float(cfg["cursor_latency_s"]),
            observed_end,
        )
    truth = _truth_arrays(
        seed=int(seed),
        session_id=session_id,
        task=task,
        subject=subject,
        date=date,
        hemisphere=hemisphere,
        areas=ordered_areas,
        units=units,
        spikes=spikes,
        trials=trials,
        duration=duration,
        behavior_rate=rate,
        dt=float(neu["dt_s"]),
        rate_dt=max(1, int(round(float(neu["rate_dt_s"]) / float(neu["dt_s"])))) * float(neu["dt_s"]),
    )
    _write_outputs(nwb_p, truth_p, nwbfile, truth)

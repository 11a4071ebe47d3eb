"""Simulated monkey reaching sessions written as real NWB files.

This module is the pipeline's built-in data source. It simulates one recording
session of a macaque performing either

* a delayed **center-out** reaching task (8 targets), written in the layout of
  the Miller-lab NWB files (DANDI 000688: ``/processing/behavior`` with
  ``Position/cursor_pos``, ``Velocity/cursor_vel``, ``Acceleration/cursor_acc``;
  trial columns ``result``, ``target_on_time``, ``go_cue_time``, ``target_dir``,
  ``target_id``), or
* a delayed **maze** reaching task with straight and curved reaches, written in
  the layout of the Neural Latents Benchmark MC_Maze files (DANDI 000128/000140:
  ``hand_pos``/``hand_vel``/``cursor_pos`` directly in ``/processing/behavior``,
  4-digit unit ids 1xxx = PMd, 2xxx = M1, ``obs_intervals``, ``heldout``, and
  the real files' caveat that ``units.electrodes`` holds the row *within* the
  96-channel array, so M1 units point at PMd rows of the 192-row table).

Neural model (all areas): inhomogeneous Poisson spiking (exact time-rescaling
draw on a 1 ms piecewise-constant rate, then a 1 ms absolute refractory period)
with log-normal baselines and rates that are functions of the simulated
kinematics:

* **M1** - cosine velocity tuning plus a speed term, rate at ``t`` driven by the
  velocity at ``t + lag`` with ``lag`` about +100 ms (M1 leads movement).
* **PMd** - direction-tuned preparatory activity from target onset to movement
  onset (tuned to the initial direction of the planned reach) plus weaker,
  leading movement tuning.
* **S1** (area 2) - velocity and position tuning with ``lag`` about -50 ms
  (S1 lags movement).

The rate of unit ``u`` is ``baseline * max(floor, 1 + drive_u(t))``; the
``gain`` stored in the ground truth is the slope of that rate along the unit's
preferred direction in Hz per (cm/s).

Every random draw comes from
``np.random.default_rng([seed, zlib.crc32(session_id.encode())])`` in a fixed
order, so the same inputs give byte-identical arrays and different sessions
draw different units and trials. Both outputs are written atomically (a
temporary file beside the target, then :func:`os.replace`).

Ground truth (``truth_path``, ``np.savez_compressed``, no object arrays):

* session: ``seed``, ``session_id``, ``task``, ``subject``, ``date``,
  ``hemisphere``, ``areas``, ``behavior_rate_hz``, ``neural_dt_s``,
  ``session_duration_s``, ``distance_unit`` (always ``"cm"``).
* per unit: ``unit_id``, ``unit_area``, ``preferred_direction_deg``, ``gain``
  (Hz per cm/s), ``baseline_hz``, ``lag_s`` (positive = neural activity leads
  the kinematics), ``modulation_depth``, ``speed_depth``, ``prep_depth``,
  ``position_depth``, ``mean_rate_hz``, ``n_spikes``, ``unit_channel``
  (1-96), ``unit_sort``, ``unit_electrode_row`` (the true row of the NWB
  electrodes table) and ``unit_nwb_electrode_row`` (the row actually stored in
  ``units.electrodes``; differs for maze M1 units).
* per trial (NWB trial order): ``start_time``, ``stop_time``,
  ``target_on_time``, ``go_cue_time``, ``move_onset_time``, ``reaction_time``
  (s), ``reach_duration`` (s), ``direction_deg`` (target angle, [0, 360)),
  ``movement_direction_deg`` (initial direction of the executed reach),
  ``result`` (``'R'``/``'A'``/``'F'``), ``success``, ``reach_start_cm``,
  ``reach_end_cm``, ``reach_control_cm`` (quadratic Bezier control point),
  ``target_pos_cm``; center-out adds ``target_id``; maze adds ``straight``,
  ``trial_type``, ``trial_version``, ``maze_id``, ``num_barriers``,
  ``num_targets``, ``active_target``, ``split``, ``waypoint_offset_cm``
  (signed perpendicular offset of the path midpoint from the straight line).
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import re
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError

__all__ = ["DEFAULT_PARAMS", "simulate_session"]

#: Areas that may be simulated, in canonical order.
AREAS: tuple[str, ...] = ("M1", "PMd", "S1")
#: Areas recorded in each task.
TASK_AREAS: dict[str, tuple[str, ...]] = {
    "center_out": ("M1", "PMd", "S1"),
    "maze": ("M1", "PMd"),
}
#: Leading digit of 4-digit unit ids (NLB convention: 1xxx PMd, 2xxx M1).
AREA_ID_PREFIX: dict[str, int] = {"PMd": 1, "M1": 2, "S1": 3}
#: Channels per Utah array.
N_CHANNELS = 96
#: At most this many sorted units per channel.
MAX_SORTS_PER_CHANNEL = 3

_AREA_LONG_NAME = {
    "M1": "primary motor cortex",
    "PMd": "dorsal premotor cortex",
    "S1": "primary somatosensory cortex (area 2)",
}

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # Delayed center-out reaching (Miller lab layout). Distances in cm.
    "center_out": {
        "n_trials": 160,  # trials in the session
        "n_directions": 8,  # targets at 0, 360/n, ... degrees
        "units": {"M1": 48, "PMd": 40, "S1": 32},  # units per area (areas requested)
        "behavior_rate_hz": 500.0,  # sampling rate of the continuous kinematics
        "reach_distance_cm": 8.0,  # center-to-target distance
        "failure_fraction": 0.09,  # fraction of failed trials (about half 'A', half 'F')
        "first_trial_s": 1.0,  # start_time of the first trial
        "target_on_delay_s": [0.3, 0.5],  # start -> target on (uniform range)
        "instructed_delay_s": [0.5, 1.0],  # target on -> go cue
        "reaction_time_s": [0.25, 0.33],  # go cue -> movement onset
        "reach_duration_s": [0.40, 0.50],  # minimum-jerk reach duration
        "hold_s": [0.4, 0.7],  # hold at the target after the reach
        "min_trial_after_go_s": 1.3,  # stop_time >= go cue + this
        "inter_trial_s": [0.3, 0.6],  # stop_time -> next start_time
        "return_duration_s": [0.35, 0.5],  # return-to-center movement in the gap
        "position_noise_cm": 0.01,  # SD of smooth sensor noise added to position
    },
    # Delayed maze reaching (NLB MC_Maze layout). Kinematics written in mm.
    "maze": {
        "n_trials": 120,  # trials (>= 3 * n_conditions)
        "n_conditions": 6,  # mazes (trial_type); each has versions 0, 1, 2
        # trial_type ids of the conditions (the first n_conditions are used): by default the six
        # mazes of the paper's straight set (NER_METHOD.md section 4), so the paper's subsets apply
        "trial_types": [13, 29, 17, 38, 6, 18],
        "units": {"M1": 48, "PMd": 40},
        "behavior_rate_hz": 1000.0,  # hand_pos/hand_vel at 1 kHz, as the NLB files
        "target_distance_cm": [8.0, 13.0],  # per-condition target distance
        "curve_offset_fraction": [0.25, 0.4],  # waypoint offset / straight distance
        "failure_fraction": 0.07,  # success == False
        "split_fractions": [0.75, 0.0, 0.25],  # train / val / test
        "first_trial_s": 1.0,
        "target_on_delay_s": [0.3, 0.5],
        "instructed_delay_s": [0.3, 0.9],
        "reaction_time_s": [0.25, 0.33],
        "reach_duration_s": [0.40, 0.50],  # straight reaches; curved ones are longer
        "hold_s": [0.3, 0.5],
        "min_trial_after_go_s": 1.3,
        "inter_trial_s": [0.3, 0.6],
        "return_duration_s": [0.35, 0.5],
        "position_noise_cm": 0.01,
        "cursor_latency_s": 0.016,  # cursor_pos = hand_pos delayed by this
    },
    # Spiking model shared by both tasks.
    "neural": {
        "dt_s": 0.001,  # resolution of the piecewise-constant rate
        "baseline_median_hz": 8.0,  # log-normal baseline: median ...
        "baseline_log_sd": 0.45,  # ... and SD of log(baseline)
        "baseline_range_hz": [2.0, 30.0],  # baselines clipped to this range
        "reference_speed_cm_s": 30.0,  # speed at which drive == depth
        "modulation_depth": [1.0, 2.0],  # cosine velocity tuning (fraction of baseline)
        "speed_depth": [0.2, 0.6],  # non-directional speed drive
        "m1_lag_s": 0.10,  # M1 leads the velocity by this (+)
        "pmd_lag_s": 0.10,
        "s1_lag_s": -0.05,  # S1 lags the velocity (-)
        "lag_jitter_s": 0.025,  # per-unit lag uniform in lag +- jitter
        "pmd_prep_depth": [0.4, 0.9],  # preparatory tuning (fraction of baseline)
        "pmd_movement_scale": 0.5,  # PMd movement tuning relative to M1's
        "prep_latency_s": 0.08,  # target on -> start of preparatory activity
        "prep_rise_s": 0.10,  # time constant of the preparatory rise
        "prep_decay_s": 0.15,  # decay after movement onset
        "s1_position_depth": [0.1, 0.4],  # S1 position tuning at reference distance
        "reference_distance_cm": 8.0,
        "rate_floor_fraction": 0.05,  # rate >= this * baseline
        "max_rate_hz": 250.0,
        "refractory_s": 0.001,  # absolute refractory period
    },
}

_RANGE_KEYS = {
    "target_on_delay_s",
    "instructed_delay_s",
    "reaction_time_s",
    "reach_duration_s",
    "hold_s",
    "inter_trial_s",
    "return_duration_s",
    "target_distance_cm",
    "curve_offset_fraction",
    "baseline_range_hz",
    "modulation_depth",
    "speed_depth",
    "pmd_prep_depth",
    "s1_position_depth",
}
_POSITIVE_RANGE_KEYS = {
    "reach_duration_s",
    "return_duration_s",
    "target_distance_cm",
    "baseline_range_hz",
}
_INT_KEYS = {"n_trials", "n_directions", "n_conditions"}
_FRACTION_KEYS = {"failure_fraction", "rate_floor_fraction"}
_SIGNED_KEYS = {"m1_lag_s", "pmd_lag_s", "s1_lag_s"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------
# Parameters and argument validation
# --------------------------------------------------------------------------


def _input_error(field_name: str, problem: str) -> InputError:
    """Build the error raised for a bad argument or parameter.

    Args:
        field_name: The argument or ``params.<block>.<key>`` at fault.
        problem: What is wrong.

    Returns:
        An :class:`~pipeline.errors.InputError` (a :class:`ValueError`) whose
        message reads ``simulate_session [<field>]: <problem>``.
    """
    return InputError("simulate_session", field_name, problem)


def _is_number(value: Any) -> bool:
    """Return True for real numbers that are not booleans.

    Args:
        value: Any object.

    Returns:
        Whether ``value`` is an int/float (numpy scalars included), not a bool.
    """
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_value(block: str, key: str, value: Any, task_areas: Sequence[str]) -> None:
    """Validate one parameter value.

    Args:
        block: Parameter block (``center_out``, ``maze`` or ``neural``).
        key: Parameter name inside the block.
        value: Value to check.
        task_areas: Areas allowed in the block's ``units`` mapping.

    Raises:
        InputError: (a ValueError) If the value has the wrong type or range;
            its ``field`` is ``params.<block>.<key>``.
    """
    name = f"params.{block}.{key}"
    if key == "trial_types":
        if (
            isinstance(value, (str, bytes, Mapping))
            or not isinstance(value, Sequence)
            or not all(_is_number(v) and int(v) == v and v >= 1 for v in value)
            or len(set(value)) != len(value)
        ):
            raise _input_error(name, f"expected a list of distinct positive integers, got {value!r}")
        return
    if key == "units":
        if not isinstance(value, Mapping):
            raise _input_error(name, f"expected a mapping area -> unit count")
        for area, count in value.items():
            if area not in task_areas:
                raise _input_error(
                    name,
                    f"unknown area {area!r} (allowed: {', '.join(task_areas)})",
                )
            if not _is_number(count) or int(count) != count or count < 1:
                raise _input_error(
                    f"{name}.{area}", f"expected a positive integer, got {count!r}"
                )
            if count > N_CHANNELS * MAX_SORTS_PER_CHANNEL:
                raise _input_error(
                    f"{name}.{area}",
                    f"at most {N_CHANNELS * MAX_SORTS_PER_CHANNEL} units per array",
                )
        return
    if key in _RANGE_KEYS or key == "split_fractions":
        n_expected = 3 if key == "split_fractions" else 2
        if (
            isinstance(value, (str, bytes, Mapping))
            or not isinstance(value, Sequence)
            or len(value) != n_expected
            or not all(_is_number(v) for v in value)
        ):
            raise _input_error(
                name, f"expected a list of {n_expected} numbers, got {value!r}"
            )
        if any(v < 0 or not math.isfinite(v) for v in value):
            raise _input_error(name, f"values must be finite and >= 0, got {value!r}")
        if key == "split_fractions":
            if not math.isclose(sum(value), 1.0, abs_tol=1e-6):
                raise _input_error(name, f"fractions must sum to 1, got {value!r}")
        elif value[0] > value[1]:
            raise _input_error(
                name, f"expected [low, high] with low <= high, got {value!r}"
            )
        elif key in _POSITIVE_RANGE_KEYS and value[0] <= 0:
            raise _input_error(name, f"values must be > 0, got {value!r}")
        return
    if not _is_number(value) or not math.isfinite(value):
        raise _input_error(name, f"expected a finite number, got {value!r}")
    if key in _INT_KEYS:
        if int(value) != value or value < 1:
            raise _input_error(name, f"expected a positive integer, got {value!r}")
        if key in ("n_directions",) and value < 2:
            raise _input_error(name, f"need at least 2 directions, got {value!r}")
        return
    if key in _FRACTION_KEYS:
        if not 0.0 <= value < 1.0:
            raise _input_error(name, f"expected a fraction in [0, 1), got {value!r}")
        if key == "rate_floor_fraction" and value <= 0.0:
            raise _input_error(name, f"expected a fraction in (0, 1), got {value!r}")
        return
    if key in _SIGNED_KEYS:
        if abs(value) > 0.5:
            raise _input_error(name, f"|lag| must be <= 0.5 s, got {value!r}")
        return
    if key == "dt_s":
        if not 1e-4 <= value <= 0.005:
            raise _input_error(name, f"expected 0.0001 <= dt_s <= 0.005, got {value!r}")
        return
    if key == "behavior_rate_hz":
        if not 20.0 <= value <= 10000.0:
            raise _input_error(name, f"expected 20 <= rate <= 10000 Hz, got {value!r}")
        return
    strictly_positive = {
        "reach_distance_cm",
        "baseline_median_hz",
        "reference_speed_cm_s",
        "reference_distance_cm",
        "max_rate_hz",
        "prep_rise_s",
        "prep_decay_s",
        "min_trial_after_go_s",
    }
    if key in strictly_positive and value <= 0:
        raise _input_error(name, f"expected a positive number, got {value!r}")
    if value < 0:
        raise _input_error(name, f"expected a number >= 0, got {value!r}")


def resolve_params(params: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Merge user parameters into :data:`DEFAULT_PARAMS` and validate them.

    The merge is shallow per block: each given key replaces the default value
    of that key (the ``units`` mapping is replaced as a whole).

    Args:
        params: Mapping of block name (``center_out``, ``maze``, ``neural``) to
            a mapping of overrides, or None for the defaults.

    Returns:
        A new, fully populated parameter dictionary.

    Raises:
        InputError: (a ValueError) On an unknown block or key, or an invalid
            value; the message
            names the offending ``params.<block>.<key>``.
    """
    merged = copy.deepcopy(DEFAULT_PARAMS)
    if params is None:
        return merged
    if not isinstance(params, Mapping):
        raise _input_error(
            "params", f"expected a mapping or None, got {type(params).__name__}"
        )
    for block, overrides in params.items():
        if block not in merged:
            raise _input_error(
                f"params.{block}",
                f"unknown key {block!r} in params (expected one of {', '.join(merged)})",
            )
        if not isinstance(overrides, Mapping):
            raise _input_error(
                f"params.{block}", f"expected a mapping, got {overrides!r}"
            )
        for key, value in overrides.items():
            if key not in merged[block]:
                raise _input_error(
                    f"params.{block}.{key}",
                    f"unknown key {key!r} in params.{block} "
                    f"(known: {', '.join(sorted(merged[block]))})",
                )
            _check_value(block, key, value, TASK_AREAS.get(block, AREAS))
            merged[block][key] = copy.deepcopy(value)
    return merged


def _validate_arguments(
    nwb_path: Any,
    truth_path: Any,
    session_id: Any,
    subject: Any,
    date: Any,
    hemisphere: Any,
    task: Any,
    areas: Any,
    seed: Any,
) -> tuple[Path, Path, _dt.date, list[str]]:
    """Check the scalar arguments of :func:`simulate_session`.

    Args:
        nwb_path: Target NWB path.
        truth_path: Target ground-truth ``.npz`` path.
        session_id: Session identifier.
        subject: Subject identifier.
        date: Session date ``YYYY-MM-DD``.
        hemisphere: ``left`` or ``right``.
        task: ``center_out`` or ``maze``.
        areas: Recorded areas.
        seed: Non-negative integer seed.

    Returns:
        ``(nwb_path, truth_path, date, areas)`` normalised: paths as
        :class:`~pathlib.Path`, the parsed date, areas in canonical order.

    Raises:
        InputError: (a ValueError) On any invalid argument; its ``field`` is
            the argument's name.
    """
    if task not in TASK_AREAS:
        raise _input_error(
            "task", f"unknown task {task!r} (expected 'center_out' or 'maze')"
        )
    if not isinstance(session_id, str) or not session_id.strip():
        raise _input_error(
            "session_id", f"expected a non-empty string, got {session_id!r}"
        )
    if not isinstance(subject, str) or not subject.strip():
        raise _input_error("subject", f"expected a non-empty string, got {subject!r}")
    if not isinstance(date, str) or not _DATE_RE.match(date):
        raise _input_error("date", f"expected 'YYYY-MM-DD', got {date!r}")
    try:
        day = _dt.date.fromisoformat(date)
    except ValueError as exc:
        raise _input_error("date", f"invalid date {date!r} ({exc})") from None
    if hemisphere not in ("left", "right"):
        raise _input_error(
            "hemisphere", f"expected 'left' or 'right', got {hemisphere!r}"
        )
    if isinstance(areas, str) or not isinstance(areas, Sequence) or len(areas) == 0:
        raise _input_error(
            "areas", f"expected a non-empty list of area names, got {areas!r}"
        )
    for area in areas:
        if area not in AREAS:
            raise _input_error(
                "areas", f"unknown area {area!r} (allowed: {', '.join(AREAS)})"
            )
        if area not in TASK_AREAS[task]:
            raise _input_error(
                "areas",
                f"area {area!r} is not recorded in the {task} task "
                f"(allowed: {', '.join(TASK_AREAS[task])})",
            )
    if len(set(areas)) != len(areas):
        raise _input_error("areas", f"duplicate area names in {list(areas)!r}")
    if (
        isinstance(seed, (bool, np.bool_))
        or not isinstance(seed, (int, np.integer))
        or int(seed) < 0
    ):
        raise _input_error("seed", f"expected a non-negative integer, got {seed!r}")
    for label, path in (("nwb_path", nwb_path), ("truth_path", truth_path)):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise _input_error(label, f"expected a file path, got {path!r}")
    nwb_p, truth_p = Path(nwb_path), Path(truth_path)
    if nwb_p.resolve() == truth_p.resolve():
        raise _input_error("truth_path", "must differ from nwb_path")
    ordered = [a for a in AREAS if a in areas]
    return nwb_p, truth_p, day, ordered


# --------------------------------------------------------------------------
# Kinematics
# --------------------------------------------------------------------------


@dataclass
class _Segments:
    """Movement segments: quadratic Bezier paths with minimum-jerk timing.

    Attributes:
        t0: Start times (s), strictly increasing, non-overlapping segments.
        dur: Durations (s).
        p0: Start points (n, 2), cm.
        p1: Bezier control points (n, 2), cm (midpoint for straight paths).
        p2: End points (n, 2), cm.
    """

    t0: np.ndarray
    dur: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    p2: np.ndarray

    def evaluate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate position and velocity at arbitrary times.

        Args:
            t: Times (s), any order.

        Returns:
            ``(pos, vel)``, each ``(len(t), 2)`` in cm and cm/s. Between
            segments the hand rests at the previous segment's end point; before
            the first segment it rests at the first segment's start point.
        """
        t = np.asarray(t, dtype=np.float64)
        j = np.searchsorted(self.t0, t, side="right") - 1
        before = j < 0
        jj = np.where(before, 0, j)
        dur = self.dur[jj]
        tau = np.clip((t - self.t0[jj]) / dur, 0.0, 1.0)
        tau = np.where(before, 0.0, tau)
        s = tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)
        sdot = 30.0 * tau**2 * (1.0 - tau) ** 2 / dur
        p0, p1, p2 = self.p0[jj], self.p1[jj], self.p2[jj]
        s_ = s[:, None]
        pos = (1.0 - s_) ** 2 * p0 + 2.0 * s_ * (1.0 - s_) * p1 + s_**2 * p2
        dbds = 2.0 * (1.0 - s_) * (p1 - p0) + 2.0 * s_ * (p2 - p1)
        vel = dbds * sdot[:, None]
        return pos, vel


def _bezier_length(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Arc length of quadratic Bezier curves.

    Args:
        p0: Start points (n, 2).
        p1: Control points (n, 2).
        p2: End points (n, 2).

    Returns:
        Arc lengths (n,), numerically integrated on 129 points.
    """
    s = np.linspace(0.0, 1.0, 129)[None, :, None]
    pts = (
        (1 - s) ** 2 * p0[:, None] + 2 * s * (1 - s) * p1[:, None] + s**2 * p2[:, None]
    )
    return np.linalg.norm(np.diff(pts, axis=1), axis=2).sum(axis=1)


def _uniform(rng: np.random.Generator, bounds: Sequence[float], n: int) -> np.ndarray:
    """Draw ``n`` uniform values in ``[bounds[0], bounds[1]]``.

    Args:
        rng: Random generator.
        bounds: ``[low, high]``.
        n: Number of draws.

    Returns:
        Array of shape (n,).
    """
    return rng.uniform(float(bounds[0]), float(bounds[1]), size=n)


def _block_order(rng: np.random.Generator, n_items: int, n_trials: int) -> np.ndarray:
    """Block-randomised trial labels so every label appears equally often.

    Args:
        rng: Random generator.
        n_items: Number of distinct labels.
        n_trials: Number of trials.

    Returns:
        Integer labels in ``[0, n_items)`` of length ``n_trials``.
    """
    n_blocks = -(-n_trials // n_items)
    return np.concatenate([rng.permutation(n_items) for _ in range(n_blocks)])[
        :n_trials
    ]


def _schedule(
    rng: np.random.Generator,
    cfg: Mapping[str, Any],
    n: int,
    p_end: np.ndarray,
    p_ctrl: np.ndarray,
    dur: np.ndarray,
) -> tuple[dict[str, np.ndarray], _Segments]:
    """Lay trials out in time and build the session's movement segments.

    Each trial: start -> target on -> instructed delay -> go cue -> reaction
    time -> reach (from the center to ``p_end`` through ``p_ctrl``) -> hold ->
    stop. In the inter-trial gap the hand returns to the center, finishing at
    least 50 ms before the next target appears.

    Args:
        rng: Random generator.
        cfg: Task parameter block.
        n: Number of trials.
        p_end: Reach end points (n, 2), cm.
        p_ctrl: Bezier control points (n, 2), cm.
        dur: Reach durations (n,), s.

    Returns:
        ``(times, segments)``: per-trial event times (``start_time``,
        ``target_on_time``, ``go_cue_time``, ``move_onset_time``,
        ``stop_time``, ``reaction_time``, ``instructed_delay``, ``session_end``)
        and the movement segments (reaches and returns, in time order).
    """
    t_on = _uniform(rng, cfg["target_on_delay_s"], n)
    delay = _uniform(rng, cfg["instructed_delay_s"], n)
    rt = _uniform(rng, cfg["reaction_time_s"], n)
    hold = _uniform(rng, cfg["hold_s"], n)
    iti = _uniform(rng, cfg["inter_trial_s"], n)
    ret_wait = rng.uniform(0.0, 0.1, size=n)
    ret_dur = _uniform(rng, cfg["return_duration_s"], n)

    start = np.empty(n)
    stop = np.empty(n)
    ret_start = np.empty(n)
    t = float(cfg["first_trial_s"])
    prev_ret_end = -np.inf
    for i in range(n):
        start[i] = max(t, prev_ret_end + 0.05 - t_on[i])
        go = start[i] + t_on[i] + delay[i]
        stop[i] = go + max(float(cfg["min_trial_after_go_s"]), rt[i] + dur[i] + hold[i])
        ret_start[i] = stop[i] + ret_wait[i]
        prev_ret_end = ret_start[i] + ret_dur[i]
        t = stop[i] + iti[i]
    target_on = start + t_on
    go_cue = target_on + delay
    move_onset = go_cue + rt

    center = np.zeros((n, 2))
    seg_t0 = np.empty(2 * n)
    seg_t0[0::2], seg_t0[1::2] = move_onset, ret_start
    seg_dur = np.empty(2 * n)
    seg_dur[0::2], seg_dur[1::2] = dur, ret_dur
    seg_p0 = np.empty((2 * n, 2))
    seg_p0[0::2], seg_p0[1::2] = center, p_end
    seg_p1 = np.empty((2 * n, 2))
    seg_p1[0::2], seg_p1[1::2] = p_ctrl, 0.5 * p_end
    seg_p2 = np.empty((2 * n, 2))
    seg_p2[0::2], seg_p2[1::2] = p_end, center
    segments = _Segments(seg_t0, seg_dur, seg_p0, seg_p1, seg_p2)
    times = {
        "start_time": start,
        "target_on_time": target_on,
        "go_cue_time": go_cue,
        "move_onset_time": move_onset,
        "stop_time": stop,
        "reaction_time": rt,
        "instructed_delay": delay,
        "session_end": np.array(prev_ret_end + 1.0),
    }
    return times, segments


def _rotate(vec: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """Rotate 2-D vectors.

    Args:
        vec: Vectors (n, 2).
        angle_rad: Rotation angles (n,), radians, counter-clockwise.

    Returns:
        Rotated vectors (n, 2).
    """
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.stack(
        [c * vec[:, 0] - s * vec[:, 1], s * vec[:, 0] + c * vec[:, 1]], axis=1
    )


def _failure_indices(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    """Choose which trials fail.

    Args:
        rng: Random generator.
        n: Number of trials.
        fraction: Target failure fraction.

    Returns:
        Sorted indices of failed trials (at least one when ``fraction > 0`` and
        ``n >= 2``).
    """
    n_fail = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        n_fail = max(n_fail, 1)
    n_fail = min(n_fail, n - 1) if n > 1 else 0
    return (
        np.sort(rng.choice(n, size=n_fail, replace=False))
        if n_fail
        else np.zeros(0, int)
    )


def _center_out_trials(
    rng: np.random.Generator, cfg: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], _Segments]:
    """Simulate the trial structure and reaches of a center-out session.

    Failed trials: ``'A'`` (aborted) reaches go only 20-40 % of the way and
    are faster; ``'F'`` (failed) reaches are rotated 20-45 degrees and stop at
    50-80 % of the distance, so they never arrive at the target.

    Args:
        rng: Random generator.
        cfg: ``center_out`` parameter block.

    Returns:
        ``(trials, segments)``: per-trial arrays and movement segments.
    """
    n = int(cfg["n_trials"])
    nd = int(cfg["n_directions"])
    target_id = _block_order(rng, nd, n)
    direction_deg = 360.0 * target_id / nd
    result = np.full(n, "R", dtype="<U1")
    failed = _failure_indices(rng, n, float(cfg["failure_fraction"]))
    kinds = np.where(rng.permutation(len(failed)) % 2 == 0, "F", "A")
    result[failed] = kinds
    dur = _uniform(rng, cfg["reach_duration_s"], n)
    scale_a = rng.uniform(0.2, 0.4, size=n)
    scale_f = rng.uniform(0.5, 0.8, size=n)
    rot_f = np.deg2rad(
        rng.uniform(20.0, 45.0, size=n) * rng.choice([-1.0, 1.0], size=n)
    )

    theta = np.deg2rad(direction_deg)
    target = float(cfg["reach_distance_cm"]) * np.stack(
        [np.cos(theta), np.sin(theta)], axis=1
    )
    p_end = target.copy()
    is_a, is_f = result == "A", result == "F"
    p_end[is_a] *= scale_a[is_a, None]
    p_end[is_f] = _rotate(target[is_f], rot_f[is_f]) * scale_f[is_f, None]
    dur = np.where(is_a, 0.6 * dur, dur)
    p_ctrl = 0.5 * p_end

    times, segments = _schedule(rng, cfg, n, p_end, p_ctrl, dur)
    move_dir = np.rad2deg(np.arctan2(p_end[:, 1], p_end[:, 0])) % 360.0
    trials = dict(times)
    trials.update(
        direction_deg=direction_deg,
        movement_direction_deg=move_dir,
        target_id=target_id.astype(np.int64),
        result=result,
        success=result == "R",
        reach_duration=dur,
        reach_start_cm=np.zeros((n, 2)),
        reach_end_cm=p_end,
        reach_control_cm=p_ctrl,
        target_pos_cm=target,
    )
    return trials, segments


def _maze_trials(
    rng: np.random.Generator, cfg: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], _Segments, dict[str, Any]]:
    """Simulate the trial structure and reaches of a maze session.

    Each condition (``trial_type``) has a target angle and distance and three
    versions: 0 = straight reach with no barrier, 1 and 2 = curved reaches
    around a barrier through a waypoint offset perpendicular to the straight
    line (to the left for version 1, to the right for version 2). Curved
    reaches last longer (duration scaled by ``(arc / chord) ** 0.7``). Failed
    trials (``success == False``) stop at 45-75 % of the (scaled) path.

    Args:
        rng: Random generator.
        cfg: ``maze`` parameter block.

    Returns:
        ``(trials, segments, conditions)``; ``conditions`` holds the per-trial
        ragged target positions (list of (k, 2) arrays, cm).

    Raises:
        InputError: (a ValueError) If ``n_trials < 3 * n_conditions``.
    """
    n = int(cfg["n_trials"])
    nc = int(cfg["n_conditions"])
    if n < 3 * nc:
        raise _input_error(
            "params.maze.n_trials",
            f"need at least 3 * n_conditions = {3 * nc} trials "
            f"so that every condition has straight and curved reaches, got {n}",
        )
    # Conditions (mazes).
    base = rng.uniform(0.0, 360.0)
    cond_angle = (
        base + 360.0 * np.arange(nc) / nc + rng.uniform(-0.2, 0.2, nc) * 360.0 / nc
    ) % 360
    cond_dist = _uniform(rng, cfg["target_distance_cm"], nc)
    if len(cfg["trial_types"]) < nc:
        raise _input_error(
            "params.maze.trial_types",
            f"{len(cfg['trial_types'])} trial types for n_conditions = {nc}",
        )
    trial_type_ids = np.asarray(cfg["trial_types"][:nc], dtype=np.int64)
    maze_ids = rng.choice(np.arange(1, 1000 + 30 * nc), size=(nc, 3), replace=False)
    num_barriers = np.concatenate(
        [np.zeros((nc, 1), int), rng.integers(1, 4, size=(nc, 2))], axis=1
    )
    offset_frac = _uniform(rng, cfg["curve_offset_fraction"], 2 * nc).reshape(nc, 2)
    num_targets = rng.choice([1, 3], size=nc)
    active = np.array([rng.integers(k) for k in num_targets])
    cond_targets: list[np.ndarray] = []
    for c in range(nc):
        pts = []
        others = iter(rng.uniform(50.0, 110.0, size=2) * np.array([1.0, -1.0]))
        for k in range(num_targets[c]):
            if k == active[c]:
                ang, dist = cond_angle[c], cond_dist[c]
            else:
                ang = cond_angle[c] + next(others)
                dist = float(_uniform(rng, cfg["target_distance_cm"], 1)[0])
            pts.append([dist * np.cos(np.deg2rad(ang)), dist * np.sin(np.deg2rad(ang))])
        cond_targets.append(np.asarray(pts, dtype=np.float64))

    # Trials.
    combo = _block_order(rng, 3 * nc, n)
    cond, version = combo // 3, combo % 3
    success = np.ones(n, bool)
    success[_failure_indices(rng, n, float(cfg["failure_fraction"]))] = False
    fail_scale = rng.uniform(0.45, 0.75, size=n)
    dur = _uniform(rng, cfg["reach_duration_s"], n)
    fracs = np.asarray(cfg["split_fractions"], dtype=float)
    counts = np.floor(fracs * n).astype(int)
    counts[0] += n - counts.sum()
    split = rng.permutation(np.repeat(np.array(["train", "val", "test"]), counts))

    theta = np.deg2rad(cond_angle[cond])
    target = cond_dist[cond, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    perp = np.stack([-np.sin(theta), np.cos(theta)], axis=1)
    side = np.select([version == 1, version == 2], [1.0, -1.0], 0.0)
    frac = np.where(version == 0, 0.0, offset_frac[cond, np.maximum(version - 1, 0)])
    offset = side * frac * cond_dist[cond]  # signed waypoint offset (cm)
    # The quadratic Bezier passes through mid + offset * perp when the control
    # point sits at mid + 2 * offset * perp.
    p_ctrl = 0.5 * target + 2.0 * offset[:, None] * perp
    chord = np.linalg.norm(target, axis=1)
    arc = _bezier_length(np.zeros_like(target), p_ctrl, target)
    dur = dur * (arc / chord) ** 0.7
    scale = np.where(success, 1.0, fail_scale)
    p_end = target * scale[:, None]
    p_ctrl = p_ctrl * scale[:, None]

    times, segments = _schedule(rng, cfg, n, p_end, p_ctrl, dur)
    move_dir = np.rad2deg(np.arctan2(p_ctrl[:, 1], p_ctrl[:, 0])) % 360.0
    trials = dict(times)
    trials.update(
        direction_deg=cond_angle[cond],
        movement_direction_deg=move_dir,
        result=np.where(success, "R", "F").astype("<U1"),
        success=success,
        reach_duration=dur,
        reach_start_cm=np.zeros((n, 2)),
        reach_end_cm=p_end,
        reach_control_cm=p_ctrl,
        target_pos_cm=target,
        straight=version == 0,
        trial_type=trial_type_ids[cond].astype(np.int64),
        trial_version=version.astype(np.int64),
        maze_id=maze_ids[cond, version].astype(np.int64),
        num_barriers=num_barriers[cond, version].astype(np.int64),
        num_targets=num_targets[cond].astype(np.int64),
        active_target=active[cond].astype(np.int64),
        split=split.astype("<U5"),
        waypoint_offset_cm=offset,
    )
    extra = {"target_pos_list": [cond_targets[c] for c in cond]}
    return trials, segments, extra


def _smooth_noise(
    rng: np.random.Generator, n: int, sd: float, width: int
) -> np.ndarray:
    """Smooth 2-D sensor noise (white noise convolved with a triangle).

    Args:
        rng: Random generator.
        n: Number of samples.
        sd: Target standard deviation.
        width: Half-width of the triangular kernel in samples (>= 1).

    Returns:
        Array (n, 2).
    """
    kernel = np.convolve(np.ones(width), np.ones(width))
    kernel /= np.sqrt(np.sum(kernel**2))
    white = rng.standard_normal((n + len(kernel) - 1, 2))
    out = np.empty((n, 2))
    for d in range(2):
        out[:, d] = np.convolve(white[:, d], kernel, mode="valid")
    return sd * out


def _behavior(
    rng: np.random.Generator,
    segments: _Segments,
    duration: float,
    rate: float,
    noise_sd: float,
) -> dict[str, np.ndarray]:
    """Sample the continuous kinematics for the whole session.

    Position = analytic trajectory + smooth noise; velocity and acceleration
    are the numerical derivatives (``np.gradient``) of the recorded position,
    so they are consistent with it.

    Args:
        rng: Random generator.
        segments: Movement segments.
        duration: Session duration (s).
        rate: Sampling rate (Hz).
        noise_sd: Position noise SD (cm).

    Returns:
        Dict with ``pos`` (cm), ``vel`` (cm/s), ``acc`` (cm/s^2), each (n, 2).
    """
    n = int(np.floor(duration * rate)) + 1
    t = np.arange(n) / rate
    pos, _ = segments.evaluate(t)
    width = max(1, int(round(0.04 * rate)))  # ~80 ms triangular smoothing
    pos = pos + _smooth_noise(rng, n, noise_sd, width)
    vel = np.gradient(pos, 1.0 / rate, axis=0)
    acc = np.gradient(vel, 1.0 / rate, axis=0)
    return {"pos": pos, "vel": vel, "acc": acc}


# --------------------------------------------------------------------------
# Units and spikes
# --------------------------------------------------------------------------


@dataclass
class _Units:
    """Per-unit ground truth (arrays of equal length).

    Attributes:
        values: Mapping of truth field name to array.
    """

    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        """Number of units."""
        return len(self.values["unit_id"])


def _channels_and_sorts(
    rng: np.random.Generator, n_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """Place units on a 96-channel array (several sorted units per channel).

    Args:
        rng: Random generator.
        n_units: Units to place (<= 288).

    Returns:
        ``(channel, sort)``, 1-based, ordered by channel then sort.
    """
    weights = np.tile(np.array([1.0, 0.35, 0.1]), N_CHANNELS)
    slots = rng.choice(
        N_CHANNELS * MAX_SORTS_PER_CHANNEL,
        size=n_units,
        replace=False,
        p=weights / weights.sum(),
    )
    channel = np.sort(slots // MAX_SORTS_PER_CHANNEL) + 1
    sort = np.ones(n_units, dtype=np.int64)
    for i in range(1, n_units):
        if channel[i] == channel[i - 1]:
            sort[i] = sort[i - 1] + 1
    return channel.astype(np.int64), sort


def _draw_units(
    rng: np.random.Generator,
    task: str,
    areas: Sequence[str],
    counts: Mapping[str, int],
    neu: Mapping[str, Any],
) -> _Units:
    """Draw the session's units and their tuning parameters.

    Args:
        rng: Random generator.
        task: ``center_out`` or ``maze``.
        areas: Requested areas in canonical order.
        counts: Units per area.
        neu: ``neural`` parameter block.

    Returns:
        Units in NWB order (maze: PMd then M1; center-out: canonical area
        order), each area sorted by unit id.

    Raises:
        InputError: (a ValueError) If an area has no unit count in ``counts``.
    """
    block = "maze" if task == "maze" else "center_out"
    row_areas = ("PMd", "M1") if task == "maze" else tuple(areas)
    order = [a for a in row_areas if a in areas]
    cols: dict[str, list[np.ndarray]] = {}

    def put(key: str, arr: np.ndarray) -> None:
        """Append one area's values of truth field ``key``."""
        cols.setdefault(key, []).append(np.asarray(arr))

    for area in order:
        if area not in counts:
            raise _input_error(
                f"params.{block}.units", f"no unit count for area {area!r}"
            )
        n = int(counts[area])
        channel, sort = _channels_and_sorts(rng, n)
        baseline = np.clip(
            float(neu["baseline_median_hz"])
            * np.exp(float(neu["baseline_log_sd"]) * rng.standard_normal(n)),
            *neu["baseline_range_hz"],
        )
        pd = rng.uniform(0.0, 360.0, size=n)
        depth = _uniform(rng, neu["modulation_depth"], n)
        speed = _uniform(rng, neu["speed_depth"], n)
        jitter = rng.uniform(-1.0, 1.0, size=n) * float(neu["lag_jitter_s"])
        prep = _uniform(rng, neu["pmd_prep_depth"], n)
        posd = _uniform(rng, neu["s1_position_depth"], n)
        lag0 = {"M1": neu["m1_lag_s"], "PMd": neu["pmd_lag_s"], "S1": neu["s1_lag_s"]}[
            area
        ]
        move_scale = float(neu["pmd_movement_scale"]) if area == "PMd" else 1.0
        depth, speed = depth * move_scale, speed * move_scale
        row_offset = N_CHANNELS * row_areas.index(area)
        nwb_row = channel - 1 if task == "maze" else channel - 1 + row_offset
        put("unit_id", 1000 * AREA_ID_PREFIX[area] + 10 * channel + sort)
        put("unit_area", np.full(n, area, dtype="<U3"))
        put("preferred_direction_deg", pd)
        put("gain", baseline * depth / float(neu["reference_speed_cm_s"]))
        put("baseline_hz", baseline)
        put("lag_s", float(lag0) + jitter)
        put("modulation_depth", depth)
        put("speed_depth", speed)
        put("prep_depth", prep if area == "PMd" else np.zeros(n))
        put("position_depth", posd if area == "S1" else np.zeros(n))
        put("unit_channel", channel)
        put("unit_sort", sort)
        put("unit_electrode_row", channel - 1 + row_offset)
        put("unit_nwb_electrode_row", nwb_row)
    values = {k: np.concatenate(v) for k, v in cols.items()}
    values["unit_id"] = values["unit_id"].astype(np.int64)
    for key in (
        "unit_channel",
        "unit_sort",
        "unit_electrode_row",
        "unit_nwb_electrode_row",
    ):
        values[key] = values[key].astype(np.int64)
    return _Units(values)


def _prep_signal(
    trials: Mapping[str, np.ndarray], n_bins: int, dt: float, neu: Mapping[str, Any]
) -> np.ndarray:
    """Preparatory drive: a unit vector along the planned initial direction.

    Rises (time constant ``prep_rise_s``) from target onset + ``prep_latency_s``
    until movement onset, then decays (``prep_decay_s``).

    Args:
        trials: Trial arrays (``target_on_time``, ``move_onset_time``,
            ``movement_direction_deg``).
        n_bins: Number of rate bins.
        dt: Bin width (s).
        neu: ``neural`` parameter block.

    Returns:
        Array (n_bins, 2).
    """
    prep = np.zeros((n_bins, 2))
    rise, decay = float(neu["prep_rise_s"]), float(neu["prep_decay_s"])
    ang = np.deg2rad(trials["movement_direction_deg"])
    for i in range(len(ang)):
        t_start = trials["target_on_time"][i] + float(neu["prep_latency_s"])
        t_move = trials["move_onset_time"][i]
        i0 = int(np.ceil(t_start / dt - 0.5))
        i1 = min(n_bins, int(np.ceil((t_move + 5 * decay) / dt)))
        if i1 <= i0:
            continue
        tc = (np.arange(i0, i1) + 0.5) * dt
        level_at_move = 1.0 - np.exp(-max(t_move - t_start, 0.0) / rise)
        amp = np.where(
            tc < t_move,
            1.0 - np.exp(-(tc - t_start) / rise),
            level_at_move * np.exp(-(tc - t_move) / decay),
        )
        amp = np.clip(amp, 0.0, None)
        prep[i0:i1, 0] += amp * np.cos(ang[i])
        prep[i0:i1, 1] += amp * np.sin(ang[i])
    return prep


def _poisson_spike_times(
    rng: np.random.Generator, rate: np.ndarray, dt: float, refractory: float
) -> np.ndarray:
    """Exact inhomogeneous Poisson draw for a piecewise-constant rate.

    Uses time rescaling: ``N ~ Poisson(Lambda(T))`` uniform points on
    ``[0, Lambda(T)]`` are mapped back through the cumulative intensity.
    Spikes closer than ``refractory`` to the previous kept spike are removed.

    Args:
        rng: Random generator.
        rate: Rates (Hz) per bin, all > 0.
        dt: Bin width (s); bin ``k`` covers ``[k dt, (k + 1) dt)``.
        refractory: Absolute refractory period (s).

    Returns:
        Sorted spike times (s), float64.
    """
    cum = np.empty(len(rate) + 1)
    cum[0] = 0.0
    np.cumsum(rate * dt, out=cum[1:])
    total = cum[-1]
    u = np.sort(rng.uniform(0.0, total, size=rng.poisson(total)))
    idx = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(rate) - 1)
    times = (idx + (u - cum[idx]) / (rate[idx] * dt)) * dt
    times = np.clip(times, idx * dt, (idx + 1) * dt)
    if refractory > 0 and len(times) > 1:
        while True:
            bad = np.diff(times) < refractory
            if not bad.any():
                break
            # Drop the second spike of every violating pair whose first spike
            # is itself kept (not preceded by a violation); repeat until clean.
            first = bad & ~np.concatenate([[False], bad[:-1]])
            keep = np.ones(len(times), bool)
            keep[1:][first] = False
            times = times[keep]
    return times


def _simulate_spikes(
    rng: np.random.Generator,
    units: _Units,
    segments: _Segments,
    trials: Mapping[str, np.ndarray],
    duration: float,
    neu: Mapping[str, Any],
) -> list[np.ndarray]:
    """Generate spike trains for all units from the noiseless kinematics.

    Args:
        rng: Random generator.
        units: Units and tuning parameters.
        segments: Movement segments (true kinematics).
        trials: Trial arrays.
        duration: Session duration (s).
        neu: ``neural`` parameter block.

    Returns:
        One sorted float64 array of spike times (s) per unit.
    """
    dt = float(neu["dt_s"])
    n_bins = int(np.ceil(duration / dt))
    lags = units.values["lag_s"]
    shifts = np.rint(lags / dt).astype(int)
    pad = int(np.abs(shifts).max()) + 1 if len(shifts) else 1
    grid = (np.arange(-pad, n_bins + pad) + 0.5) * dt
    pos, vel = segments.evaluate(grid)
    speed = np.hypot(vel[:, 0], vel[:, 1])
    vref = float(neu["reference_speed_cm_s"])
    dref = float(neu["reference_distance_cm"])
    prep = None
    if np.any(units.values["prep_depth"] > 0):
        prep = _prep_signal(trials, n_bins, dt, neu)
    floor = float(neu["rate_floor_fraction"])
    max_rate = float(neu["max_rate_hz"])
    refractory = float(neu["refractory_s"])
    v = units.values
    spikes = []
    for u in range(len(units)):
        sl = slice(pad + shifts[u], pad + shifts[u] + n_bins)
        ang = np.deg2rad(v["preferred_direction_deg"][u])
        c, s = np.cos(ang), np.sin(ang)
        drive = (v["modulation_depth"][u] / vref) * (vel[sl, 0] * c + vel[sl, 1] * s)
        drive += (v["speed_depth"][u] / vref) * speed[sl]
        if v["prep_depth"][u] > 0 and prep is not None:
            drive += v["prep_depth"][u] * (prep[:, 0] * c + prep[:, 1] * s)
        if v["position_depth"][u] > 0:
            drive += (v["position_depth"][u] / dref) * (pos[sl, 0] * c + pos[sl, 1] * s)
        base = v["baseline_hz"][u]
        rate = base * np.clip(1.0 + drive, floor, max_rate / base)
        spikes.append(_poisson_spike_times(rng, rate, dt, refractory))
    return spikes


# --------------------------------------------------------------------------
# NWB construction
# --------------------------------------------------------------------------


def _nwb_file(
    *,
    task: str,
    session_id: str,
    subject: str,
    day: _dt.date,
    hemisphere: str,
    areas: Sequence[str],
    seed: int,
) -> Any:
    """Create the NWBFile with session metadata and subject.

    Args:
        task: ``center_out`` or ``maze``.
        session_id: Session identifier (also the NWB ``identifier``).
        subject: Subject id.
        day: Session date; ``session_start_time`` is its midnight UTC.
        hemisphere: Implanted hemisphere.
        areas: Recorded areas.
        seed: Simulation seed (recorded in ``data_collection``).

    Returns:
        A :class:`pynwb.NWBFile`.
    """
    from pynwb import NWBFile
    from pynwb.file import Subject

    start = _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc)
    if task == "center_out":
        lab, institution = "Miller", "Northwestern University"
        experiment = "Delayed center-out reaching task (simulated)"
    else:
        lab, institution = "Shenoy", "Stanford University"
        experiment = "Center-out delayed reaching task with maze barriers (simulated)"
    nwbfile = NWBFile(
        session_description=(
            f"SIMULATED {task} session {session_id} of monkey {subject} "
            f"({', '.join(areas)}; {hemisphere} hemisphere) generated by pipeline.simulate"
        ),
        identifier=session_id,
        session_start_time=start,
        session_id=session_id,
        lab=lab,
        institution=institution,
        experiment_description=experiment,
        keywords=["simulated", "motor cortex", "reaching", task],
        notes=f"hemisphere: {hemisphere}; areas: {', '.join(areas)}; simulated data",
        data_collection=f"Simulated by pipeline.simulate with seed={seed}, session_id={session_id}",
    )
    nwbfile.subject = Subject(
        subject_id=subject,
        species="Macaca mulatta",
        sex="M",
        description="simulated subject",
    )
    return nwbfile


def _add_arrays(
    nwbfile: Any, array_areas: Sequence[str], hemisphere: str, maze: bool
) -> None:
    """Add devices, electrode groups and 96 electrode rows per array.

    Args:
        nwbfile: Target NWBFile.
        array_areas: Areas with an array, in row order.
        hemisphere: Implanted hemisphere (written into descriptions).
        maze: Use NLB-style group locations and 1-based electrode ids.
    """
    model = nwbfile.create_device_model(
        name="utah_array_96",
        manufacturer="Blackrock Microsystems",
        description="96-electrode Utah array",
    )
    electrode_id = 1 if maze else 0
    for area in array_areas:
        device = nwbfile.create_device(
            name=f"electrode_array_{area}",
            description=f"96-electrode Utah array in {area}, {hemisphere} hemisphere",
            model=model,
        )
        group = nwbfile.create_electrode_group(
            name=f"electrode_group_{area}",
            description=(
                f"Electrodes of the implanted Utah array in {area} "
                f"({_AREA_LONG_NAME[area]}), {hemisphere} hemisphere"
            ),
            location=_AREA_LONG_NAME[area].capitalize() if maze else area,
            device=device,
        )
        for _ in range(N_CHANNELS):
            nwbfile.add_electrode(location=area, group=group, id=electrode_id)
            electrode_id += 1


def _set_units_table(
    nwbfile: Any,
    unit_ids: np.ndarray,
    spikes: Sequence[np.ndarray],
    electrode_rows: np.ndarray,
    obs_intervals: np.ndarray | None = None,
    heldout: np.ndarray | None = None,
) -> None:
    """Build ``/units`` from whole columns (fast; no per-unit list appends).

    Args:
        nwbfile: Target NWBFile (electrodes table already filled).
        unit_ids: Unit ids (n,).
        spikes: Spike times per unit.
        electrode_rows: One electrodes-table row index per unit (n,).
        obs_intervals: Optional (k, 2) intervals shared by every unit.
        heldout: Optional boolean ``heldout`` column (n,).
    """
    from hdmf.common import DynamicTableRegion, VectorData, VectorIndex
    from pynwb.misc import Units

    n = len(unit_ids)
    columns: list[Any] = []
    spike_data = np.concatenate(spikes) if n else np.zeros(0)
    spike_col = VectorData(
        name="spike_times",
        description="the spike times for each unit in seconds",
        data=spike_data.astype(np.float64),
    )
    spike_end = np.cumsum([len(s) for s in spikes]).astype(np.uint64)
    columns += [
        spike_col,
        VectorIndex(name="spike_times_index", data=spike_end, target=spike_col),
    ]
    if obs_intervals is not None:
        obs_col = VectorData(
            name="obs_intervals",
            description="the observation intervals for each unit",
            data=np.tile(np.asarray(obs_intervals, dtype=np.float64), (n, 1)),
        )
        obs_end = (np.arange(1, n + 1) * len(obs_intervals)).astype(np.uint64)
        columns += [
            obs_col,
            VectorIndex(name="obs_intervals_index", data=obs_end, target=obs_col),
        ]
    region = DynamicTableRegion(
        name="electrodes",
        description="the electrodes that each spike unit came from",
        data=np.asarray(electrode_rows, dtype=np.int64),
        table=nwbfile.electrodes,
    )
    region_end = np.arange(1, n + 1, dtype=np.uint64)
    columns += [
        region,
        VectorIndex(name="electrodes_index", data=region_end, target=region),
    ]
    if heldout is not None:
        columns.append(
            VectorData(
                name="heldout",
                description="whether the unit is held out (NLB)",
                data=np.asarray(heldout, dtype=bool),
            )
        )
    nwbfile.units = Units(
        name="units",
        id=np.asarray(unit_ids, dtype=np.int64),
        columns=columns,
        description="Simulated sorted units (spike times in seconds)",
    )


def _build_center_out_nwb(
    nwbfile: Any,
    areas: Sequence[str],
    hemisphere: str,
    units: _Units,
    spikes: Sequence[np.ndarray],
    trials: Mapping[str, np.ndarray],
    behavior: Mapping[str, np.ndarray],
    rate: float,
) -> None:
    """Fill a center-out NWBFile in the Miller (DANDI 000688) layout.

    Args:
        nwbfile: Target NWBFile (metadata already set).
        areas: Recorded areas (canonical order).
        hemisphere: Implanted hemisphere.
        units: Unit truth.
        spikes: Spike times per unit.
        trials: Trial arrays.
        behavior: ``pos``/``vel``/``acc`` in cm units.
        rate: Behaviour sampling rate (Hz).
    """
    from pynwb import TimeSeries
    from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries

    _add_arrays(nwbfile, areas, hemisphere, maze=False)
    v = units.values
    _set_units_table(nwbfile, v["unit_id"], spikes, v["unit_nwb_electrode_row"])
    nwbfile.add_trial_column("result", "trial outcome: R reward, A abort, F fail")
    nwbfile.add_trial_column("target_on_time", "time the outer target appeared (s)")
    nwbfile.add_trial_column("go_cue_time", "time of the go cue (s)")
    nwbfile.add_trial_column("target_dir", "target direction (radians, in (-pi, pi])")
    nwbfile.add_trial_column("target_id", "target index (0 = 0 deg, counter-clockwise)")
    target_dir = np.deg2rad(trials["direction_deg"])
    target_dir = np.where(target_dir > np.pi, target_dir - 2 * np.pi, target_dir)
    for i in range(len(target_dir)):
        nwbfile.add_trial(
            start_time=float(trials["start_time"][i]),
            stop_time=float(trials["stop_time"][i]),
            result=str(trials["result"][i]),
            target_on_time=float(trials["target_on_time"][i]),
            go_cue_time=float(trials["go_cue_time"][i]),
            target_dir=float(target_dir[i]),
            target_id=int(trials["target_id"][i]),
        )
    module = nwbfile.create_processing_module("behavior", "Simulated cursor kinematics")
    common = {"starting_time": 0.0, "rate": float(rate)}
    module.add(
        Position(
            name="Position",
            spatial_series=SpatialSeries(
                name="cursor_pos",
                description="cursor position (x, y) relative to the center target",
                data=behavior["pos"],
                reference_frame="center target at (0, 0); x right, y up",
                unit="cm",
                **common,
            ),
        )
    )
    module.add(
        BehavioralTimeSeries(
            name="Velocity",
            time_series=TimeSeries(
                name="cursor_vel",
                description="cursor velocity (x, y); derivative of cursor_pos",
                data=behavior["vel"],
                unit="cm/s",
                **common,
            ),
        )
    )
    module.add(
        BehavioralTimeSeries(
            name="Acceleration",
            time_series=TimeSeries(
                name="cursor_acc",
                description="cursor acceleration (x, y); derivative of cursor_vel",
                data=behavior["acc"],
                unit="cm/s^2",
                **common,
            ),
        )
    )


def _build_maze_nwb(
    nwbfile: Any,
    hemisphere: str,
    units: _Units,
    spikes: Sequence[np.ndarray],
    trials: Mapping[str, np.ndarray],
    target_pos_list: Sequence[np.ndarray],
    behavior: Mapping[str, np.ndarray],
    rate: float,
    cursor_latency_s: float,
) -> None:
    """Fill a maze NWBFile in the NLB MC_Maze (DANDI 000128/000140) layout.

    Reproduces the real files' caveat: ``units.electrodes`` holds the channel
    row within its 96-channel array, so M1 units (ids 2xxx) reference PMd rows
    (0-95) of the 192-row electrodes table; the true M1 row is that + 96.

    Args:
        nwbfile: Target NWBFile (metadata already set).
        hemisphere: Implanted hemisphere.
        units: Unit truth.
        spikes: Spike times per unit.
        trials: Trial arrays.
        target_pos_list: Per-trial (k, 2) target positions (cm).
        behavior: ``pos``/``vel`` in cm units (converted to mm here).
        rate: Behaviour sampling rate (Hz).
        cursor_latency_s: Display latency of the cursor behind the hand (s).
    """
    from pynwb import TimeSeries
    from pynwb.behavior import SpatialSeries

    _add_arrays(nwbfile, ("PMd", "M1"), hemisphere, maze=True)
    intervals = np.stack([trials["start_time"], trials["stop_time"]], axis=1)
    v = units.values
    _set_units_table(
        nwbfile,
        v["unit_id"],
        spikes,
        v["unit_nwb_electrode_row"],
        obs_intervals=intervals,
        heldout=np.zeros(len(units), dtype=bool),
    )
    columns = {
        "split": "data split (train / val / test)",
        "target_on_time": "time the targets appeared (s)",
        "go_cue_time": "time of the go cue (s)",
        "move_onset_time": "movement onset (s)",
        "rt": "reaction time, go cue to movement onset (ms)",
        "delay": "instructed delay, target on to go cue (ms)",
        "maze_id": "identifier of the maze (target + barrier layout)",
        "trial_type": "condition identifier",
        "trial_version": "0 = no barrier (straight), 1 and 2 = barriers (curved reach)",
        "active_target": "index into target_pos of the target to reach",
        "num_targets": "number of targets shown",
        "num_barriers": "number of barriers shown",
        "success": "whether the trial was rewarded",
    }
    for name, desc in columns.items():
        nwbfile.add_trial_column(name, desc)
    nwbfile.add_trial_column("target_pos", "target positions (x, y) in mm", index=True)
    rt_ms = 1000.0 * trials["reaction_time"]
    delay_ms = 1000.0 * trials["instructed_delay"]
    for i in range(len(rt_ms)):
        nwbfile.add_trial(
            start_time=float(trials["start_time"][i]),
            stop_time=float(trials["stop_time"][i]),
            split=str(trials["split"][i]),
            target_on_time=float(trials["target_on_time"][i]),
            go_cue_time=float(trials["go_cue_time"][i]),
            move_onset_time=float(trials["move_onset_time"][i]),
            rt=float(rt_ms[i]),
            delay=float(delay_ms[i]),
            maze_id=int(trials["maze_id"][i]),
            trial_type=int(trials["trial_type"][i]),
            trial_version=int(trials["trial_version"][i]),
            active_target=int(trials["active_target"][i]),
            num_targets=int(trials["num_targets"][i]),
            num_barriers=int(trials["num_barriers"][i]),
            success=bool(trials["success"][i]),
            target_pos=(10.0 * target_pos_list[i]).tolist(),
        )
    hand_pos = 10.0 * behavior["pos"]
    lag = int(round(cursor_latency_s * rate))
    cursor_pos = np.concatenate(
        [np.repeat(hand_pos[:1], lag, axis=0), hand_pos[: len(hand_pos) - lag]]
    )
    module = nwbfile.create_processing_module(
        "behavior", "Simulated hand and cursor kinematics"
    )
    common = {"starting_time": 0.0, "rate": float(rate)}
    frame = "center of the workspace at (0, 0); x right, y up"
    module.add(
        SpatialSeries(
            name="hand_pos",
            description="hand position (x, y)",
            data=hand_pos,
            reference_frame=frame,
            unit="mm",
            **common,
        )
    )
    module.add(
        TimeSeries(
            name="hand_vel",
            description="hand velocity (x, y); derivative of hand_pos",
            data=10.0 * behavior["vel"],
            unit="mm/s",
            **common,
        )
    )
    module.add(
        SpatialSeries(
            name="cursor_pos",
            description="cursor position (x, y)",
            data=cursor_pos,
            reference_frame=frame,
            unit="mm",
            **common,
        )
    )


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _temp_path(target: Path) -> Path:
    """Create an empty temporary file beside ``target``.

    Args:
        target: Final path.

    Returns:
        Path of the new temporary file (same directory, same suffix, so
        that e.g. pynwb sees a ``.nwb`` name).
    """
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    return Path(name)


def _write_outputs(
    nwb_path: Path, truth_path: Path, nwbfile: Any, truth: Mapping[str, Any]
) -> None:
    """Write the NWB file and truth archive atomically.

    Both are written to temporary files beside their targets and then moved
    into place with :func:`os.replace`. On any error the temporary files are
    removed, and an NWB file already moved into place by this call is removed
    too, so no partial or mismatched output remains.

    Args:
        nwb_path: Final NWB path.
        truth_path: Final ``.npz`` path.
        nwbfile: NWBFile to write.
        truth: Arrays for ``np.savez_compressed`` (no object dtypes).
    """
    from pynwb import NWBHDF5IO

    nwb_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_nwb = tmp_truth = None
    placed_nwb = False
    try:
        tmp_nwb = _temp_path(nwb_path)
        with NWBHDF5IO(str(tmp_nwb), mode="w") as io:
            io.write(nwbfile)
        tmp_truth = _temp_path(truth_path)
        with open(tmp_truth, "wb") as fh:
            np.savez_compressed(fh, **truth)
        os.replace(tmp_nwb, nwb_path)
        placed_nwb = True
        os.replace(tmp_truth, truth_path)
    except BaseException:
        for tmp in (tmp_nwb, tmp_truth):
            if tmp is not None and tmp.exists():
                tmp.unlink()
        if placed_nwb and nwb_path.exists():
            nwb_path.unlink()
        raise


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
        dt: Neural rate resolution (s).

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
        seed: Non-negative integer seed. All randomness comes from
            ``np.random.default_rng([seed, zlib.crc32(session_id.encode())])``.
        params: Overrides of :data:`DEFAULT_PARAMS`, per block
            (``center_out``, ``maze``, ``neural``); a given key replaces the
            default value.

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
            raise _input_error(
                f"params.{task}.units", f"no unit count for area {area!r}"
            )

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
    units = _draw_units(rng, task, ordered_areas, counts, neu)
    spikes = _simulate_spikes(rng, units, segments, trials, duration, neu)

    nwbfile = _nwb_file(
        task=task,
        session_id=session_id,
        subject=subject,
        day=day,
        hemisphere=hemisphere,
        areas=ordered_areas,
        seed=int(seed),
    )
    if task == "center_out":
        _build_center_out_nwb(
            nwbfile, ordered_areas, hemisphere, units, spikes, trials, behavior, rate
        )
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
    )
    _write_outputs(nwb_p, truth_p, nwbfile, truth)

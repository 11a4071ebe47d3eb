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

Neural model (all areas), calibrated against real recordings (Chewie M1/PMd,
Han area 2, MC_Maze, Chips; :mod:`pipeline.calibration`, docs/calibration.md).
Each unit ``u`` has a drive ``h_u(t)`` built from the kinematics its area
*encodes* at ``t + lag_u`` (``lag_u`` about +120 +- 55 ms for M1 and PMd: they
lead the movement; -50 +- 30 ms for S1: it lags):

* direction x speed: ``depth * (speed / 30 cm/s) ** exponent * cos(movement
  direction - PD)`` with a per-unit speed exponent in [0.5, 2] (speed gain,
  mixed direction/speed coding);
* acceleration and a *late* velocity term (lag 100-300 ms later than the
  unit's), each with its own preferred direction, so the tuning turns during
  the reach and responses are multiphasic;
* a signed non-directional speed term and a signed condition-independent
  transient around movement onset (per-unit timing);
* **PMd**: preparatory activity from target onset to movement onset, tuned to
  its own ``prep_direction_deg`` (movement PD + N(0, 60 deg)), plus weaker
  movement tuning; **S1** (area 2): hand-position tuning with its own
  direction.

The encoded kinematics are the recorded ones turned and scaled per trial
(``encoding_angle_deg_<area>``, ``encoding_gain_<area>``: one latent per trial,
scaled per area), as M1 relates to muscles rather than exactly to the hand.
The rate is ``baseline * gain_u(trial) * noise_u(t) * link_u(h_u(t))`` with

* ``link_u(h) = softplus(a h + c_u) / softplus(c_u)`` (slope 1 at ``h = 0``):
  exponential for low offsets ``c_u``, linear-rectified for high ones - a smooth
  rectification whose offset follows the baseline (low-rate units are phasic);
* log-normal baselines per area (heavy-tailed, stratified draw);
* ``gain_u(trial)``: trial-to-trial multiplicative gains - a shared latent per
  area (AR(1) over trials: a slow drift in M1) times private per-unit gains;
* ``noise_u(t)``: fast Ornstein-Uhlenbeck log-rate noise (S1 only).

Spikes: a dead-time process (exact time-rescaling Poisson draw on a rate that
is piecewise constant on 5 ms bins, then spikes closer than the unit's dead
time to the previous kept spike removed; the input intensity is raised to
``r / (1 - r * dead)`` so that the output rate is ``r``). M1 and PMd have dead
times of 6-14 ms (regular, sub-Poisson firing at high rates, as real M1/PMd);
S1 units have 1-4 ms and fire a share of two-spike bursts (Fano factor > 1).

Population tuning drifts between years: the preferred directions of half of
the units cluster on an axis (two opposite modes) and every lag of an area is
shifted, both drawn per subject, calendar year and area from
``np.random.default_rng([seed, crc32(subject), year, area index])``, so the
sessions of one year share them and the 2015 and 2016 sessions differ.
``gain`` in the ground truth is ``baseline * modulation_depth / 30 cm/s``, the
linearised slope (Hz per cm/s) of the rate along the preferred direction at
the reference speed, near baseline.

Every other random draw comes from
``np.random.default_rng([seed, zlib.crc32(session_id.encode())])`` in a fixed
order, so the same inputs give byte-identical arrays and different sessions
draw different units and trials. Both outputs are written atomically (a
temporary file beside the target, moved into place: :mod:`pipeline.atomic`).

Ground truth (``truth_path``, ``np.savez_compressed``, no object arrays):

* session: ``seed``, ``session_id``, ``task``, ``subject``, ``date``,
  ``hemisphere``, ``areas``, ``behavior_rate_hz``, ``neural_dt_s``,
  ``rate_dt_s``,
  ``session_duration_s``, ``distance_unit`` (always ``"cm"``).
* per unit: ``unit_id``, ``unit_area``, ``preferred_direction_deg``, ``gain``
  (Hz per cm/s), ``baseline_hz``, ``lag_s`` (positive = neural activity leads
  the kinematics), ``modulation_depth``, ``speed_exponent``, ``speed_depth``,
  ``acc_depth``, ``acc_direction_deg``, ``late_depth``,
  ``late_direction_deg``, ``late_lag_s``, ``cis_depth``, ``cis_lead_s``,
  ``link_offset``, ``prep_depth``, ``prep_direction_deg`` (the PD itself
  outside PMd), ``position_depth``, ``position_direction_deg`` (the PD
  outside S1), ``pd_clustered`` (PD drawn from the year's axis),
  ``population_pd_axis_deg``, ``gain_loading``, ``shared_gain_sd``,
  ``private_gain_sd``, ``fast_noise_sd``, ``burst_fraction``,
  ``dead_time_s``, ``mean_rate_hz``, ``n_spikes``, ``unit_channel`` (1-96),
  ``unit_sort``, ``unit_electrode_row`` (the true row of the NWB electrodes
  table) and ``unit_nwb_electrode_row`` (the row actually stored in
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
  (signed perpendicular offset of the path midpoint from the straight line);
  per recorded area ``<A>``: ``shared_gain_latent_<A>`` (the AR(1) latent of
  the shared log gain, unit variance), ``encoding_angle_deg_<A>`` and
  ``encoding_gain_<A>`` (rotation and scale of the encoded kinematics).
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_paths
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
    # Spiking model shared by both tasks. Keys marked "per area" take one value for every area or a
    # mapping {area: value}; a mapping given in params is merged into the default mapping.
    "neural": {
        "dt_s": 0.001,  # resolution of the kinematics grid and of the lags
        "rate_dt_s": 0.005,  # resolution of the piecewise-constant rate (a multiple of dt_s)
        # Baselines: log-normal per unit, heavy-tailed as real sorted units (docs/calibration.md).
        "baseline_median_hz": {"M1": 6.0, "PMd": 4.0, "S1": 3.2},  # per area: median ...
        "baseline_log_sd": {"M1": 1.1, "PMd": 0.9, "S1": 1.4},  # ... and SD of log(baseline)
        "baseline_range_hz": [0.1, 30.0],  # baselines clipped to this range
        "reference_speed_cm_s": 30.0,  # speed at which the directional drive == depth
        "reference_acc_cm_s2": 200.0,  # acceleration at which the acceleration drive == depth
        # Movement tuning, in units of the drive h: rate ~ baseline * (1 + h) for small h.
        # per area: directional velocity drive at the reference speed
        "modulation_depth": {"M1": [0.8, 2.0], "PMd": [0.8, 2.0], "S1": [0.8, 2.0]},
        "speed_exponent": [0.5, 2.0],  # directional drive ~ (speed / reference) ** exponent
        "acc_depth": [0.0, 1.2],  # acceleration drive (own preferred direction)
        # late velocity drive: a second directional term (own preferred direction) that follows
        # the velocity later than the unit's lag, so the tuning turns during the reach
        "late_depth": [0.0, 1.2],
        "late_delay_s": [0.1, 0.3],  # its lag = the unit's lag - this
        "speed_depth": [-0.5, 1.5],  # signed non-directional speed drive at the reference speed
        # per area: signed condition-independent transient around movement onset
        "cis_depth": {"M1": [-0.5, 1.5], "PMd": [-0.5, 1.5], "S1": [0.0, 2.0]},
        "cis_lead_s": 0.05,  # its peak precedes movement onset by this (before the unit's lag) ...
        "cis_jitter_s": 0.10,  # ... +- this, uniform per unit
        "cis_width_s": 0.10,  # its SD (Gaussian in time)
        # per area: per-trial mismatch between the recorded kinematics and those the neurons
        # encode (rotation SD and log-scale SD; shared latent per trial, scaled per area)
        "encoding_angle_sd_deg": {"M1": 30.0, "PMd": 30.0, "S1": 18.0},
        "encoding_gain_sd": {"M1": 0.25, "PMd": 0.2, "S1": 0.15},
        # softplus offset of the link: low = exponential, high = linear-rectified
        "link_offset": [-2.0, 3.0],
        "link_baseline_coupling": 0.7,  # correlation of link offset and log baseline (in [0, 1))
        # Preferred directions: a share of units clusters on an axis (two opposite modes) that is
        # drawn per subject, year and area, so the population tuning drifts between years.
        "pd_cluster_fraction": 0.5,
        "pd_cluster_concentration": 2.0,  # von Mises kappa of the two modes
        "year_lag_shift_s": 0.01,  # per subject-year-area shift of the lags, uniform in +-
        "m1_lag_s": 0.12,  # M1 leads the velocity by this (+)
        "pmd_lag_s": 0.12,
        "s1_lag_s": -0.05,  # S1 lags the velocity (-)
        "lag_jitter_s": {"M1": 0.055, "PMd": 0.055, "S1": 0.03},  # per area: lag uniform in +-
        "pmd_prep_depth": [0.6, 1.4],  # preparatory tuning (drive units)
        "prep_pd_sd_deg": 60.0,  # preparatory preferred direction = movement PD + N(0, this)
        "pmd_movement_scale": 0.7,  # PMd movement tuning relative to M1's
        "prep_latency_s": 0.08,  # target on -> start of preparatory activity
        "prep_rise_s": 0.10,  # time constant of the preparatory rise
        "prep_decay_s": 0.15,  # decay after movement onset
        "s1_position_depth": [0.3, 0.9],  # S1 position tuning at reference distance
        "reference_distance_cm": 8.0,
        # Trial-to-trial variability: multiplicative log-normal gains (mean 1).
        # per area: SD of the shared log gain (one latent per area and trial)
        "shared_gain_sd": {"M1": 0.05, "PMd": 0.02, "S1": 0.06},
        # per area: AR(1) coefficient of the shared gain from trial to trial (high = slow drift)
        "shared_gain_autocorr": {"M1": 0.95, "PMd": 0.5, "S1": 0.1},
        # per area: SD of the private log gain (per unit and trial)
        "private_gain_sd": {"M1": 0.05, "PMd": 0.15, "S1": 0.12},
        # per area: SD of a fast log-rate noise (Ornstein-Uhlenbeck)
        "fast_noise_sd": {"M1": 0.0, "PMd": 0.0, "S1": 0.1},
        "fast_noise_tau_s": 0.1,  # its time constant
        # per area: share of spikes followed by a second burst spike 2-5 ms later (Fano > 1 at
        # every rate; the input rate is lowered by 1 / (1 + share) so the mean rate is kept)
        "burst_fraction": {"M1": 0.0, "PMd": 0.0, "S1": 0.05},
        # per area: dead time after each spike, uniform per unit (regular, sub-Poisson firing)
        "dead_time_s": {"M1": [0.006, 0.014], "PMd": [0.006, 0.014], "S1": [0.001, 0.004]},
        "rate_floor_fraction": 0.02,  # rate >= this * baseline
        "max_rate_hz": 250.0,
        "refractory_s": 0.001,  # absolute refractory period (the floor of every dead time)
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
    "speed_exponent",
    "acc_depth",
    "late_depth",
    "late_delay_s",
    "cis_depth",
    "link_offset",
    "dead_time_s",
}
#: range keys whose values may be negative (signed drives, softplus offset)
_SIGNED_RANGE_KEYS = {"speed_depth", "cis_depth", "link_offset"}
#: neural keys that take one value for every area or a mapping {area: value}
_PER_AREA_KEYS = {
    "baseline_median_hz",
    "baseline_log_sd",
    "shared_gain_sd",
    "shared_gain_autocorr",
    "private_gain_sd",
    "fast_noise_sd",
    "dead_time_s",
    "lag_jitter_s",
    "burst_fraction",
    "cis_depth",
    "modulation_depth",
    "encoding_angle_sd_deg",
    "encoding_gain_sd",
}
_POSITIVE_RANGE_KEYS = {
    "reach_duration_s",
    "return_duration_s",
    "target_distance_cm",
    "baseline_range_hz",
    "speed_exponent",
}
_INT_KEYS = {"n_trials", "n_directions", "n_conditions"}
_FRACTION_KEYS = {
    "failure_fraction",
    "rate_floor_fraction",
    "pd_cluster_fraction",
    "shared_gain_autocorr",
    "link_baseline_coupling",
    "burst_fraction",
}
_SIGNED_KEYS = {"m1_lag_s", "pmd_lag_s", "s1_lag_s"}
#: upper bounds of range keys
_RANGE_MAX = {"dead_time_s": 0.05, "speed_exponent": 5.0}
#: upper bounds of non-negative scalars (beyond them the model is meaningless)
_MAX_VALUE = {
    "baseline_log_sd": 3.0,
    "shared_gain_sd": 2.0,
    "private_gain_sd": 2.0,
    "fast_noise_sd": 2.0,
    "year_lag_shift_s": 0.1,
    "lag_jitter_s": 0.2,
    "cis_lead_s": 0.5,
    "cis_jitter_s": 0.3,
    "prep_pd_sd_deg": 180.0,
    "encoding_angle_sd_deg": 90.0,
    "encoding_gain_sd": 1.0,
}
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
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


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
    if key == "units":
        if not isinstance(value, Mapping):
            raise _input_error(name, "expected a mapping area -> unit count")
        for area, count in value.items():
            if area not in task_areas:
                raise _input_error(
                    name,
                    f"unknown area {area!r} (allowed: {', '.join(task_areas)})",
                )
            if not _is_number(count) or int(count) != count or count < 1:
                raise _input_error(f"{name}.{area}", f"expected a positive integer, got {count!r}")
            if count > N_CHANNELS * MAX_SORTS_PER_CHANNEL:
                raise _input_error(
                    f"{name}.{area}",
                    f"at most {N_CHANNELS * MAX_SORTS_PER_CHANNEL} units per array",
                )
        return
    if block == "neural" and key in _PER_AREA_KEYS and isinstance(value, Mapping):
        if not value:
            raise _input_error(name, "expected a value or a non-empty mapping area -> value")
        for area, area_value in value.items():
            if area not in AREAS:
                raise _input_error(f"{name}.{area}", f"unknown area {area!r} (allowed: {', '.join(AREAS)})")
            _check_scalar_or_range(f"{name}.{area}", key, area_value)
        return
    _check_scalar_or_range(name, key, value)


def _check_scalar_or_range(name: str, key: str, value: Any) -> None:
    """Validate one value (a number or a ``[low, high]`` range) of parameter ``key``.

    Args:
        name: Field name for the error (``params.<block>.<key>[.<area>]``).
        key: Parameter name (selects the rule).
        value: Value to check.

    Raises:
        InputError: (a ValueError) If the value has the wrong type or range.
    """
    if key == "trial_types":
        if (
            isinstance(value, (str, bytes, Mapping))
            or not isinstance(value, Sequence)
            or not all(_is_number(v) and int(v) == v and v >= 1 for v in value)
            or len(set(value)) != len(value)
        ):
            raise _input_error(name, f"expected a list of distinct positive integers, got {value!r}")
        return
    if key in _RANGE_KEYS or key == "split_fractions":
        n_expected = 3 if key == "split_fractions" else 2
        if (
            isinstance(value, (str, bytes, Mapping))
            or not isinstance(value, Sequence)
            or len(value) != n_expected
            or not all(_is_number(v) for v in value)
        ):
            raise _input_error(name, f"expected a list of {n_expected} numbers, got {value!r}")
        if not all(math.isfinite(v) for v in value):
            raise _input_error(name, f"values must be finite, got {value!r}")
        if key not in _SIGNED_RANGE_KEYS and any(v < 0 for v in value):
            raise _input_error(name, f"values must be finite and >= 0, got {value!r}")
        if key == "split_fractions":
            if not math.isclose(sum(value), 1.0, abs_tol=1e-6):
                raise _input_error(name, f"fractions must sum to 1, got {value!r}")
        elif value[0] > value[1]:
            raise _input_error(name, f"expected [low, high] with low <= high, got {value!r}")
        elif key in _POSITIVE_RANGE_KEYS and value[0] <= 0:
            raise _input_error(name, f"values must be > 0, got {value!r}")
        elif key in _RANGE_MAX and value[1] > _RANGE_MAX[key]:
            raise _input_error(name, f"values must be <= {_RANGE_MAX[key]}, got {value!r}")
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
    if key == "rate_dt_s":
        if not 1e-4 <= value <= 0.02:
            raise _input_error(name, f"expected 0.0001 <= rate_dt_s <= 0.02, got {value!r}")
        return
    if key == "behavior_rate_hz":
        if not 20.0 <= value <= 10000.0:
            raise _input_error(name, f"expected 20 <= rate <= 10000 Hz, got {value!r}")
        return
    strictly_positive = {
        "reach_distance_cm",
        "baseline_median_hz",
        "reference_speed_cm_s",
        "reference_acc_cm_s2",
        "reference_distance_cm",
        "max_rate_hz",
        "prep_rise_s",
        "prep_decay_s",
        "min_trial_after_go_s",
        "cis_width_s",
        "fast_noise_tau_s",
    }
    if key in strictly_positive and value <= 0:
        raise _input_error(name, f"expected a positive number, got {value!r}")
    if value < 0:
        raise _input_error(name, f"expected a number >= 0, got {value!r}")
    if key in _MAX_VALUE and value > _MAX_VALUE[key]:
        raise _input_error(name, f"expected a number <= {_MAX_VALUE[key]}, got {value!r}")


def resolve_params(params: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Merge user parameters into :data:`DEFAULT_PARAMS` and validate them.

    The merge is shallow per block: each given key replaces the default value
    of that key (the ``units`` mapping is replaced as a whole). A mapping given
    for a per-area ``neural`` key (``baseline_median_hz``, ``dead_time_s`` ...)
    updates the default mapping area by area; a plain value applies to every
    area.

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
        raise _input_error("params", f"expected a mapping or None, got {type(params).__name__}")
    for block, overrides in params.items():
        if block not in merged:
            raise _input_error(
                f"params.{block}",
                f"unknown key {block!r} in params (expected one of {', '.join(merged)})",
            )
        if not isinstance(overrides, Mapping):
            raise _input_error(f"params.{block}", f"expected a mapping, got {overrides!r}")
        for key, value in overrides.items():
            if key not in merged[block]:
                raise _input_error(
                    f"params.{block}.{key}",
                    f"unknown key {key!r} in params.{block} (known: {', '.join(sorted(merged[block]))})",
                )
            _check_value(block, key, value, TASK_AREAS.get(block, AREAS))
            if (
                block == "neural"
                and key in _PER_AREA_KEYS
                and isinstance(value, Mapping)
                and isinstance(merged[block][key], Mapping)
            ):
                merged[block][key].update(copy.deepcopy(dict(value)))
            else:
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
        raise _input_error("task", f"unknown task {task!r} (expected 'center_out' or 'maze')")
    if not isinstance(session_id, str) or not session_id.strip():
        raise _input_error("session_id", f"expected a non-empty string, got {session_id!r}")
    if not isinstance(subject, str) or not subject.strip():
        raise _input_error("subject", f"expected a non-empty string, got {subject!r}")
    if not isinstance(date, str) or not _DATE_RE.match(date):
        raise _input_error("date", f"expected 'YYYY-MM-DD', got {date!r}")
    try:
        day = _dt.date.fromisoformat(date)
    except ValueError as exc:
        raise _input_error("date", f"invalid date {date!r} ({exc})") from None
    if hemisphere not in ("left", "right"):
        raise _input_error("hemisphere", f"expected 'left' or 'right', got {hemisphere!r}")
    if isinstance(areas, str) or not isinstance(areas, Sequence) or len(areas) == 0:
        raise _input_error("areas", f"expected a non-empty list of area names, got {areas!r}")
    for area in areas:
        if area not in AREAS:
            raise _input_error("areas", f"unknown area {area!r} (allowed: {', '.join(AREAS)})")
        if area not in TASK_AREAS[task]:
            raise _input_error(
                "areas",
                f"area {area!r} is not recorded in the {task} task (allowed: {', '.join(TASK_AREAS[task])})",
            )
    if len(set(areas)) != len(areas):
        raise _input_error("areas", f"duplicate area names in {list(areas)!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
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
    pts = (1 - s) ** 2 * p0[:, None] + 2 * s * (1 - s) * p1[:, None] + s**2 * p2[:, None]
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
    return np.concatenate([rng.permutation(n_items) for _ in range(n_blocks)])[:n_trials]


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
    return np.stack([c * vec[:, 0] - s * vec[:, 1], s * vec[:, 0] + c * vec[:, 1]], axis=1)


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
    return np.sort(rng.choice(n, size=n_fail, replace=False)) if n_fail else np.zeros(0, int)


def _center_out_trials(rng: np.random.Generator, cfg: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], _Segments]:
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
    rot_f = np.deg2rad(rng.uniform(20.0, 45.0, size=n) * rng.choice([-1.0, 1.0], size=n))

    theta = np.deg2rad(direction_deg)
    target = float(cfg["reach_distance_cm"]) * np.stack([np.cos(theta), np.sin(theta)], axis=1)
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
    cond_angle = (base + 360.0 * np.arange(nc) / nc + rng.uniform(-0.2, 0.2, nc) * 360.0 / nc) % 360
    cond_dist = _uniform(rng, cfg["target_distance_cm"], nc)
    if len(cfg["trial_types"]) < nc:
        raise _input_error(
            "params.maze.trial_types",
            f"{len(cfg['trial_types'])} trial types for n_conditions = {nc}",
        )
    trial_type_ids = np.asarray(cfg["trial_types"][:nc], dtype=np.int64)
    maze_ids = rng.choice(np.arange(1, 1000 + 30 * nc), size=(nc, 3), replace=False)
    num_barriers = np.concatenate([np.zeros((nc, 1), int), rng.integers(1, 4, size=(nc, 2))], axis=1)
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


def _smooth_noise(rng: np.random.Generator, n: int, sd: float, width: int) -> np.ndarray:
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


def _channels_and_sorts(rng: np.random.Generator, n_units: int) -> tuple[np.ndarray, np.ndarray]:
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


def _area_value(neu: Mapping[str, Any], key: str, area: str) -> Any:
    """Value of a (possibly per-area) ``neural`` parameter for one area.

    Args:
        neu: ``neural`` parameter block.
        key: Parameter name.
        area: Area name.

    Returns:
        ``neu[key][area]`` when the parameter is a mapping, else ``neu[key]``.

    Raises:
        InputError: (a ValueError) If the mapping has no value for ``area``.
    """
    value = neu[key]
    if isinstance(value, Mapping):
        if area not in value:
            raise _input_error(f"params.neural.{key}", f"no value for area {area!r}")
        return value[area]
    return value


def _population(seed: int, subject: str, year: int, area: str, neu: Mapping[str, Any]) -> dict[str, float]:
    """Population tuning of one subject, year and area (shared by that year's sessions).

    Drawn from ``np.random.default_rng([seed, crc32(subject), year, area index])``,
    independently of the session, so the sessions of one year share it and the
    population tuning drifts between years.

    Args:
        seed: Simulation seed.
        subject: Subject id.
        year: Calendar year of the session.
        area: Area name.
        neu: ``neural`` parameter block.

    Returns:
        ``pd_axis_deg`` (axis of the clustered preferred directions, [0, 180))
        and ``lag_shift_s`` (added to every lag of the area).
    """
    rng = np.random.default_rng([int(seed), zlib.crc32(subject.encode("utf-8")), int(year), AREAS.index(area)])
    axis = float(rng.uniform(0.0, 180.0))
    shift = float(rng.uniform(-1.0, 1.0) * float(neu["year_lag_shift_s"]))
    return {"pd_axis_deg": axis, "lag_shift_s": shift}


def _draw_units(
    rng: np.random.Generator,
    task: str,
    areas: Sequence[str],
    counts: Mapping[str, int],
    neu: Mapping[str, Any],
    population: Mapping[str, Mapping[str, float]] | None = None,
) -> _Units:
    """Draw the session's units and their tuning parameters.

    Args:
        rng: Random generator.
        task: ``center_out`` or ``maze``.
        areas: Requested areas in canonical order.
        counts: Units per area.
        neu: ``neural`` parameter block.
        population: Per area, the year's population tuning (:func:`_population`);
            None = no clustering axis and no lag shift.

    Returns:
        Units in NWB order (maze: PMd then M1; center-out: canonical area
        order), each area sorted by unit id.

    Raises:
        InputError: (a ValueError) If an area has no unit count in ``counts``.
    """
    from scipy.special import ndtr, ndtri

    block = "maze" if task == "maze" else "center_out"
    row_areas = ("PMd", "M1") if task == "maze" else tuple(areas)
    order = [a for a in row_areas if a in areas]
    cols: dict[str, list[np.ndarray]] = {}

    def put(key: str, arr: np.ndarray) -> None:
        """Append one area's values of truth field ``key``."""
        cols.setdefault(key, []).append(np.asarray(arr))

    for area in order:
        if area not in counts:
            raise _input_error(f"params.{block}.units", f"no unit count for area {area!r}")
        n = int(counts[area])
        pop = (population or {}).get(area, {"pd_axis_deg": 0.0, "lag_shift_s": 0.0})
        channel, sort = _channels_and_sorts(rng, n)
        # stratified log-normal draw (one per quantile stratum, shuffled): the session's
        # spread of baselines varies little from session to session, as in real recordings
        strata = (rng.permutation(n) + rng.uniform(0.0, 1.0, size=n)) / n
        normal = ndtri(strata)
        baseline = np.clip(
            float(_area_value(neu, "baseline_median_hz", area))
            * np.exp(float(_area_value(neu, "baseline_log_sd", area)) * normal),
            *neu["baseline_range_hz"],
        )
        # Preferred directions: uniform, or clustered on the year's axis (either end).
        clustered = rng.random(n) < (float(neu["pd_cluster_fraction"]) if population else 0.0)
        mode = np.where(rng.random(n) < 0.5, 0.0, 180.0)
        kappa = float(neu["pd_cluster_concentration"])
        around = np.rad2deg(rng.vonmises(0.0, kappa, size=n)) if kappa > 0 else rng.uniform(-180.0, 180.0, size=n)
        pd = np.where(clustered, pop["pd_axis_deg"] + mode + around, rng.uniform(0.0, 360.0, size=n)) % 360.0
        depth = _uniform(rng, _area_value(neu, "modulation_depth", area), n)
        exponent = _uniform(rng, neu["speed_exponent"], n)
        acc = _uniform(rng, neu["acc_depth"], n)
        acc_pd = rng.uniform(0.0, 360.0, size=n)
        late = _uniform(rng, neu["late_depth"], n)
        late_pd = rng.uniform(0.0, 360.0, size=n)
        late_delay = _uniform(rng, neu["late_delay_s"], n)
        speed = _uniform(rng, neu["speed_depth"], n)
        cis = _uniform(rng, _area_value(neu, "cis_depth", area), n)
        cis_lead = float(neu["cis_lead_s"]) + rng.uniform(-1.0, 1.0, size=n) * float(neu["cis_jitter_s"])
        # link offsets follow the baselines (rank correlation ~ link_baseline_coupling):
        # low-baseline units tend to the exponential (rectified, phasic) end
        lo, hi = (float(x) for x in neu["link_offset"])
        coupling = float(neu["link_baseline_coupling"])
        zb = np.log(baseline)
        zb = (zb - zb.mean()) / zb.std() if n > 1 and zb.std() > 0 else np.zeros(n)
        mix = coupling * zb + math.sqrt(1.0 - coupling**2) * rng.standard_normal(n)
        link = lo + (hi - lo) * ndtr(mix)
        jitter = rng.uniform(-1.0, 1.0, size=n) * float(_area_value(neu, "lag_jitter_s", area))
        prep = _uniform(rng, neu["pmd_prep_depth"], n)
        prep_pd = (pd + float(neu["prep_pd_sd_deg"]) * rng.standard_normal(n)) % 360.0
        posd = _uniform(rng, neu["s1_position_depth"], n)
        pos_pd = rng.uniform(0.0, 360.0, size=n)
        loading = rng.uniform(0.5, 1.5, size=n)
        dead = np.maximum(_uniform(rng, _area_value(neu, "dead_time_s", area), n), float(neu["refractory_s"]))
        lag0 = {"M1": neu["m1_lag_s"], "PMd": neu["pmd_lag_s"], "S1": neu["s1_lag_s"]}[area]
        move_scale = float(neu["pmd_movement_scale"]) if area == "PMd" else 1.0
        depth, speed, cis = depth * move_scale, speed * move_scale, cis * move_scale
        acc, late = acc * move_scale, late * move_scale
        row_offset = N_CHANNELS * row_areas.index(area)
        nwb_row = channel - 1 if task == "maze" else channel - 1 + row_offset
        put("unit_id", 1000 * AREA_ID_PREFIX[area] + 10 * channel + sort)
        put("unit_area", np.full(n, area, dtype="<U3"))
        put("preferred_direction_deg", pd)
        put("pd_clustered", clustered)
        put("population_pd_axis_deg", np.full(n, pop["pd_axis_deg"]))
        put("gain", baseline * depth / float(neu["reference_speed_cm_s"]))
        put("baseline_hz", baseline)
        put("lag_s", float(lag0) + float(pop["lag_shift_s"]) + jitter)
        put("modulation_depth", depth)
        put("speed_exponent", exponent)
        put("acc_depth", acc)
        put("acc_direction_deg", acc_pd)
        put("late_depth", late)
        put("late_direction_deg", late_pd)
        put("late_lag_s", float(lag0) + float(pop["lag_shift_s"]) + jitter - late_delay)
        put("speed_depth", speed)
        put("cis_depth", cis)
        put("cis_lead_s", cis_lead)
        put("link_offset", link)
        put("prep_depth", prep if area == "PMd" else np.zeros(n))
        put("prep_direction_deg", prep_pd if area == "PMd" else pd)
        put("position_depth", posd if area == "S1" else np.zeros(n))
        put("position_direction_deg", pos_pd if area == "S1" else pd)
        put("gain_loading", loading)
        put("shared_gain_sd", np.full(n, float(_area_value(neu, "shared_gain_sd", area))))
        put("private_gain_sd", np.full(n, float(_area_value(neu, "private_gain_sd", area))))
        put("fast_noise_sd", np.full(n, float(_area_value(neu, "fast_noise_sd", area))))
        put("burst_fraction", np.full(n, float(_area_value(neu, "burst_fraction", area))))
        put("dead_time_s", dead)
        put("unit_channel", channel)
        put("unit_sort", sort)
        put("unit_electrode_row", channel - 1 + row_offset)
        put("unit_nwb_electrode_row", nwb_row)
    values = {k: np.concatenate(v) for k, v in cols.items()}
    values["unit_id"] = values["unit_id"].astype(np.int64)
    values["pd_clustered"] = values["pd_clustered"].astype(bool)
    for key in (
        "unit_channel",
        "unit_sort",
        "unit_electrode_row",
        "unit_nwb_electrode_row",
    ):
        values[key] = values[key].astype(np.int64)
    return _Units(values)


def _prep_signal(trials: Mapping[str, np.ndarray], n_bins: int, dt: float, neu: Mapping[str, Any]) -> np.ndarray:
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


def _poisson_spike_times(rng: np.random.Generator, rate: np.ndarray, dt: float, refractory: float) -> np.ndarray:
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


def _softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow (``max(x, 0) + log1p(exp(-|x|))``)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.exp(-np.abs(x))
    np.log1p(out, out=out)
    out += np.maximum(x, 0.0)
    return out


def _link_constants(offset: float) -> tuple[float, float]:
    """Slope and normaliser of the unit's link ``softplus(slope * h + offset) / norm``.

    Chosen so that the link is 1 at ``h = 0`` with derivative 1 there: the rate is
    ``baseline * (1 + h)`` for small drives, exponential (``exp(h)``) for a very
    negative offset and linear-rectified (``max(0, 1 + h)``) for a large one.

    Args:
        offset: Softplus offset of the unit.

    Returns:
        ``(slope, norm)``.
    """
    norm = math.log1p(math.exp(-abs(offset))) + max(offset, 0.0)
    e = math.exp(-abs(offset))
    sigmoid = 1.0 / (1.0 + e) if offset >= 0 else e / (1.0 + e)
    return norm / sigmoid, norm


def _cis_signal(trials: Mapping[str, np.ndarray], grid: np.ndarray, lead: float, width: float) -> np.ndarray:
    """Condition-independent transient: a Gaussian bump before every movement onset.

    Args:
        trials: Trial arrays (``move_onset_time``).
        grid: Times (s), sorted.
        lead: The bump peaks this long before movement onset (s).
        width: SD of the bump (s).

    Returns:
        Array like ``grid`` (peak 1 per trial).
    """
    out = np.zeros(len(grid))
    dt = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    half = int(np.ceil(4 * width / dt))
    for centre in trials["move_onset_time"] - lead:
        k = int(np.searchsorted(grid, centre))
        i0, i1 = max(0, k - half), min(len(grid), k + half + 1)
        out[i0:i1] += np.exp(-0.5 * ((grid[i0:i1] - centre) / width) ** 2)
    return out


def _trial_gains(
    rng: np.random.Generator,
    units: _Units,
    n_trials: int,
    neu: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Multiplicative trial gains: a shared latent per area plus private per-unit terms.

    The shared latent ``z_a`` of area ``a`` is an AR(1) sequence over trials
    (unit variance, coefficient ``shared_gain_autocorr[a]``; near 1 = a slow
    drift over the session); unit ``u`` gets
    ``exp(sd_shared * loading_u * z_a + sd_private * e_u - variance / 2)`` with
    independent ``e_u`` per trial: a log-normal gain of mean 1.

    Args:
        rng: Random generator.
        units: Units (``unit_area``, ``shared_gain_sd``, ``private_gain_sd``,
            ``gain_loading``).
        n_trials: Number of trials.
        neu: ``neural`` parameter block.

    Returns:
        ``(gains, z)``: ``(n_units, n_trials)`` gains and the ``(n_areas, n_trials)``
        latents, areas in canonical order (:data:`AREAS`, those present).
    """
    v = units.values
    present = [a for a in AREAS if np.any(v["unit_area"] == a)]
    z = np.zeros((len(present), n_trials))
    for k, area in enumerate(present):
        a = float(_area_value(neu, "shared_gain_autocorr", area))
        innov = rng.standard_normal(n_trials)
        prev = 0.0
        for i in range(n_trials):
            prev = a * prev + math.sqrt(1.0 - a * a) * innov[i] if i else innov[0]
            z[k, i] = prev
    row = np.array([present.index(a) for a in v["unit_area"]], dtype=np.int64)
    shared = (v["shared_gain_sd"] * v["gain_loading"])[:, None]
    private = v["private_gain_sd"][:, None]
    e = rng.standard_normal((len(units), n_trials))
    log_gain = shared * z[row] + private * e - 0.5 * (shared**2 + private**2)
    return np.exp(log_gain), z


def _fast_noise(rng: np.random.Generator, n_bins: int, dt: float, sd: float, tau: float) -> np.ndarray:
    """Stationary Ornstein-Uhlenbeck log-rate noise (mean-corrected), sampled every ``dt``.

    Drawn on a 10 ms grid (or ``dt`` when coarser) and held constant in between.

    Args:
        rng: Random generator.
        n_bins: Samples wanted.
        dt: Sample spacing (s).
        sd: Stationary SD.
        tau: Time constant (s).

    Returns:
        ``(n_bins,)`` values ``x - sd**2 / 2`` (so ``exp`` of it has mean 1).
    """
    from scipy.signal import lfilter

    step = max(1, int(round(0.01 / dt)))
    n_coarse = -(-n_bins // step)
    a = math.exp(-step * dt / tau)
    white = rng.standard_normal(n_coarse)
    x0 = white[0] * sd
    y = lfilter([sd * math.sqrt(1.0 - a * a)], [1.0, -a], white[1:], zi=[a * x0])[0]
    coarse = np.concatenate([[x0], y])
    return np.repeat(coarse, step)[:n_bins] - 0.5 * sd * sd


def _add_bursts(rng: np.random.Generator, times: np.ndarray, fraction: float, refractory: float) -> np.ndarray:
    """Follow a random share of spikes by a second spike 2-5 ms later (a two-spike burst).

    Args:
        rng: Random generator.
        times: Sorted spike times (s).
        fraction: Probability that a spike starts a burst.
        refractory: Absolute refractory period (s); added spikes closer than this
            to their predecessor are dropped.

    Returns:
        Sorted spike times with the burst spikes added.
    """
    starts = rng.random(len(times)) < fraction
    extra = times[starts] + rng.uniform(0.002, 0.005, size=int(starts.sum()))
    out = np.sort(np.concatenate([times, extra]), kind="stable")
    if len(out) > 1:
        keep = np.concatenate([[True], np.diff(out) >= refractory])
        out = out[keep]
    return out


def _encoded_kinematics(
    pos: np.ndarray,
    vel: np.ndarray,
    acc: np.ndarray,
    trial_of_sample: np.ndarray,
    angle_rad: np.ndarray,
    log_gain: np.ndarray,
    neu: Mapping[str, Any],
) -> dict[str, np.ndarray]:
    """The kinematics an area's neurons encode: the recorded ones turned and scaled per trial.

    Args:
        pos: Positions (n, 2), cm.
        vel: Velocities (n, 2), cm/s.
        acc: Accelerations (n, 2), cm/s^2.
        trial_of_sample: Trial index of every sample (n,).
        angle_rad: Per-trial rotation (n_trials,), radians.
        log_gain: Per-trial log scale of the velocity and acceleration (n_trials,).
        neu: ``neural`` parameter block.

    Returns:
        ``pos`` (cm), ``acc`` (per reference acceleration), ``vel`` (per reference
        speed), ``unit_vel`` (unit vector of the velocity, 0 at rest), ``rel_speed``
        (per reference speed) and ``log_speed`` (its log, floored at 1e-6).
    """
    ang = angle_rad[trial_of_sample]
    gain = np.exp(log_gain[trial_of_sample])
    c, s = np.cos(ang), np.sin(ang)

    def turn(xy: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
        """Rotate by the trial's angle and scale."""
        out = np.empty_like(xy)
        out[:, 0] = (c * xy[:, 0] - s * xy[:, 1]) * scale
        out[:, 1] = (s * xy[:, 0] + c * xy[:, 1]) * scale
        return out

    vref = float(neu["reference_speed_cm_s"])
    vel_e = turn(vel, gain / vref)
    rel_speed = np.hypot(vel_e[:, 0], vel_e[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_vel = np.where(rel_speed[:, None] > 1e-9 / vref, vel_e / rel_speed[:, None], 0.0)
    return {
        "pos": turn(pos, 1.0),
        "acc": turn(acc, gain / float(neu["reference_acc_cm_s2"])),
        "vel": vel_e,
        "unit_vel": unit_vel,
        "rel_speed": rel_speed,
        "log_speed": np.log(np.maximum(rel_speed, 1e-6)),
    }


def _simulate_spikes(
    rng: np.random.Generator,
    units: _Units,
    segments: _Segments,
    trials: Mapping[str, np.ndarray],
    duration: float,
    neu: Mapping[str, Any],
) -> tuple[list[np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """Generate spike trains for all units from the noiseless kinematics.

    The rate of unit ``u`` (see the module docstring) is
    ``baseline * gain_u(trial) * noise_u(t) * link_u(h_u(t))`` with the drive
    ``h_u`` evaluated on the area's encoded kinematics at ``t + lag_u``; spikes are
    a dead-time-thinned Poisson process whose input intensity is raised so that
    the output rate matches.

    Args:
        rng: Random generator.
        units: Units and tuning parameters.
        segments: Movement segments (true kinematics).
        trials: Trial arrays.
        duration: Session duration (s).
        neu: ``neural`` parameter block.

    Returns:
        ``(spikes, shared_gain, encoding)``: one sorted float64 array of spike
        times (s) per unit; the ``(n_areas, n_trials)`` shared log-gain latents
        (areas in canonical order); per-trial ``encoding_angle_deg_<area>`` and
        ``encoding_gain_<area>`` (rotation and scale of the encoded kinematics).
    """
    dt = float(neu["dt_s"])
    n_bins = int(np.ceil(duration / dt))
    # The drive is sampled on the dt grid (lags resolved to dt) every `step` samples: the rate
    # is piecewise constant on bins of rate_dt_s, centred on the sample.
    step = max(1, int(round(float(neu["rate_dt_s"]) / dt)))
    rdt = step * dt
    n_coarse = -(-n_bins // step)
    v = units.values
    lags = v["lag_s"]
    shifts = np.rint(lags / dt).astype(int)
    cis_shifts = np.rint((lags + v["cis_lead_s"]) / dt).astype(int)
    late_shifts = np.rint(v["late_lag_s"] / dt).astype(int)
    pad = int(max(np.abs(shifts).max(), np.abs(cis_shifts).max(), np.abs(late_shifts).max())) + 2 if len(shifts) else 2
    grid = (np.arange(-pad, n_coarse * step + pad) + 0.5) * dt
    pos, vel = segments.evaluate(grid)
    acc = np.gradient(vel, dt, axis=0)
    n_trials = len(trials["start_time"])
    trial_of_sample = np.clip(np.searchsorted(trials["start_time"], grid, side="right") - 1, 0, n_trials - 1)
    dref = float(neu["reference_distance_cm"])
    # condition-independent bump centred on each movement onset; unit u reads it at
    # t + lag_u + cis_lead_u, so its own bump peaks cis_lead_u before the (lagged) onset
    cis_signal = _cis_signal(trials, grid, 0.0, float(neu["cis_width_s"]))
    cis_phased = [np.ascontiguousarray(cis_signal[r::step]) for r in range(step)]
    mid = step // 2
    prep = None
    if np.any(v["prep_depth"] > 0):
        prep = _prep_signal(trials, n_coarse * step, dt, neu)[mid::step]
    # per-trial mismatch between recorded and encoded kinematics, shared by the areas
    mismatch_angle = rng.standard_normal(n_trials)
    mismatch_gain = rng.standard_normal(n_trials)
    gains, z = _trial_gains(rng, units, n_trials, neu)
    centres = (np.arange(n_coarse) + 0.5) * rdt
    trial_of_bin = np.clip(np.searchsorted(trials["start_time"], centres, side="right") - 1, 0, n_trials - 1)
    floor = float(neu["rate_floor_fraction"])
    max_rate = float(neu["max_rate_hz"])
    tau_fast = float(neu["fast_noise_tau_s"])
    spikes: list[np.ndarray] = [np.zeros(0)] * len(units)
    encoding: dict[str, np.ndarray] = {}
    for area in [a for a in AREAS if np.any(v["unit_area"] == a)]:
        angle = np.deg2rad(float(_area_value(neu, "encoding_angle_sd_deg", area))) * mismatch_angle
        log_gain = float(_area_value(neu, "encoding_gain_sd", area)) * mismatch_gain
        encoding[f"encoding_angle_deg_{area}"] = np.rad2deg(angle)
        encoding[f"encoding_gain_{area}"] = np.exp(log_gain)
        kin = _encoded_kinematics(pos, vel, acc, trial_of_sample, angle, log_gain, neu)
        # contiguous copies per phase of the step, so each unit reads contiguous memory
        phased = {name: [np.ascontiguousarray(arr[r::step]) for r in range(step)] for name, arr in kin.items()}
        del kin
        for u in np.flatnonzero(v["unit_area"] == area):
            phase, start = divmod(pad + shifts[u] + mid, step)[::-1]
            sl = slice(start, start + n_coarse)
            ang = np.deg2rad(v["preferred_direction_deg"][u])
            c, s = np.cos(ang), np.sin(ang)
            uv = phased["unit_vel"][phase]
            # direction x speed: depth * (speed / ref) ** exponent * cos(movement dir - PD)
            drive = np.exp(v["speed_exponent"][u] * phased["log_speed"][phase][sl])
            drive *= uv[sl, 0] * c + uv[sl, 1] * s
            drive *= v["modulation_depth"][u]
            drive += v["speed_depth"][u] * phased["rel_speed"][phase][sl]
            if v["acc_depth"][u] > 0:
                a_ = phased["acc"][phase]
                ang_a = np.deg2rad(v["acc_direction_deg"][u])
                drive += v["acc_depth"][u] * (a_[sl, 0] * np.cos(ang_a) + a_[sl, 1] * np.sin(ang_a))
            if v["late_depth"][u] > 0:
                late_phase, late_start = divmod(pad + late_shifts[u] + mid, step)[::-1]
                vl = phased["vel"][late_phase][late_start : late_start + n_coarse]
                ang_l = np.deg2rad(v["late_direction_deg"][u])
                drive += v["late_depth"][u] * (vl[:, 0] * np.cos(ang_l) + vl[:, 1] * np.sin(ang_l))
            cis_phase, cis_start = divmod(pad + cis_shifts[u] + mid, step)[::-1]
            drive += v["cis_depth"][u] * cis_phased[cis_phase][cis_start : cis_start + n_coarse]
            if v["prep_depth"][u] > 0 and prep is not None:
                ang_p = np.deg2rad(v["prep_direction_deg"][u])
                drive += v["prep_depth"][u] * (prep[:, 0] * np.cos(ang_p) + prep[:, 1] * np.sin(ang_p))
            if v["position_depth"][u] > 0:
                p_ = phased["pos"][phase]
                ang_x = np.deg2rad(v["position_direction_deg"][u])
                drive += (v["position_depth"][u] / dref) * (p_[sl, 0] * np.cos(ang_x) + p_[sl, 1] * np.sin(ang_x))
            slope, norm = _link_constants(float(v["link_offset"][u]))
            base = v["baseline_hz"][u]
            rate = _softplus(slope * drive + v["link_offset"][u]) * (base / norm)
            rate *= gains[u][trial_of_bin]
            if v["fast_noise_sd"][u] > 0:
                rate *= np.exp(_fast_noise(rng, n_coarse, rdt, float(v["fast_noise_sd"][u]), tau_fast))
            dead = float(v["dead_time_s"][u])
            # the dead time lowers the rate to r / (1 + r * dead): feed r / (1 - r * dead)
            top = min(max_rate, 0.8 / dead) if dead > 0 else max_rate
            rate = np.clip(rate, min(floor * base, top), top)
            rate = rate / (1.0 - rate * dead)
            burst = float(v["burst_fraction"][u])
            if burst > 0:
                rate /= 1.0 + burst
            times = _poisson_spike_times(rng, rate, rdt, dead)
            if burst > 0:
                times = _add_bursts(rng, times, burst, float(neu["refractory_s"]))
            spikes[u] = times[times < n_bins * dt]
    return spikes, z, encoding


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

    start = _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC)
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


def _add_arrays(nwbfile: Any, array_areas: Sequence[str], hemisphere: str, maze: bool) -> None:
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
                f"Electrodes of the implanted Utah array in {area} ({_AREA_LONG_NAME[area]}), {hemisphere} hemisphere"
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
    cursor_pos = np.concatenate([np.repeat(hand_pos[:1], lag, axis=0), hand_pos[: len(hand_pos) - lag]])
    module = nwbfile.create_processing_module("behavior", "Simulated hand and cursor kinematics")
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


def _write_outputs(nwb_path: Path, truth_path: Path, nwbfile: Any, truth: Mapping[str, Any]) -> None:
    """Write the NWB file and truth archive atomically.

    Both are written to temporary files beside their targets and moved into
    place together (:func:`pipeline.atomic.atomic_paths`): on any error no
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
    if task == "center_out":
        _build_center_out_nwb(nwbfile, ordered_areas, hemisphere, units, spikes, trials, behavior, rate)
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
        rate_dt=max(1, int(round(float(neu["rate_dt_s"]) / float(neu["dt_s"])))) * float(neu["dt_s"]),
    )
    _write_outputs(nwb_p, truth_p, nwbfile, truth)

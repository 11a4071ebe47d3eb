"""Parameters of the simulation: their defaults (:data:`DEFAULT_PARAMS`), constants of the recording
layouts, and the validation of ``simulate_session``'s arguments and of parameter overrides (against
``params.schema.yaml``, the schema the config's ``simulation.params`` is validated with too).
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError, schema_problem

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
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


#: the schema of the parameter overrides (package data beside this module; the config's
#: ``simulation.params`` is validated against it too, see :mod:`pipeline.stages.config`)
SCHEMA_PATH = Path(__file__).resolve().with_name("params.schema.yaml")


@functools.cache
def params_schema() -> dict:
    """The JSON schema of a ``params`` override (``pipeline/simulate/params.schema.yaml``)."""
    import yaml

    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(params_schema())


def _field(path, prefix: str = "params") -> str:
    return ".".join([prefix, *map(str, path)])


def check_beyond_schema(params: Mapping[str, Any], error) -> None:
    """What the schema cannot state: finite numbers, ``[low, high]`` ranges in order, split
    fractions that sum to 1. ``error(path, problem)`` makes the exception to raise."""

    def walk(value, path):
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, Sequence) and not isinstance(value, str):
            numbers = [v for v in value if _is_number(v)]
            if not all(math.isfinite(v) for v in numbers):
                raise error(path, f"values must be finite, got {list(value)!r}")
            key = next(str(p) for p in reversed(path) if str(p) not in AREAS)
            if key == "split_fractions" and not math.isclose(sum(numbers), 1.0, abs_tol=1e-6):
                raise error(path, f"fractions must sum to 1, got {list(value)!r}")
            if key in _RANGE_KEYS and len(numbers) == 2 and numbers[0] > numbers[1]:
                raise error(path, f"expected [low, high] with low <= high, got {list(value)!r}")
        elif _is_number(value) and not math.isfinite(value):
            raise error(path, f"expected a finite number, got {value!r}")

    walk(params, ())


def validate_params(params: Mapping[str, Any], source: str = "simulate_session", prefix: str = "params") -> None:
    """Check a ``params`` override against :func:`params_schema` and the checks beyond it.

    Args:
        params: the override (``{block: {key: value}}``).
        source, prefix: what the error names: ``simulate_session [params.<block>.<key>]`` by default,
            ``<config file> [simulation.params.<block>.<key>]`` for the workflow's config.

    Raises:
        InputError: naming the first offending ``<prefix>.<block>.<key>[.<area>]``.
    """
    import jsonschema

    def error(path, problem):
        return InputError(source, _field(path, prefix), problem)

    found = jsonschema.exceptions.best_match(_validator().iter_errors(params))
    if found is not None:
        raise error(*schema_problem(found))
    check_beyond_schema(params, error)


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
        InputError: (a ValueError) On an unknown block or key, or an invalid value
            (:func:`validate_params`); the message names the offending ``params.<block>.<key>``.
    """
    merged = copy.deepcopy(DEFAULT_PARAMS)
    if params is None:
        return merged
    if not isinstance(params, Mapping):
        raise _input_error("params", f"expected a mapping or None, got {type(params).__name__}")
    validate_params(params)
    for block, overrides in params.items():
        for key, value in overrides.items():
            if block == "neural" and key in _PER_AREA_KEYS and isinstance(value, Mapping):
                merged[block][key].update(copy.deepcopy(dict(value)))
            else:
                merged[block][key] = copy.deepcopy(value)
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

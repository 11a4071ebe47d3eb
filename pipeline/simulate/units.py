"""The simulated units: the population tuning of a subject, year and area (:func:`_population`) and
each unit's tuning, gains, lags, dead time and channel (:func:`_draw_units`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.simulate.kinematics import _uniform
from pipeline.simulate.params import AREA_ID_PREFIX, AREAS, MAX_SORTS_PER_CHANNEL, N_CHANNELS, _input_error


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

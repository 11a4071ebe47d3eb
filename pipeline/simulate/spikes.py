"""Rates and spikes: the kinematics each unit encodes, the link function, trial gains and noise,
and the dead-time spike trains (:func:`_simulate_spikes`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.simulate.kinematics import _Segments
from pipeline.simulate.params import AREAS
from pipeline.simulate.units import _area_value, _Units


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

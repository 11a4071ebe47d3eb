"""Trials and hand kinematics: the center-out and maze trial schedules, minimum-jerk reaches along
quadratic Bezier paths, and the sampled position, velocity and acceleration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.simulate.params import _input_error


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

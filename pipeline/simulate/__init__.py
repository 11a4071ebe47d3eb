"""Simulated monkey reaching sessions written as real NWB files.

This package is the pipeline's built-in data source (:func:`simulate_session`). It simulates one
recording session of a macaque performing either

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

Both layouts store distances in metres (``meters``, ``m/s``, ``m/s^2``: NWB's best practice; the real
files use cm or mm), set ``units.resolution`` and, for the maze, observe every unit over the whole session,
so that nwbinspector flags nothing but the subject's missing age (:mod:`pipeline.simulate.nwb`).

Neural model (all areas), calibrated against real recordings (Chewie M1/PMd,
Han area 2, MC_Maze, Chips; :mod:`pipeline.simulate.calibration`, docs/calibration.md).
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
temporary file beside the target, moved into place: :mod:`pipeline.data.atomic`).

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

Modules, in the order a session is drawn: :mod:`~pipeline.simulate.params` (defaults, layout
constants, argument and parameter validation), :mod:`~pipeline.simulate.kinematics` (trials and
reaches), :mod:`~pipeline.simulate.units` (population and unit tuning),
:mod:`~pipeline.simulate.spikes` (rates and spike trains), :mod:`~pipeline.simulate.nwb` (the NWB
layouts) and :mod:`~pipeline.simulate.session` (one session end to end, written atomically).
"""

from pipeline.simulate.params import AREAS, DEFAULT_PARAMS, TASK_AREAS, resolve_params
from pipeline.simulate.session import simulate_session

__all__ = ["AREAS", "DEFAULT_PARAMS", "TASK_AREAS", "resolve_params", "simulate_session"]

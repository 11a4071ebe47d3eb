"""Small NWB files written with pynwb for the reader and prepare tests, and nwbinspector's verdict on a file
(the simulated recordings and the NWB exports)."""

from __future__ import annotations

from datetime import UTC

import numpy as np


def write_nwb(
    path, *, trials=True, behavior=True, nan_velocity=False, lab="Miller", n_trials=12, areas=("M1", "PMd"), seed=0
):
    """A small but complete NWB file in the DANDI 000688 layout, with parts left out on request.

    Trials of 2 s every 2.5 s, go cue 0.5 s after start, reaches along the target direction peaking
    0.5 s after the go cue; units tuned to velocity.
    """
    from datetime import datetime

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries

    rng = np.random.default_rng(seed)
    nwb = NWBFile(
        session_description="test",
        identifier=f"test-{seed}",
        lab=lab,
        session_start_time=datetime(2016, 10, 7, tzinfo=UTC),
    )
    device = nwb.create_device("array")
    for area in areas:
        group = nwb.create_electrode_group(f"electrode_group_{area}", description=area, location=area, device=device)
        for _ in range(4):
            nwb.add_electrode(location=area, group=group, group_name=group.name)
    duration = 2.5 * n_trials + 1
    rate = 500.0
    tt = np.arange(int(duration * rate)) / rate
    vel = np.zeros((len(tt), 2))
    starts = 0.5 + 2.5 * np.arange(n_trials)
    dirs = np.deg2rad(45.0 * (np.arange(n_trials) % 8))
    for s, d in zip(starts, dirs):
        speed = 20 * np.exp(-0.5 * ((tt - (s + 1.0)) / 0.12) ** 2)
        vel += speed[:, None] * np.array([np.cos(d), np.sin(d)])
    if nan_velocity:
        vel[(tt > starts[3] + 0.8) & (tt < starts[3] + 0.9)] = np.nan
    n_units = 4 * len(areas)
    for u in range(n_units):
        pd = rng.uniform(0, 2 * np.pi)
        lam = 5 + 0.8 * np.clip(vel @ np.array([np.cos(pd), np.sin(pd)]), 0, None)
        lam = np.nan_to_num(lam, nan=5.0)
        spikes = tt[rng.random(len(tt)) < lam / rate] + rng.uniform(0, 1 / rate)
        nwb.add_unit(spike_times=np.sort(spikes), electrodes=[u])
    if trials:
        nwb.add_trial_column("result", "outcome")
        nwb.add_trial_column("go_cue_time", "go cue")
        nwb.add_trial_column("target_dir", "radians")
        for i, (s, d) in enumerate(zip(starts, dirs)):
            nwb.add_trial(
                start_time=s, stop_time=s + 2.0, result="R" if i != 5 else "A", go_cue_time=s + 0.5, target_dir=d
            )
    if behavior:
        module = nwb.create_processing_module("behavior", "kinematics")
        container = BehavioralTimeSeries(name="Velocity")
        container.add_timeseries(TimeSeries(name="cursor_vel", data=vel, unit="cm/s", rate=rate, starting_time=0.0))
        module.add(container)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


#: nwbinspector checks that only flag metadata a source itself lacks (never filled in by us): the README's
#: "Export to NWB (DANDI)" lists them. The real MC_Maze file has no subject age; the .mat sources have no
#: subject metadata at all (the sheet gives the subject id only).
SOURCE_LACKS = {
    "check_subject_age": "the subject's age / date of birth",
    "check_subject_sex": "the subject's sex",
    "check_subject_species_exists": "the subject's species",
}


def inspector_problems(path) -> dict[str, list[str]]:
    """``{check: [messages]}`` of every nwbinspector message of ``path`` at BEST_PRACTICE_VIOLATION or above
    (CRITICAL, PYNWB_VALIDATION, and ERROR: a check that failed to run). Suggestions are left out."""
    import warnings

    from nwbinspector import Importance, inspect_nwbfile

    found: dict[str, list[str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in inspect_nwbfile(nwbfile_path=str(path)):
            if m.importance.value >= Importance.BEST_PRACTICE_VIOLATION.value:
                found.setdefault(m.check_function_name, []).append(
                    f"{m.importance.name} {m.object_type}/{m.object_name}: {m.message[:200]}"
                )
    return found

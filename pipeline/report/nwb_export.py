"""One session's results as a derived NWB file, to upload to DANDI next to the raw recording.

:func:`export_session` builds the file in memory from the session's prepared store, its embedding stores
(every method, area and seed trained on it) and the within-session score tables; :func:`write_session`
writes it (atomically, validated by pynwb's validator) while the source NWB file is open, so that the
source's trials table becomes an HDF5 *external link*; :func:`read_export` reads a file back into arrays.
It lives in ``report`` (the layer that turns results into things for people) because it refits the
within-session decoder (:mod:`pipeline.analysis.decoding`), which the readers in ``io`` may not import.

What the file holds (names in :data:`NAMES`):

* the source's session metadata: for an NWB source its ``session_start_time``,
  ``timestamps_reference_time``, ``session_description``, experimenter, lab, institution and the other
  ``general`` fields it has, and a copy of its subject (nothing is filled in that the source lacks); for a
  ``.mat`` source (nermat, TrialData), which has no NWB metadata, the sheet's session id, subject and date
  (``session_start_time`` = that date at 00:00 UTC, said in ``session_description``);
* ``/intervals/trials``: an external link to the source's trials table (NWB sources; relative path, so
  keep the two files side by side; a missing target reads back as no trials table, with a warning);
* processing module ``ner_pipeline``:

  - ``analysed_trials``: the trials the pipeline kept, in order, with their source trial id, train/test
    ``split``, direction class and target angle (and maze condition); a ``TimeIntervals`` whose
    ``start_time``/``stop_time`` are the analysed window on the session clock when the source has one;
  - per method, area and seed: the latent trajectories of every analysed trial and the velocity the
    within-session decoder(s) predict from them, trial-major (row ``trial * n_bins + bin``). With a
    session clock they are ``TimeSeries`` whose timestamps are the left bin edges in seconds from
    ``timestamps_reference_time``; without one (``.mat`` sources: trials already cut at the alignment
    event, no session time) they are 3-D columns ``(trial, bin, ·)`` of ``analysed_trials``, which then
    also holds ``bin_offset`` (s from the alignment event: not a session time, so not named ``*_time``);
    the file and its module say so;
  - ``hand_velocity``: the binned hand velocity the decoders were scored against;
  - ``embeddings``: one row per method/area/seed: device, iterations, final loss, training time, code
    fingerprint; ``embedding_records``: its hyper-parameters, versions, the training job's provenance record
    and the checkpoint's ``model.json``, one flattened field per row (nwbinspector wants no dictionary in a
    table cell);
  - ``within_session_decoding``: the session's rows of the within-session score tables;
  - ``inputs``: every input file or store with its sha256 where it is a file.

Velocities are stored in cm/s (as in the stores) with ``unit="m/s"`` and ``conversion=0.01``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline import __version__
from pipeline.analysis.crossdecode import decoder_specs
from pipeline.analysis.decoding import Cell, DecoderSpec, fit_velocity
from pipeline.data.atomic import atomic_path
from pipeline.data.origin import sha256_file
from pipeline.data.store import as_object_strings, validate_embedding, validate_prepared
from pipeline.errors import InputError

__all__ = ["NAMES", "ExportedSession", "export_session", "open_source", "read_export", "write_session"]

log = logging.getLogger(__name__)

#: names of the objects in the file
NAMES = {
    "module": "ner_pipeline",
    "trials": "analysed_trials",
    "embeddings": "embeddings",
    "decoding": "within_session_decoding",
    "inputs": "inputs",
    "hand_velocity": "hand_velocity",
    "provenance": "embedding_records",
}
#: cm/s (the stores' unit) -> m/s (the file's declared unit)
M_PER_CM = 0.01
#: general (session) fields copied from an NWB source when it has them
SESSION_FIELDS = (
    "experimenter",
    "experiment_description",
    "session_id",
    "institution",
    "lab",
    "keywords",
    "related_publications",
    "protocol",
    "notes",
    "pharmacology",
    "surgery",
    "virus",
    "stimulus_notes",
    "slices",
    "data_collection",
)
SUBJECT_FIELDS = (
    "age",
    "age__reference",
    "description",
    "genotype",
    "sex",
    "species",
    "subject_id",
    "weight",
    "date_of_birth",
    "strain",
)
#: columns of the within-session score tables kept in ``within_session_decoding`` (docs/tables.md)
DECODING_COLUMNS = {
    "method": "embedding method",
    "seed": "training seed",
    "area": "brain area of the cell (test_area of the score table)",
    "decoder": "linear (LinearRegression / LogisticRegression) or knn (GridSearchCV k-nearest neighbours)",
    "evaluation": "in_sample (fitted and scored on the training trials) or held_out (scored on the test trials)",
    "target": "velocity, position (per-trial cumulative sum of velocity) or direction (8 classes)",
    "metric": "r2, r2_swapped (the paper's r2_score(pred, true)), peak_accuracy (%) or peak_time_s",
    "value": "the score (NaN when undefined: see note)",
    "note": "empty, or why the value is NaN",
    "n_train_trials": "training trials of the decoder",
    "n_test_trials": "scored trials",
    "labels_at_transform": "whether the method reads the labels when it embeds held-out data (piVAE)",
}


def _cell_key(ds: xr.Dataset) -> tuple[str, str, int]:
    return str(ds.attrs["method"]), str(ds.attrs["area"]), int(ds.attrs["seed"])


def _latent_name(method: str, area: str, seed: int) -> str:
    return f"latent_{method}_{area}_seed{seed}"


def _decoded_name(decoder: str, method: str, area: str, seed: int) -> str:
    return f"decoded_velocity_{decoder}_{method}_{area}_seed{seed}"


# --------------------------------------------------------------------------------------- inputs
def session_clock(prepared: xr.Dataset, ingest: xr.Dataset | None, source: str | None = None) -> np.ndarray | None:
    """Time of the alignment event of every analysed trial on the source's clock (s from its
    ``timestamps_reference_time``), or None when the source has no clock (``aligned`` ingest layout:
    .mat files already cut into trials) or no ingest dataset is given.

    Raises:
        InputError: an analysed trial is missing from the ingest dataset, or its event time is not finite.
    """
    if ingest is None or ingest.attrs.get("layout") != "spikes":
        return None
    event = str(prepared.attrs["align_event"])
    column = f"{event}_time"
    if column not in ingest:
        raise InputError(source, column, f"the ingest store has no {event} times")
    ids = ingest["trial"].values
    order = {tid: i for i, tid in enumerate(ids.tolist())}
    wanted = prepared["trial"].values.tolist()
    missing = [t for t in wanted if t not in order]
    if missing:
        raise InputError(source, "trial", f"analysed trials {missing[:5]} are not in the ingest store")
    times = np.asarray(ingest[column].values, dtype=np.float64)[[order[t] for t in wanted]]
    if not np.isfinite(times).all():
        raise InputError(source, column, "an analysed trial has no finite alignment time")
    return times


def decoded_velocity(cell: Cell, spec: DecoderSpec) -> np.ndarray:
    """The velocity ``spec``'s within-session decoder predicts for every bin of ``cell``: its velocity
    regressor (:func:`pipeline.analysis.decoding.fit_velocity`, the one :func:`~pipeline.analysis.decoding.fit`
    fits) on the cell's training bins; ``(trial, bin, 2)`` float64, the labels' unit, cm/s."""
    regressor = fit_velocity(cell, spec)
    every = cell.latent.reshape(-1, cell.latent.shape[-1])
    return np.asarray(regressor.predict(every), dtype=np.float64).reshape(*cell.latent.shape[:2], 2)


def _within_rows(scores: pd.DataFrame | None, session: str) -> pd.DataFrame | None:
    """The session's rows of within-session score tables, with :data:`DECODING_COLUMNS`."""
    if scores is None:
        return None
    needed = {"test_session", "test_area", *DECODING_COLUMNS} - {"area"}
    missing = sorted(needed - set(scores.columns))
    if missing:
        raise InputError(None, missing[0], "missing column of the within-session score table")
    rows = scores[scores["test_session"].astype(str) == session].rename(columns={"test_area": "area"})
    rows = rows[list(DECODING_COLUMNS)].reset_index(drop=True)
    rows["note"] = rows["note"].fillna("").astype(str)
    return rows


# --------------------------------------------------------------------------------------- building
def _metadata(prepared: xr.Dataset, source_nwb: Any | None, identifier: str | None, fmt: str) -> tuple[dict, Any, str]:
    """NWBFile keyword arguments, the Subject, and a note on where the metadata came from."""
    from pynwb.file import Subject

    attrs = prepared.attrs
    generated = [("ner-pipeline", __version__)]
    common = {
        "identifier": identifier or str(uuid.uuid4()),
        "was_generated_by": generated,
        "source_script": (
            f"ner-pipeline {__version__}, pipeline.report.nwb_export (rule export_nwb); prepared store code "
            f"fingerprint {attrs.get('code_fingerprint', '')}"
        ),
        "source_script_file_name": "pipeline/report/nwb_export.py",
    }
    if source_nwb is not None:
        kwargs = {
            **common,
            "session_description": source_nwb.session_description,
            "session_start_time": source_nwb.session_start_time,
            "timestamps_reference_time": source_nwb.timestamps_reference_time,
        }
        for name in SESSION_FIELDS:
            value = getattr(source_nwb, name, None)
            if value is not None and not (isinstance(value, (str, tuple, list)) and len(value) == 0):
                kwargs[name] = value
        subject = None
        if source_nwb.subject is not None:
            values = {k: getattr(source_nwb.subject, k, None) for k in SUBJECT_FIELDS}
            subject = Subject(**{k: v for k, v in values.items() if v is not None})
        return kwargs, subject, "session and subject metadata copied from the source NWB file"
    day = dt.date.fromisoformat(str(attrs["date"]))
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    description = (
        f"{attrs['task']} session {attrs['session']} of subject {attrs['subject']} ({attrs['hemisphere']} "
        f"hemisphere), read from the {fmt or 'non-NWB'} file {Path(str(attrs['source_file'])).name}, which records "
        "no NWB metadata: session_start_time is the sessions sheet's date at 00:00 UTC (time of day and time zone "
        "unknown), and the recording has no session clock (its trials are already cut at the alignment event)"
    )
    kwargs = {**common, "session_description": description, "session_start_time": start, "session_id": attrs["session"]}
    subject = Subject(
        subject_id=str(attrs["subject"]),
        description="subject id from the sessions sheet; the source file records no subject metadata",
    )
    return kwargs, subject, "metadata from the sessions sheet (the source is not NWB)"


def _loads(value: Any) -> Any:
    """A record that a store attribute may hold as JSON text, as Python values."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, text)`` of every leaf of nested dicts (and lists holding dicts or lists); lists of
    scalars stay one JSON value (nwbinspector: no dictionary inside a table cell)."""
    if isinstance(value, Mapping):
        items = [(f"{prefix}.{k}" if prefix else str(k), v) for k, v in sorted(value.items())]
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple)) for v in value):
        items = [(f"{prefix}.{i}" if prefix else str(i), v) for i, v in enumerate(value)]
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return [(prefix, text)]
    return [leaf for key, v in items for leaf in _flatten(v, key)]


def export_session(
    prepared: xr.Dataset,
    embeddings: Sequence[xr.Dataset],
    *,
    ingest: xr.Dataset | None = None,
    scores: pd.DataFrame | None = None,
    decoding: Mapping | None = None,
    models: Sequence[Mapping | None] | None = None,
    source_nwb: Any | None = None,
    link_trials: bool = True,
    inputs: Sequence[tuple[str, str, str, str]] = (),
    identifier: str | None = None,
) -> Any:
    """The derived NWB file of one session, in memory (module docstring for its contents).

    Args:
        prepared: the session's prepared dataset.
        embeddings: embedding datasets trained on ``prepared`` (any methods, areas, seeds).
        ingest: the session's ingest dataset: it holds the trials' times on the source's clock (spike
            recordings); None or an ``aligned`` dataset: no clock.
        scores: within-session score tables (any sessions: the session's rows are kept).
        decoding: the config ``decoding`` block: the decoded velocity is given for each of its
            ``decoders`` (default: the linear decoder only).
        models: per embedding, its checkpoint's ``model.json`` record (or None).
        source_nwb: the source's ``NWBFile``, still open (its metadata are copied, its trials linked); None
            for a source that is not NWB.
        link_trials: link the source's trials table as ``/intervals/trials`` (NWB sources).
        inputs: ``(role, path, sha256, what)`` rows of the ``inputs`` table (:func:`input_rows`).
        identifier: the file's NWB identifier (default: a new UUID4).

    Returns:
        A ``pynwb.NWBFile``; write it with :func:`write_session` (or ``NWBHDF5IO`` with the source's
        manager, so that links to the source work).

    Raises:
        InputError: an embedding of another session or with other trials or bins than ``prepared``.
    """
    from hdmf.common import DynamicTable
    from pynwb import NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals

    session = str(prepared.attrs["session"])
    validate_prepared(prepared, prepared.attrs.get("source_file"))
    trial_ids = prepared["trial"].values
    bin_time = np.asarray(prepared["bin_time"].values, dtype=np.float64)
    bin_size = float(prepared.attrs["bin_size_s"])
    n_trials, n_bins = len(trial_ids), len(bin_time)
    event = str(prepared.attrs["align_event"])
    fmt = str(prepared.attrs.get("source_format", ""))

    cells = []
    for i, emb in enumerate(embeddings):
        where = emb.attrs.get("store", f"embedding {i}")
        validate_embedding(emb, where)
        if str(emb.attrs["session"]) != session:
            raise InputError(where, "attrs.session", f"an embedding of {emb.attrs['session']}, not {session}")
        if not np.array_equal(emb["trial"].values, trial_ids):
            raise InputError(where, "trial", f"not the trials of the prepared store of {session}")
        if not np.allclose(emb["bin_time"].values, bin_time, rtol=0, atol=1e-9):
            raise InputError(where, "bin_time", f"not the bins of the prepared store of {session}")
        cells.append(emb)
    keys = [_cell_key(e) for e in cells]
    if len(set(keys)) != len(keys):
        raise InputError(None, "embeddings", f"the same method/area/seed twice among {keys}")

    event_time = session_clock(prepared, ingest, ingest.attrs.get("source_file") if ingest is not None else None)
    stamps = None if event_time is None else (event_time[:, None] + bin_time[None, :])
    as_series = stamps is not None and bool(np.all(np.diff(stamps.ravel()) > 0))
    if stamps is None:
        clock_note = (
            f"The source ({fmt}) records no session clock: its trials are already cut at the alignment event "
            f"({event}), so bins have times relative to that event only (column bin_offset of {NAMES['trials']}); "
            f"the latents and decoded velocities are 3-D columns (trial, bin, dimension) of {NAMES['trials']}."
        )
    elif as_series:
        clock_note = (
            "Latents and decoded velocities are TimeSeries on the source's clock: timestamps are the left edges "
            f"of the {bin_size * 1000:g}-ms bins in seconds from timestamps_reference_time; rows are trial-major "
            f"(row = trial * {n_bins} + bin, trials in the order of {NAMES['trials']})."
        )
    else:
        clock_note = (
            "The analysed windows of consecutive trials overlap, so a TimeSeries could not hold them in time order: "
            f"the latents and decoded velocities are 3-D columns (trial, bin, dimension) of {NAMES['trials']}, "
            "whose start_time/stop_time and alignment_time are on the source's clock and bin_offset is relative "
            f"to the alignment event ({event})."
        )

    kwargs, subject, meta_note = _metadata(prepared, source_nwb, identifier, fmt)
    nwbfile = NWBFile(**kwargs)
    nwbfile.subject = subject
    linked = []
    if link_trials and source_nwb is not None and source_nwb.trials is not None:
        nwbfile.trials = source_nwb.trials  # a container of the open source file: written as an external link
        linked.append("/intervals/trials")

    module = nwbfile.create_processing_module(
        NAMES["module"],
        (
            f"Results of the NER pipeline {__version__} for session {session}: latent embeddings of every analysed "
            f"trial per method, area and seed, the hand velocity their within-session decoders predict, the "
            f"train/test split and the within-session decoding scores ({meta_note}; source "
            f"{Path(str(prepared.attrs['source_file'])).name}, sha256 {prepared.attrs['source_sha256']}). "
            f"{clock_note}"
        ),
    )

    # --- the analysed trials
    split = as_object_strings(prepared["split"].values)
    trial_columns = {
        "source_trial_id": (
            np.asarray(trial_ids),
            "id of the trial in the source"
            + ("'s trials table (linked as /intervals/trials)" if linked else " (its trial order / index)"),
        ),
        "split": (split, "train or test: the chronological split every method and decoder used"),
        "direction_deg": (
            np.asarray(prepared["direction"].values, dtype=np.int16),
            "target direction rounded to 45-degree classes (0-315; -1 unknown)",
        ),
        "target_angle_deg": (
            np.asarray(prepared["target_angle"].values, dtype=np.float32),
            "target angle as the source gives it (degrees)",
        ),
    }
    for name in ("trial_type", "trial_version"):
        if name in prepared.coords:
            trial_columns[name] = (np.asarray(prepared[name].values, dtype=np.int64), f"maze condition: {name}")
    if stamps is not None:
        trial_columns["alignment_time"] = (event_time, f"time of {event} on the session clock (s)")
    table_columns = {}  # the 3-D columns of the table layout
    if not as_series:
        table_columns["bin_offset"] = (
            np.broadcast_to(bin_time, (n_trials, n_bins)).copy(),
            f"left edge of every bin in seconds from {event} (the same for every trial)",
        )
    description = (
        f"the {n_trials} trials the pipeline analysed ({int((split == 'train').sum())} train, "
        f"{int((split == 'test').sum())} test), in the order of every array of {NAMES['module']}; window: {n_bins} "
        f"bins of {bin_size:g} s from {bin_time[0]:g} s after {event}"
    )

    # --- per cell: latent, decoded velocity
    behaviour = bool(prepared.attrs.get("has_behavior", True)) and np.isfinite(prepared["velocity"].values).all()
    specs = decoder_specs(decoding) if decoding is not None else [DecoderSpec("linear")]
    series: list[Any] = []
    owner = None  # the TimeSeries whose timestamps the others link to

    def add_series(name, data, unit, description, conversion=1.0):
        nonlocal owner
        ts = TimeSeries(
            name=name,
            data=data.reshape(n_trials * n_bins, -1),
            unit=unit,
            conversion=conversion,
            description=description,
            timestamps=owner if owner is not None else stamps.ravel(),
        )
        if owner is None:
            owner = ts
        series.append(ts)

    def add(name, data, unit, description, conversion=1.0):
        if as_series:
            add_series(name, data, unit, description, conversion)
        else:
            unit_note = f" ({unit} x {conversion:g})" if unit != "a.u." else ""
            table_columns[name] = (data, f"{description}; shape (trial, bin, dimension){unit_note}")

    if behaviour:
        add(
            NAMES["hand_velocity"],
            np.asarray(prepared["velocity"].values, dtype=np.float32),
            "m/s",
            "hand velocity (x, y), mean of each bin: the target the decoders were scored against; stored in cm/s",
            M_PER_CM,
        )
    rows, provenance = [], []
    for k, emb in enumerate(cells):
        method, area, seed = _cell_key(emb)
        latent = np.asarray(emb["latent"].values, dtype=np.float32)
        name = _latent_name(method, area, seed)
        add(
            name,
            latent,
            "a.u.",
            f"{method} embedding of the {area} units (seed {seed}) of every analysed trial, "
            f"{latent.shape[-1]} dimensions (arbitrary units)",
        )
        decoded = []
        if behaviour:
            cell = Cell.from_stores(emb, prepared, source=str(emb.attrs.get("store", name)))
            for spec in specs:
                dname = _decoded_name(spec.kind, method, area, seed)
                add(
                    dname,
                    decoded_velocity(cell, spec),
                    "m/s",
                    f"hand velocity (x, y) predicted from {name} by the {spec.kind} within-session decoder fitted on "
                    "the training trials' bins (as in the within-session decoding table); stored in cm/s",
                    M_PER_CM,
                )
                decoded.append(dname)
        attrs = emb.attrs
        model = (models[k] if models is not None and k < len(models) else None) or {}
        final_loss = attrs.get("final_loss", math.nan)
        device = _loads(attrs.get("device", {}))
        rows.append(
            {
                "method": method,
                "area": area,
                "seed": seed,
                "latent": name,
                "decoded_velocity": ",".join(decoded),
                "n_dims": int(latent.shape[-1]),
                "n_units": int(attrs.get("n_units", -1)),
                "device": str(device.get("device", "")) if isinstance(device, dict) else str(device),
                "iterations": int(attrs.get("iterations", 0)),
                "final_loss": float(final_loss) if final_loss is not None else math.nan,
                "training_seconds": float(attrs.get("training_seconds", math.nan)),
                "uses_labels_at_transform": bool(attrs.get("uses_labels_at_transform", False)),
                "code_fingerprint": str(attrs.get("code_fingerprint", "")),
                "package_version": str(attrs.get("package_version", "")),
                "embedding_store": str(attrs.get("store", "")),
            }
        )
        records = {
            "params": attrs.get("params", {}),
            "device": device,
            "versions": attrs.get("versions", {}),
            "provenance": attrs.get("provenance", {}),
            "model": model,
        }
        for record, value in records.items():
            provenance += [
                {"latent": name, "record": record, "key": key, "value": text} for key, text in _flatten(_loads(value))
            ]

    if stamps is not None:
        times = {
            "start_time": (stamps[:, 0], "start of the analysed window (left edge of its first bin; s)"),
            "stop_time": (stamps[:, -1] + bin_size, "end of the analysed window (right edge of its last bin; s)"),
        }
        trials = _table(TimeIntervals, NAMES["trials"], description, {**times, **trial_columns, **table_columns})
    else:
        trials = _table(
            DynamicTable,
            NAMES["trials"],
            description + "; the source has no session clock",
            {**trial_columns, **table_columns},
        )
    module.add(trials)
    for ts in series:
        module.add(ts)

    column_docs = {
        "method": "embedding method",
        "area": "brain area whose units were embedded",
        "seed": "training seed",
        "latent": f"name of the latent trajectories ({'TimeSeries' if as_series else 'column of analysed_trials'})",
        "decoded_velocity": "names of the decoded velocities of this embedding, comma-separated",
        "n_dims": "latent dimensions",
        "n_units": "units embedded",
        "device": "device the model trained on (cpu, cuda:N)",
        "iterations": "training iterations (0 for closed-form methods)",
        "final_loss": "training loss of the last iteration (NaN without a loss)",
        "training_seconds": "training time (s)",
        "uses_labels_at_transform": "whether embedding held-out data reads their labels (piVAE)",
        "code_fingerprint": "fingerprint of the package code that trained it",
        "package_version": "ner-pipeline version",
        "embedding_store": "path of the embedding store",
    }
    module.add(
        _records(
            NAMES["embeddings"],
            "one row per embedding (method, area, seed) of this session: device, training and code; its "
            f"hyper-parameters, versions and provenance records are rows of {NAMES['provenance']}",
            rows,
            column_docs,
        )
    )
    module.add(
        _records(
            NAMES["provenance"],
            "the records of every embedding, one row per (flattened) field: its hyper-parameters (record "
            "params), device, library versions, the training job's provenance record (the config values it used, "
            "seed, device, threads, code fingerprint, inputs; empty outside the workflow) and its checkpoint's "
            "model.json (model; when given)",
            provenance,
            {
                "latent": f"the embedding (its latent's name, as in {NAMES['embeddings']})",
                "record": "params, device, versions, provenance or model",
                "key": "the field, nested keys joined by dots (list items by their index)",
                "value": "its value as text (JSON for numbers, booleans, null and lists of them)",
            },
        )
    )

    within = _within_rows(scores, session)
    if within is not None and len(within):
        module.add(
            _records(
                NAMES["decoding"],
                f"the within-session decoding scores of session {session} (group 'within' of "
                "results/decoding/within/*.scores.tsv; docs/tables.md): one row per method, seed, area, decoder, "
                "evaluation, target and metric",
                within.to_dict("records"),
                DECODING_COLUMNS,
            )
        )

    if inputs:
        module.add(
            _records(
                NAMES["inputs"],
                "the files and stores this file was derived from (paths as the workflow names them)",
                [dict(zip(("role", "path", "sha256", "what"), r)) for r in inputs],
                {
                    "role": "source, ingest, prepared, embedding, model or scores",
                    "path": "path of the input",
                    "sha256": "sha256 of a file (empty for a zarr store or folder)",
                    "what": "what it is",
                },
            )
        )
    return nwbfile


def _column_values(values: Any) -> Any:
    """A column's data for hdmf: numeric arrays as they are, strings as a list of ``str``."""
    values = np.asarray(values)
    if values.dtype.kind in "OUST":
        return [str(v) for v in values.ravel()]
    return values


def _table(cls: Any, name: str, description: str, columns: Mapping[str, tuple[Any, str]]) -> Any:
    """A ``DynamicTable`` (or ``TimeIntervals``) built from whole columns ``{name: (values, description)}``;
    a float column that is NaN in every row (no final loss for PCA, no target for a test split) is left
    out, as NWB's best practices ask."""
    from hdmf.common import VectorData

    n = len(next(iter(columns.values()))[0])
    kept = {
        c: (v, d)
        for c, (v, d) in columns.items()
        if not (n and np.asarray(v).dtype.kind == "f" and np.isnan(np.asarray(v, dtype=np.float64)).all())
    }
    return cls(
        name=name,
        description=description,
        id=np.arange(n),
        columns=[VectorData(name=c, description=d, data=_column_values(v)) for c, (v, d) in kept.items()],
    )


def _records(name: str, description: str, rows: Sequence[Mapping], docs: Mapping[str, str]) -> Any:
    """A ``DynamicTable`` of ``rows`` (dicts) with the columns ``docs`` names and describes."""
    from hdmf.common import DynamicTable

    frame = pd.DataFrame(list(rows), columns=list(docs))
    return _table(DynamicTable, name, description, {c: (frame[c].to_numpy(), d) for c, d in docs.items()})


# --------------------------------------------------------------------------------------- disk
@contextlib.contextmanager
def open_source(path: str | PathLike | None, fmt: str) -> Iterator[tuple[Any, Any]]:
    """``(NWBFile, its IO manager)`` of an NWB source, kept open for the block (its containers are linked
    from the derived file); ``(None, None)`` for any other format or no path.

    Raises:
        InputError: the file is not a readable NWB file.
    """
    if path is None or fmt != "nwb":
        yield None, None
        return
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as exc:  # h5py/hdmf raise many types for a file that is not NWB
        raise InputError(path, None, f"not a readable NWB file ({type(exc).__name__}: {exc})") from exc
    try:
        yield nwb, io.manager
    finally:
        io.close()


def write_session(nwbfile: Any, path: str | PathLike, manager: Any | None = None) -> Path:
    """Write ``nwbfile`` to ``path`` atomically and check it with pynwb's validator before it takes the
    name (the temporary file sits beside ``path``, so relative external links stay right).

    Args:
        nwbfile: from :func:`export_session`.
        path: the ``.nwb`` output.
        manager: the source file's build manager (:func:`open_source`): needed for the links to its
            containers; None when nothing is linked.

    Raises:
        RuntimeError: the written file does not validate (nothing is left at ``path``).
    """
    from pynwb import NWBHDF5IO, validate

    path = Path(path)
    with atomic_path(path) as tmp:
        with NWBHDF5IO(str(tmp), "w", manager=manager) as io:
            io.write(nwbfile, link_data=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # namespace-version chatter of the cached specs
            problems = validate(path=str(tmp))
        if problems:
            raise RuntimeError(f"{path}: the exported NWB file does not validate: {problems[:3]}")
    return path


def input_rows(
    *,
    source: str | PathLike | None,
    source_sha256: str,
    source_identifier: str | None,
    stores: Sequence[tuple[str, str | PathLike]] = (),
    tables: Sequence[str | PathLike] = (),
) -> list[tuple[str, str, str, str]]:
    """The ``inputs`` rows of a session: the source (its sha256 as ingested), stores and tables."""
    rows = []
    if source is not None:
        what = f"the recording (NWB identifier {source_identifier})" if source_identifier else "the recording"
        rows.append(("source", str(source), source_sha256, what))
    rows += [(role, str(p), "", f"{role} store" if role != "model" else "checkpoint folder") for role, p in stores]
    rows += [("scores", str(p), sha256_file(p), "within-session score table") for p in tables]
    return rows


# --------------------------------------------------------------------------------------- reading back
@dataclass
class ExportedSession:
    """A derived file read back (:func:`read_export`); arrays in the stores' units (velocities cm/s).

    Attributes:
        metadata: identifier, session_description, session_start_time, timestamps_reference_time, lab,
            institution, subject (dict) and the module's description.
        trials: ``analysed_trials`` as a frame (2-D/3-D columns left out).
        latent: ``(method, area, seed)`` -> ``(trial, bin, dim)``.
        decoded: ``(decoder, method, area, seed)`` -> ``(trial, bin, 2)``.
        hand_velocity: ``(trial, bin, 2)`` or None.
        timestamps: ``(trial, bin)`` left bin edges on the session clock, or None (no clock).
        bin_time: ``(bin,)`` s from the alignment event.
        embeddings, records, decoding, inputs: the tables as frames (decoding, inputs None when absent).
        links: ``{path in the file: (target file, target path)}`` of the external links.
    """

    metadata: dict
    trials: pd.DataFrame
    latent: dict
    decoded: dict
    hand_velocity: np.ndarray | None
    timestamps: np.ndarray | None
    bin_time: np.ndarray
    embeddings: pd.DataFrame
    records: pd.DataFrame
    decoding: pd.DataFrame | None
    inputs: pd.DataFrame | None
    links: dict = field(default_factory=dict)


def _external_links(path: Path) -> dict:
    import h5py

    found = {}

    def visit(group, prefix):
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{prefix}/{name}"
            if isinstance(link, h5py.ExternalLink):
                found[where] = (link.filename, link.path)
            elif isinstance(link, h5py.HardLink) and isinstance(group[name], h5py.Group):
                visit(group[name], where)

    with h5py.File(path, "r") as fh:
        visit(fh, "")
    return found


def _frame(table: Any, flat_only: bool = True) -> pd.DataFrame:
    data = {}
    for col in table.columns:
        if col.name.endswith("_index"):
            continue
        values = np.asarray(col.data[:])
        if flat_only and values.ndim > 1:
            continue
        data[col.name] = (
            [v.decode() if isinstance(v, bytes) else v for v in values] if values.dtype == object else values
        )
    return pd.DataFrame(data, index=np.asarray(table.id.data[:]))


def read_export(path: str | PathLike) -> ExportedSession:
    """Read a file :func:`write_session` wrote back into arrays and frames (everything is materialised
    inside one ``NWBHDF5IO`` block)."""
    from pynwb import NWBHDF5IO

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing link target reads back as no trials table, with a warning
        with NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            module = nwb.processing[NAMES["module"]]
            trials_table = module[NAMES["trials"]]
            trials = _frame(trials_table)
            n_trials = len(trials)
            embeddings = _frame(module[NAMES["embeddings"]])
            records = _frame(module[NAMES["provenance"]])
            latent, decoded = {}, {}
            names = set(module.data_interfaces)
            columns = {c.name: c for c in trials_table.columns}

            def array(name):
                if name in names:  # a TimeSeries, trial-major
                    values = np.asarray(module[name].data[:])
                    return values.reshape(n_trials, -1, values.shape[-1])
                return np.asarray(columns[name].data[:])

            for row in embeddings.itertuples():
                key = (row.method, row.area, int(row.seed))
                latent[key] = array(row.latent)
                for dname in filter(None, str(row.decoded_velocity).split(",")):
                    decoded[(dname.split("_")[2], *key)] = array(dname)
            hand = NAMES["hand_velocity"]
            hand_velocity = array(hand) if hand in names or hand in columns else None
            timestamps = None
            series = next((module[n] for n in sorted(names) if hasattr(module[n], "timestamps")), None)
            if series is not None:
                timestamps = np.asarray(series.timestamps[:]).reshape(n_trials, -1)
                bin_time = timestamps[0] - trials["alignment_time"].to_numpy()[0]
            else:
                bin_time = np.asarray(columns["bin_offset"].data[0])
                if "alignment_time" in trials:
                    timestamps = trials["alignment_time"].to_numpy()[:, None] + bin_time[None, :]
            decoding = _frame(module[NAMES["decoding"]]) if NAMES["decoding"] in names else None
            inputs = _frame(module[NAMES["inputs"]]) if NAMES["inputs"] in names else None
            subject = nwb.subject
            metadata = {
                "identifier": nwb.identifier,
                "session_description": nwb.session_description,
                "session_start_time": nwb.session_start_time,
                "timestamps_reference_time": nwb.timestamps_reference_time,
                "lab": nwb.lab,
                "institution": nwb.institution,
                "experimenter": nwb.experimenter,
                "session_id": nwb.session_id,
                "subject": {k: getattr(subject, k, None) for k in SUBJECT_FIELDS} if subject is not None else None,
                "module_description": module.description,
                "has_trials_link": nwb.trials is not None,
            }
    return ExportedSession(
        metadata=metadata,
        trials=trials,
        latent=latent,
        decoded=decoded,
        hand_velocity=hand_velocity,
        timestamps=timestamps,
        bin_time=bin_time,
        embeddings=embeddings,
        records=records,
        decoding=decoding,
        inputs=inputs,
        links=_external_links(path),
    )

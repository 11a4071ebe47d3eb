"""Readers: each turns one source format into an *ingest* dataset (layouts in :mod:`pipeline.data.store`).

``nwb``        NWB 2.x files (NLB MC_Maze/Area2_Bump layout, DANDI 000688 layout, our simulated data)
``trialdata``  Miller-lab TrialData ``.mat`` (the Dryad format of the paper's recordings)
``nermat``     the NER paper's preprocessed ``.mat`` files (already binned, smoothed and aligned)
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import xarray as xr

from pipeline.data.origin import sha256_file, versions
from pipeline.errors import InputError
from pipeline.io.nermat import read_nermat
from pipeline.io.nwb import read_nwb
from pipeline.io.trialdata import read_trialdata

log = logging.getLogger(__name__)

READERS = {"nwb": read_nwb, "trialdata": read_trialdata, "nermat": read_nermat}


def read_source(path: str | PathLike, fmt: str, areas: list[str], **options) -> xr.Dataset:
    """Dispatch to the reader of ``fmt``; ``options`` are that reader's keyword arguments.

    Raises:
        InputError: for an unknown format (naming the file and ``format``) or anything the reader rejects.
    """
    if fmt not in READERS:
        raise InputError(path, "format", f"unknown format {fmt!r} (known: {sorted(READERS)})")
    return READERS[fmt](path, areas, **options)


def read_recording(
    source: str | PathLike,
    *,
    fmt: str,
    areas: list[str],
    session: str,
    reader_options: dict | None = None,
    code_fingerprint: str = "",
) -> xr.Dataset:
    """The ingest dataset of one recording, in memory: the reader's dataset plus what the ingest store
    records about its origin (session, file and its sha256, format, areas, versions).

    Args:
        source: the recording file.
        fmt: ``nwb`` | ``trialdata`` | ``nermat``.
        areas: areas to keep (None: every area the file has).
        session: session id (recorded in the attrs).
        reader_options: extra keyword arguments for the reader.
        code_fingerprint: fingerprint of the reader modules (recorded in the attrs).

    Raises:
        InputError: naming the file and the field the reader rejects.
    """
    source = Path(source)
    ds = read_source(source, fmt, areas, **(reader_options or {}))
    ds.attrs.update(
        session=session,
        source_file=str(source),
        source_sha256=sha256_file(source),
        format=fmt,
        areas=list(areas) if areas is not None else sorted(set(map(str, ds["area"].values))),
        versions=versions(),
        code_fingerprint=code_fingerprint,
    )
    return ds

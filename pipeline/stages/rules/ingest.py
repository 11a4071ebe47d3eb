"""rule ingest: a recording file -> its ingest store."""

from __future__ import annotations

import logging
from os import PathLike

import xarray as xr

from pipeline.data.store import write_store
from pipeline.io import read_recording

log = logging.getLogger(__name__)


def run(
    source: str | PathLike,
    out: str | PathLike,
    *,
    fmt: str,
    areas: list[str] | None,
    session: str,
    reader_options: dict | None = None,
    code_fingerprint: str = "",
) -> xr.Dataset:
    """rule ingest: :func:`pipeline.io.read_recording`, written to the ingest store ``out``."""
    ds = read_recording(
        source, fmt=fmt, areas=areas, session=session, reader_options=reader_options, code_fingerprint=code_fingerprint
    )
    write_store(ds, out)
    log.info("ingested %s (%s): %s", source, fmt, dict(ds.sizes))
    return ds

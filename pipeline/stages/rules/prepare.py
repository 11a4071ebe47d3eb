"""rules prepare and maze_prepare: an ingest store -> its prepared store."""

from __future__ import annotations

from os import PathLike

import dask
import xarray as xr

from pipeline.data.store import INGEST_LAYOUTS, open_store, write_store
from pipeline.preprocess.prepare import prepare_dataset


def run(
    ingest_store: str | PathLike,
    out: str | PathLike,
    *,
    session: dict,
    preprocessing: dict,
    code_fingerprint: str = "",
    threads: int = 1,
) -> xr.Dataset:
    """rule prepare (and maze_prepare): :func:`pipeline.preprocess.prepare.prepare_dataset` of an ingest
    store, written to the prepared store ``out`` (``threads``: dask worker threads)."""
    ds = open_store(ingest_store, layout=INGEST_LAYOUTS)
    out_ds = prepare_dataset(
        ds, session=session, preprocessing=preprocessing, source=ingest_store, code_fingerprint=code_fingerprint
    )
    with dask.config.set(scheduler="threads", num_workers=max(1, int(threads))):
        write_store(out_ds, out)
    return out_ds

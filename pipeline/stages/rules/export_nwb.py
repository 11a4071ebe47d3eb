"""rule export_nwb: a session's stores and score tables -> its derived NWB file (for DANDI)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from pipeline.data.origin import sha256_file
from pipeline.data.store import INGEST_LAYOUTS, open_store
from pipeline.data.tables import read_tables
from pipeline.errors import InputError
from pipeline.report.nwb_export import export_session, input_rows, open_source, write_session

log = logging.getLogger(__name__)


def _model_record(folder: str | PathLike) -> dict | None:
    path = Path(folder) / "model.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, None, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None


def run(
    *,
    source: str | PathLike,
    ingest: str | PathLike,
    prepared: str | PathLike,
    embeddings: Sequence[str | PathLike],
    out: str | PathLike,
    fmt: str,
    models: Sequence[str | PathLike] = (),
    tables: Sequence[str | PathLike] = (),
    decoding: Mapping | None = None,
    link_source: bool = True,
) -> Path:
    """rule export_nwb: :func:`pipeline.report.nwb_export.export_session` of one session, written with
    :func:`~pipeline.report.nwb_export.write_session` (validated, atomic).

    Args:
        source: the session's recording; fmt: its format (an NWB source is opened for its metadata and,
            with ``link_source``, linked).
        ingest, prepared: the session's stores.
        embeddings: its embedding stores; models: their checkpoint folders, in the same order (optional).
        out: the ``.nwb`` output.
        tables: within-session score tables (every session's: the session's rows are kept).
        decoding: the config ``decoding`` block (its decoders give the decoded velocities).

    Raises:
        InputError: a store or table is missing or malformed, or the NWB source changed since it was
            ingested (its sha256 differs from the one the prepared store records).
    """
    prep = open_store(prepared, layout="prepared")
    ing = open_store(ingest, layout=INGEST_LAYOUTS)
    cells = []
    for store in embeddings:
        ds = open_store(store, layout="embedding")
        ds.attrs["store"] = str(store)
        cells.append(ds)
    records = [_model_record(folder) for folder in models] if models else None
    scores = read_tables(tables) if tables else None
    identifier = ing.attrs.get("nwb_identifier")
    source_sha = str(prep.attrs["source_sha256"])
    if fmt == "nwb":
        found = sha256_file(source)
        if found != source_sha:
            raise InputError(
                source,
                "sha256",
                f"changed since it was ingested ({found[:12]}..., the prepared store records {source_sha[:12]}...): "
                "rerun the session from ingest before exporting",
            )
    inputs = input_rows(
        source=source,
        source_sha256=source_sha,
        source_identifier=identifier,
        stores=[("ingest", ingest), ("prepared", prepared)]
        + [("embedding", p) for p in embeddings]
        + [("model", p) for p in models],
        tables=tables,
    )
    with open_source(source, fmt) as (nwb, manager):
        nwbfile = export_session(
            prep,
            cells,
            ingest=ing,
            scores=scores,
            decoding=decoding,
            models=records,
            source_nwb=nwb,
            link_trials=link_source,
            inputs=inputs,
        )
        write_session(nwbfile, out, manager)
    log.info("exported %s: %d embeddings -> %s", prep.attrs["session"], len(cells), out)
    return Path(out)

"""rules train and maze_train: a prepared store -> an embedding store and a checkpoint folder."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import xarray as xr

from pipeline.data.store import open_store, validate_embedding, write_store
from pipeline.embed.fit import fit_embedding

log = logging.getLogger(__name__)


def run(
    prepared: str | PathLike,
    embedding_out: str | PathLike,
    model_out: str | PathLike,
    *,
    method: str,
    params: dict,
    area: str | Sequence[str],
    seed: int,
    labels: dict,
    device: dict,
    code_fingerprint: str = "",
    threads: int = 1,
    subset: Mapping | None = None,
) -> xr.Dataset:
    """rules train and maze_train: :func:`pipeline.embed.fit.fit_embedding` on a prepared store, writing
    its embedding store and checkpoint folder (arguments as there); nothing is left on error."""
    prepared = Path(prepared)
    ds = open_store(prepared, layout="prepared")
    out, model = fit_embedding(
        ds,
        method=method,
        params=params,
        area=area,
        seed=seed,
        labels=labels,
        device=device,
        code_fingerprint=code_fingerprint,
        threads=threads,
        subset=subset,
        source=prepared,
    )
    device_info = json.loads(out.attrs["device"])
    provenance = {
        k: out.attrs[k]
        for k in ("session", "area", "seed", "method", "code_fingerprint", "subset", "subset_spec")
        if k in out.attrs
    }
    validate_embedding(out, embedding_out)
    model.save(model_out, extra={**provenance, "device": device_info})
    try:
        write_store(out, embedding_out)
    except BaseException:
        shutil.rmtree(model_out, ignore_errors=True)
        raise
    log.info("wrote %s (%s); %s", embedding_out, dict(out.sizes), f"final loss {out.attrs['final_loss']:.4f}")
    return out

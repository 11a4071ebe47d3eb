"""Where a result came from: software versions, file checksums and digests of result numbers.

Every store, table and checkpoint records :func:`versions`; inputs are identified by
:func:`sha256_file`; :func:`result_digests` hashes the numbers (not the attributes) of a results
folder so two runs can be compared (``pipeline digest``). Below every stage: the readers, prepare
and the methods record these without importing the workflow glue (:mod:`pipeline.stages`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from pathlib import Path

_TRACKED_DISTRIBUTIONS = (
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "zarr",
    "dask",
    "pynwb",
    "hdmf",
    "h5py",
    "torch",
    "scikit-learn",
    "cebra",
)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file (streamed, so multi-GB NWB files are fine)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _array_digest(values) -> str:
    import numpy as np

    values = np.asarray(values)
    digest = hashlib.sha256(f"{values.dtype}{values.shape}".encode())
    if values.dtype.kind in "OUT":  # strings: their text (an object array's bytes are pointers)
        digest.update("\x1f".join(map(str, values.ravel())).encode())
    else:
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def result_digests(root: str | os.PathLike) -> dict[str, str]:
    """sha256 of the numbers of every result under ``root`` (a workflow's ``results/`` folder).

    Keys are paths relative to ``root``: each table (``*.tsv``; ``benchmarks/`` left out: timings) and
    each array of each zarr store (``<store>/<array>``, its values with dtype and shape). Attributes
    (code fingerprints, versions, dates), figures and checkpoints are left out, so two runs digest
    equal exactly when their numbers are: a refactoring that must not change any result, or a rerun on
    another machine, is checked with ``pipeline digest results --compare before.tsv``.
    """
    import warnings

    import zarr

    root = Path(root)
    out: dict[str, str] = {}
    for table in root.rglob("*.tsv"):
        if "benchmarks" not in table.relative_to(root).parts:
            out[table.relative_to(root).as_posix()] = sha256_file(table)
    for meta in root.rglob("*.zarr/zarr.json"):
        store = meta.parent
        with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp inside directory outputs
            warnings.filterwarnings("ignore", message="Object at .* is not recognized")
            members = zarr.open_group(store, mode="r").members(max_depth=None)
        for name, node in members:
            if isinstance(node, zarr.Array):
                out[f"{store.relative_to(root).as_posix()}/{name}"] = _array_digest(node[...])
    return dict(sorted(out.items()))


def versions() -> dict[str, str]:
    """Versions of Python, this package and the libraries whose behaviour shapes our outputs."""
    from pipeline import __version__

    out = {"python": platform.python_version(), "ner-pipeline": __version__}
    for dist in _TRACKED_DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out

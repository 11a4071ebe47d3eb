"""Provenance: code fingerprints, library versions, file checksums, and the per-job records.

Snakemake tracks neither imported package modules nor config read inside a job, so each rule passes
``code_fingerprint(<modules the stage uses>)`` through ``params``; editing a module reruns exactly the
stages that import it. Every job's record (config it used, seed, device, code fingerprint, versions,
inputs; :func:`pipeline.jobs.job_record`) is stored in the zarr stores it wrote (attribute
``provenance``) and in a ``*.provenance.json`` sidecar beside its tables and figures, listing each
output with its sha256. :func:`read_provenance` finds the record of any result file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import InputError

#: attribute of a zarr store, and suffix of the sidecar of tables and figures, holding the job record
PROVENANCE_ATTR = "provenance"
SIDECAR_SUFFIX = ".provenance.json"
FOLDER_RECORD = "provenance.json"

PACKAGE_ROOT = Path(__file__).resolve().parent

_TRACKED_DISTRIBUTIONS = (
    "numpy", "scipy", "pandas", "xarray", "zarr", "dask", "pynwb", "hdmf", "h5py", "torch",
    "scikit-learn", "cebra",
)


def module_paths(modules: list[str]) -> list[Path]:
    """Resolve dotted module names (``"pipeline.io.nwb"``) or sub-packages to source files.

    A sub-package (``"pipeline.io"``) expands to every ``.py`` file below it.

    Raises:
        FileNotFoundError: when a name matches no source file, so a stale map fails loudly.
    """
    paths: list[Path] = []
    for name in modules:
        parts = name.split(".")
        if parts[0] != "pipeline":
            raise ValueError(f"only pipeline modules can be fingerprinted, got {name!r}")
        base = PACKAGE_ROOT.joinpath(*parts[1:])
        if base.is_dir():
            paths.extend(sorted(base.rglob("*.py")))
        elif base.with_suffix(".py").is_file():
            paths.append(base.with_suffix(".py"))
        else:
            raise FileNotFoundError(f"no source for module {name!r} under {PACKAGE_ROOT}")
    return sorted(set(paths))


def code_fingerprint(modules: list[str]) -> str:
    """sha256 (first 16 hex digits) over the sources of ``modules``, in sorted path order."""
    digest = hashlib.sha256()
    for path in module_paths(modules):
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file (streamed, so multi-GB NWB files are fine)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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


def _is_store(path: Path) -> bool:
    return (path / "zarr.json").is_file()


def record_provenance(record: dict, outputs: Sequence[str], sidecar: str | os.PathLike | None = None) -> dict:
    """Store a job's record in every zarr store among ``outputs`` (attribute), in every other output
    folder (``provenance.json`` inside, e.g. model checkpoints) and, if given, in a JSON sidecar.

    A store that records its own ``device`` attribute (training) contributes it to the record. The
    sidecar (written atomically) adds ``outputs``: each output path with its sha256, ``"zarr store"``
    or ``"folder"``.

    Returns:
        The record as written to the sidecar.
    """
    import zarr  # only the jobs need zarr; the workflow imports this module to fingerprint code

    record = dict(record)
    files: dict[str, str] = {}
    folders = []
    for out in outputs:
        path = Path(out)
        if _is_store(path):
            attrs = zarr.open_group(str(path), mode="r+").attrs
            device = attrs.get("device")
            if device is not None:
                record["device"] = json.loads(device) if isinstance(device, str) else device
            attrs[PROVENANCE_ATTR] = json.dumps(record, sort_keys=True)
            files[str(out)] = "zarr store"
        elif path.is_dir():
            folders.append(path)
            files[str(out)] = "folder"
        else:
            files[str(out)] = sha256_file(path)
    record["outputs"] = files
    targets = [Path(sidecar)] if sidecar is not None else []
    for target in targets + [folder / FOLDER_RECORD for folder in folders]:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, target)
    return record


def read_provenance(path: str | os.PathLike) -> dict:
    """The job record of a result: a zarr store's attribute, an output folder's ``provenance.json``,
    a ``*.provenance.json`` sidecar, or, for any other file, the sidecar beside it that lists it.

    Raises:
        InputError: the path does not exist, or no record of it is found (naming where we looked).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "path", "does not exist")
    if _is_store(path):
        meta = json.loads((path / "zarr.json").read_text()).get("attributes", {})
        if PROVENANCE_ATTR not in meta:
            raise InputError(path, PROVENANCE_ATTR, "the store has no provenance attribute (written by an older "
                                                    "version of the pipeline or outside the workflow)")
        return json.loads(meta[PROVENANCE_ATTR])
    if path.is_dir():
        if not (path / FOLDER_RECORD).is_file():
            raise InputError(path, FOLDER_RECORD, "the folder has no provenance record")
        path = path / FOLDER_RECORD
    if path.name.endswith(SIDECAR_SUFFIX) or path.name == FOLDER_RECORD:
        return json.loads(path.read_text())
    for sidecar in sorted(path.parent.glob(f"*{SIDECAR_SUFFIX}")):
        record = json.loads(sidecar.read_text())
        if any(Path(out).name == path.name for out in record.get("outputs", {})):
            return record
    raise InputError(path, PROVENANCE_ATTR, f"no *{SIDECAR_SUFFIX} in {path.parent} lists this file")

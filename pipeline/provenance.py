"""Provenance: code fingerprints, library versions, file checksums, device descriptions.

Snakemake tracks neither imported package modules nor config read inside a job, so each rule passes
``code_fingerprint(<modules the stage uses>)`` through ``params``; editing a module reruns exactly the
stages that import it. Every store records the same fingerprint plus the versions below.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path

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

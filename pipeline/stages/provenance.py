"""Provenance: code fingerprints from the import graph, and the per-job records (the versions and
checksums they hold come from :mod:`pipeline.data.origin`).

Snakemake tracks neither imported package modules nor config read inside a job, so each rule passes
``code_fingerprint(<its script>)`` through ``params``: a fingerprint of every package module the script
reaches through its imports (:func:`import_closure`, read from the source, nothing kept by hand); editing
a module reruns exactly the stages that import it. Every job's record (config it used, seed, device, code
fingerprint, versions, inputs; :func:`pipeline.stages.jobs.job_record`) is stored in the zarr stores it
wrote (attribute ``provenance``) and in a ``*.provenance.json`` sidecar beside its tables and figures, listing each
output with its sha256. :func:`read_provenance` finds the record of any result file.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.data.atomic import atomic_path
from pipeline.data.origin import sha256_file
from pipeline.errors import InputError

#: attribute of a zarr store, and suffix of the sidecar of tables and figures, holding the job record
PROVENANCE_ATTR = "provenance"
SIDECAR_SUFFIX = ".provenance.json"
FOLDER_RECORD = "provenance.json"

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _module_source(name: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """The source file of package module ``name`` (a package's ``__init__.py``); None if not ours."""
    parts = name.split(".")
    if parts[0] != "pipeline":
        return None
    base = root.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported_names(path: Path, package: str | None, root: Path = PACKAGE_ROOT) -> frozenset[str]:
    """Module names an import statement anywhere in ``path`` names (inside functions too: our lazy
    imports are dependencies all the same). ``from a import b`` gives ``a.b`` when that is a module,
    else ``a``; relative imports are resolved against ``package``."""
    stat = path.stat()
    return _parsed_imports(str(path), stat.st_mtime_ns, stat.st_size, package, str(root))


@functools.lru_cache(maxsize=1024)
def _parsed_imports(path: str, mtime_ns: int, size: int, package: str | None, root: str) -> frozenset[str]:
    """:func:`_imported_names` of one version of a file (keyed by its modification time and size)."""
    path, root = Path(path), Path(root)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if _module_source(f"{base}.{alias.name}", root) is not None
            )
    return frozenset(names)


def _package_of(path: Path, root: Path = PACKAGE_ROOT) -> str | None:
    """Dotted package a source file of ours belongs to (``pipeline.embed.methods`` for methods/ner.py)."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return ".".join(("pipeline", *rel.parent.parts))


def import_closure(entries: Sequence[str | os.PathLike], root: str | os.PathLike = PACKAGE_ROOT) -> list[Path]:
    """Source files of the package that ``entries`` reach through their imports, transitively.

    An entry is a module name (``"pipeline.embed.fit"``) or the path of a script (a rule's
    ``workflow/scripts/*.py``; the script itself is not part of the result: Snakemake tracks it). Every
    package ``__init__.py`` on the way belongs to the result too (importing ``pipeline.embed.methods.ner``
    runs ``pipeline/__init__.py`` and ``pipeline/embed/methods/__init__.py``). Imports made from strings at
    run time (the method registry's ``"module:Class"``) are not seen: name those modules as entries.

    ``root`` is the package folder to read (this package's by default; tests pass an edited copy).

    Raises:
        FileNotFoundError: an entry names no module of the package and no file.
    """
    root = Path(root)

    def source(name: str) -> Path | None:
        return _module_source(name, root)

    todo: list[Path] = []
    for entry in entries:
        module = source(str(entry)) if isinstance(entry, str) and not str(entry).endswith(".py") else None
        if module is None:
            path = Path(entry)
            if not path.is_file():
                raise FileNotFoundError(f"{entry!r} is neither a module of the package nor a file")
            todo.extend(
                module
                for module in map(source, _imported_names(path, _package_of(path, root), root))
                if module is not None
            )
        else:
            todo.append(module)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = _package_of(path, root)
        parts = package.split(".")
        # the packages a module sits in run first (for an imported submodule: its parents' __init__.py)
        inits = (root.joinpath(*parts[1:i], "__init__.py") for i in range(1, len(parts) + 1))
        todo.extend(init for init in inits if init.is_file())
        todo.extend(module for module in map(source, _imported_names(path, package, root)) if module is not None)
    return sorted(seen)


def code_fingerprint(entries: Sequence[str | os.PathLike], root: str | os.PathLike = PACKAGE_ROOT) -> str:
    """sha256 (first 16 hex digits) over the sources :func:`import_closure` finds for ``entries``
    (module names or script paths), in sorted path order."""
    digest = hashlib.sha256()
    for path in import_closure(entries, root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


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
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def _json(path: Path, text: str | None = None, field: str | None = None) -> dict:
    """A JSON record (the file's text, or ``text`` found in it), or one line naming the file and where
    the JSON breaks."""
    try:
        record = json.loads(path.read_text() if text is None else text)
    except json.JSONDecodeError as exc:
        raise InputError(path, field, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(record, dict):
        raise InputError(path, field, f"a provenance record is a JSON object, found {type(record).__name__}")
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
        meta = _json(path / "zarr.json").get("attributes", {})
        if PROVENANCE_ATTR not in meta:
            raise InputError(
                path,
                PROVENANCE_ATTR,
                "the store has no provenance attribute (written by an older "
                "version of the pipeline or outside the workflow)",
            )
        return _json(path / "zarr.json", meta[PROVENANCE_ATTR], field=f"attributes.{PROVENANCE_ATTR}")
    if path.is_dir():
        if not (path / FOLDER_RECORD).is_file():
            raise InputError(path, FOLDER_RECORD, "the folder has no provenance record")
        path = path / FOLDER_RECORD
    if path.name.endswith(SIDECAR_SUFFIX) or path.name == FOLDER_RECORD:
        return _json(path)
    for sidecar in sorted(path.parent.glob(f"*{SIDECAR_SUFFIX}")):
        record = _json(sidecar)
        if any(Path(out).name == path.name for out in record.get("outputs", {})):
            return record
    raise InputError(path, PROVENANCE_ATTR, f"no *{SIDECAR_SUFFIX} in {path.parent} lists this file")

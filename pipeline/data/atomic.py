"""Atomic writes: every file and folder the package writes goes through here.

An output is written beside its target under a hidden temporary name that ends in the target's suffix
(so writers that infer a format from the name — matplotlib, pynwb — still do) and moved into place with
one :func:`os.replace`. A failed job therefore never leaves a partial output; a temporary left by a
job killed outright (SIGKILL, node failure) is removed by the next write of the same target, which is
safe because every output has a single writer.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_paths", "temp_sibling"]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def temp_sibling(path: str | os.PathLike) -> Path:
    """A new temporary name beside ``path`` (``.<name>.tmp-<hex><suffix>``), after removing the stale
    temporaries of ``path`` (``.<name>.tmp-*``) that a killed writer left."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        _remove(stale)
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextmanager
def atomic_paths(*targets: str | os.PathLike, folders: bool = False) -> Iterator[list[Path]]:
    """Temporary paths for ``targets``, moved into place together when the block ends without error.

    The parents are created; with ``folders`` each temporary is created as an empty folder. An existing
    target (file or folder) is replaced. On an error in the block, or while moving, every temporary is
    removed and so is every target this call had already moved into place: all or nothing.
    """
    paths = [Path(t) for t in targets]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    temps = [temp_sibling(path) for path in paths]
    placed: list[Path] = []
    try:
        if folders:
            for tmp in temps:
                tmp.mkdir()
        yield temps
        for tmp, path in zip(temps, paths):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for tmp in temps:
            _remove(tmp)
        for path in placed:
            _remove(path)
        raise


@contextmanager
def atomic_path(target: str | os.PathLike, *, folder: bool = False) -> Iterator[Path]:
    """One target's :func:`atomic_paths`: write to the yielded path; it replaces ``target`` at the end."""
    with atomic_paths(target, folders=folder) as (tmp,):
        yield tmp

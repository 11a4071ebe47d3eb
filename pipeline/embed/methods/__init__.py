"""Embedding methods behind one registry: a config names a method, :func:`build_method` makes it.

Every method follows :class:`pipeline.embed.methods.base.EmbeddingMethod`: parameters stored by
``__init__`` only, ``fit(X, y, lengths=...)``, ``transform(X, y=..., lengths=...)``,
``save(folder)`` and ``load(folder)``. Modules are imported on first use, so asking for PCA never
imports torch-heavy code it does not need, and the registry itself (which the workflow reads to plan
its jobs) imports no scikit-learn (2.3 s of every Snakemake start-up before).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.embed.methods.base import EmbeddingMethod

__all__ = ["GPU_METHODS", "METHODS", "EmbeddingMethod", "build_method", "get_method", "method_names"]

#: method name (as written in configs and output paths) -> "module:Class"
METHODS: dict[str, str] = {
    "ner": "pipeline.embed.methods.ner:NER",
    "cebra": "pipeline.embed.methods.cebra:CEBRA",
    "cebra16d": "pipeline.embed.methods.cebra:CEBRA16D",
    "pivae": "pipeline.embed.methods.pivae:PiVAE",
    "pca": "pipeline.embed.methods.pca:PCA",
    "dpca": "pipeline.embed.methods.dpca:DPCA",
    "umap": "pipeline.embed.methods.umap:UMAP",
    "umap_labels": "pipeline.embed.methods.umap:UMAPLabels",
}

#: methods that train on a GPU when one is leased (their classes set ``trainable_on_gpu``); kept here
#: so the workflow can tag its jobs without importing torch-heavy modules (a test checks it)
GPU_METHODS = frozenset({"ner", "cebra", "cebra16d", "pivae"})


def method_names() -> list[str]:
    """The registered method names, sorted."""
    return sorted(METHODS)


def get_method(name: str) -> type[EmbeddingMethod]:
    """The class registered under ``name``.

    Raises:
        ValueError: ``name`` is not registered; the message lists every registered name.
    """
    try:
        target = METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(method_names())}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def build_method(name: str, **params: Any) -> EmbeddingMethod:
    """Instantiate method ``name`` with ``params`` (its constructor's keyword arguments)."""
    return get_method(name)(**params)


def __getattr__(name: str):
    if name == "EmbeddingMethod":  # the base class, imported on first use (it imports scikit-learn)
        from pipeline.embed.methods.base import EmbeddingMethod

        return EmbeddingMethod
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

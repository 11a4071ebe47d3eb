"""Reference pipeline for Neural Embeddings Rank (NER), as a library.

The stages are functions from datasets to datasets; the Snakemake workflow in ``workflow/`` only wires
them together (paths in, paths out). In a notebook::

    import pipeline as ner

    config = ner.default_config()
    recording = ner.read_recording("session.nwb", fmt="nwb", areas=["M1"], session="Monkey-20240101")
    prepared = ner.prepare_dataset(recording, session=row, preprocessing=config["preprocessing"])
    embedding, model = ner.fit_embedding(prepared, method="ner", area="M1", labels=config["labels"])
    scores, accuracy = ner.within_table([ner.Cell.from_stores(embedding, prepared)],
                                        ner.decoder_specs(config["decoding"]))

The methods are scikit-learn transformers (``ner.NER(max_iterations=2000).fit(X, y).transform(X)``).
Every name below is imported on first use, so ``import pipeline`` is quick and imports no torch.
The package never imports snakemake.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> "module:attribute", grouped by stage (the data flow)
_EXPORTS = {
    # configuration
    "default_config": "pipeline.config:default_config",
    "load_config": "pipeline.config:load_config",
    "load_sheet": "pipeline.config:load_sheet",
    "InputError": "pipeline.errors:InputError",
    # recordings: readers and the built-in simulation
    "read_recording": "pipeline.io:read_recording",
    "simulate_session": "pipeline.simulate:simulate_session",
    # preparation
    "prepare_dataset": "pipeline.prepare:prepare_dataset",
    "movement_labels": "pipeline.labels:movement_labels",
    "select_subset": "pipeline.subsets:select_subset",
    # embedding methods (scikit-learn transformers) and the training stage
    "NER": "pipeline.methods.ner:NER",
    "CEBRA": "pipeline.methods.cebra:CEBRA",
    "CEBRA16D": "pipeline.methods.cebra:CEBRA16D",
    "PiVAE": "pipeline.methods.pivae:PiVAE",
    "PCA": "pipeline.methods.pca:PCA",
    "DPCA": "pipeline.methods.dpca:DPCA",
    "UMAP": "pipeline.methods.umap:UMAP",
    "UMAPLabels": "pipeline.methods.umap:UMAPLabels",
    "get_method": "pipeline.methods:get_method",
    "fit_embedding": "pipeline.training:fit_embedding",
    # decoding and alignment
    "Cell": "pipeline.decoding:Cell",
    "decoder_specs": "pipeline.crossdecode:decoder_specs",
    "within_table": "pipeline.crossdecode:within_table",
    "cross_decode": "pipeline.crossdecode:cross_decode",
    "KNeighborsRegressorCV": "pipeline.knn:KNeighborsRegressorCV",
    "KNeighborsClassifierCV": "pipeline.knn:KNeighborsClassifierCV",
    "align": "pipeline.alignment:align",
    # statistics
    "all_statistics": "pipeline.stats:all_statistics",
    "method_tests": "pipeline.stats:method_tests",
    "diagonal_vs_off_diagonal": "pipeline.stats:diagonal_vs_off_diagonal",
    "block_summary": "pipeline.stats:block_summary",
    # stores
    "open_store": "pipeline.store:open_store",
    "write_store": "pipeline.store:write_store",
    "read_provenance": "pipeline.provenance:read_provenance",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    try:
        target = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}") from None
    module, attribute = target.split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

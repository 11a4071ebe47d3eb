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
    "default_config": "pipeline.stages.config:default_config",
    "load_config": "pipeline.stages.config:load_config",
    "load_sheet": "pipeline.stages.config:load_sheet",
    "InputError": "pipeline.errors:InputError",
    # recordings: readers and the built-in simulation
    "read_recording": "pipeline.io:read_recording",
    "simulate_session": "pipeline.simulate:simulate_session",
    # preparation
    "prepare_dataset": "pipeline.preprocess.prepare:prepare_dataset",
    "movement_labels": "pipeline.preprocess.labels:movement_labels",
    "select_subset": "pipeline.preprocess.subsets:select_subset",
    # embedding methods (scikit-learn transformers) and the training stage
    "NER": "pipeline.embed.methods.ner:NER",
    "CEBRA": "pipeline.embed.methods.cebra:CEBRA",
    "CEBRA16D": "pipeline.embed.methods.cebra:CEBRA16D",
    "PiVAE": "pipeline.embed.methods.pivae:PiVAE",
    "PCA": "pipeline.embed.methods.pca:PCA",
    "DPCA": "pipeline.embed.methods.dpca:DPCA",
    "UMAP": "pipeline.embed.methods.umap:UMAP",
    "UMAPLabels": "pipeline.embed.methods.umap:UMAPLabels",
    "get_method": "pipeline.embed.methods:get_method",
    "fit_embedding": "pipeline.embed.fit:fit_embedding",
    # decoding and alignment
    "Cell": "pipeline.analysis.decoding:Cell",
    "decoder_specs": "pipeline.analysis.crossdecode:decoder_specs",
    "within_table": "pipeline.analysis.crossdecode:within_table",
    "cross_decode": "pipeline.analysis.crossdecode:cross_decode",
    "KNeighborsRegressorCV": "pipeline.analysis.knn:KNeighborsRegressorCV",
    "KNeighborsClassifierCV": "pipeline.analysis.knn:KNeighborsClassifierCV",
    "align": "pipeline.analysis.alignment:align",
    # statistics
    "all_statistics": "pipeline.analysis.stats:all_statistics",
    "method_tests": "pipeline.analysis.stats:method_tests",
    "diagonal_vs_off_diagonal": "pipeline.analysis.stats:diagonal_vs_off_diagonal",
    "block_summary": "pipeline.analysis.stats:block_summary",
    # stores
    "open_store": "pipeline.data.store:open_store",
    "write_store": "pipeline.data.store:write_store",
    "read_provenance": "pipeline.stages.provenance:read_provenance",
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

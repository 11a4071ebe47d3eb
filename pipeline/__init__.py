"""Reference pipeline for Neural Embeddings Rank (NER).

The package does all the work; the Snakemake workflow in ``workflow/`` only wires stages together.
Stages: :mod:`pipeline.io` (readers) -> :mod:`pipeline.prepare` (canonical prepared store) -> methods ->
decoding -> statistics -> figures. The package never imports snakemake.
"""

__version__ = "0.1.0"

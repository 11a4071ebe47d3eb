"""rule decode_within: in-sample and held-out scores of every cell of one method and seed."""

from pipeline.analysis.crossdecode import decode_within_stores
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    decode_within_stores(
        snakemake.params.cells,  # noqa: F821  ((embedding, prepared) per cell)
        snakemake.params.decoding,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

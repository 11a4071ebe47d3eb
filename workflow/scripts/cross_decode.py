"""rule cross_decode: the (train cell, test cell) decode matrices of one group, method and seed."""

from pipeline.analysis.crossdecode import cross_decode_stores
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    cross_decode_stores(
        snakemake.params.cells,  # noqa: F821  ((embedding, prepared) per cell, matrix order)
        snakemake.params.decoding,  # noqa: F821
        snakemake.wildcards.group,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

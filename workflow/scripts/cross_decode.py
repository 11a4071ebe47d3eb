"""rule cross_decode: the (train cell, test cell) decode matrices of one group, method and seed."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.cross_decode import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.params.cells,  # noqa: F821  ((embedding, prepared) per cell, matrix order)
        snakemake.params.decoding,  # noqa: F821
        snakemake.wildcards.group,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

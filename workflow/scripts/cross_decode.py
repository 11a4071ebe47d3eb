"""rule cross_decode: the (train cell, test cell) decode matrices of one group, method and seed."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.cross_decode import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821  ((embedding, prepared) per cell, matrix order)
        snakemake.params.decoding,  # noqa: F821
        snakemake.wildcards.group,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

"""rule decode_within: in-sample and held-out scores of every cell of one method and seed."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.decode_within import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821  ((embedding, prepared) per cell)
        snakemake.params.decoding,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

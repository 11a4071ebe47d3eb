"""rule figures_group: decode matrices, accuracy over time and block summary of one group."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.figures_group import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.input.scores,  # noqa: F821
        snakemake.input.accuracy,  # noqa: F821
        snakemake.input.blocks,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )

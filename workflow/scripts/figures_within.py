"""rule figures_within: per-method score distributions and accuracy over time."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.figures_within import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.input.scores,  # noqa: F821
        snakemake.input.accuracy,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

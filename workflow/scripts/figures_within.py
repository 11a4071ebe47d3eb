"""rule figures_within: per-method score distributions and accuracy over time."""

from pipeline.report.figures import within_figures
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    within_figures(
        snakemake.input.scores,  # noqa: F821
        snakemake.input.accuracy,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

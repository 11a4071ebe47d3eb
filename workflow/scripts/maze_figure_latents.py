"""rule maze_figure_latents: 3-D latents of one maze session, one panel per method x subset."""

from pipeline.report.figures import maze_latents_figure
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    maze_latents_figure(
        snakemake.input.embeddings,  # noqa: F821
        snakemake.output.figure,  # noqa: F821
        max_trials_per_condition=snakemake.params.max_trials,  # noqa: F821
    )

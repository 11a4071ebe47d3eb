"""rule maze_figure_latents: 3-D latents of one maze session, one panel per method x subset."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.maze_figure_latents import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.input.embeddings,  # noqa: F821
        snakemake.output.figure,  # noqa: F821
        max_trials=snakemake.params.max_trials,  # noqa: F821
    )

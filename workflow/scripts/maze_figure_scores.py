"""rule maze_figure_scores: R2 and separation per subset and method (from the maze score tables)."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.maze_figure_scores import run

with workflow_job(snakemake):  # noqa: F821
    run(list(snakemake.input), snakemake.output.figure)  # noqa: F821

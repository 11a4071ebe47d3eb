"""rule maze_figure_scores: R2 and separation per subset and method (from the maze score tables)."""

from pipeline.report.figures import maze_scores_figure
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    maze_scores_figure(list(snakemake.input), snakemake.output.figure)  # noqa: F821

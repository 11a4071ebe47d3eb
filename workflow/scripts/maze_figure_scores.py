"""rule maze_figure_scores: R2 and separation per subset and method (from the maze score tables)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.figures import maze_scores_figure  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    maze_scores_figure(list(snakemake.input), snakemake.output.figure)  # noqa: F821

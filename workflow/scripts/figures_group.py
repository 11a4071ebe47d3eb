"""rule figures_group: decode matrices, accuracy over time and block summary of one group."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.figures import group_figures  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    group_figures(
        snakemake.input.scores,  # noqa: F821
        snakemake.input.accuracy,  # noqa: F821
        snakemake.input.blocks,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )

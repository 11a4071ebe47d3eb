"""rule figures_within: per-method score distributions and accuracy over time."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.figures import within_figures  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    within_figures(
        snakemake.input.scores,  # noqa: F821
        snakemake.input.accuracy,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

"""rule maze_figure_latents: 3-D latents of one maze session, one panel per method x subset."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.figures import maze_latents_figure  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    maze_latents_figure(
        snakemake.input.embeddings,  # noqa: F821
        snakemake.output.figure,  # noqa: F821
        max_trials_per_condition=snakemake.params.max_trials,  # noqa: F821
    )

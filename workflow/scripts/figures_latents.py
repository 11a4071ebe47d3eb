"""rule figures_latents: 3-D latents of one method's cells in a group, aligned to an anchor cell."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.figures_latents import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821  ((embedding, prepared) per cell)
        snakemake.output.figure,  # noqa: F821
        anchor=snakemake.params.anchor,  # noqa: F821
        max_trials=snakemake.params.max_trials,  # noqa: F821
    )

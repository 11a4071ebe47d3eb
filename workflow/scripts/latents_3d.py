"""rule latents_3d: every method's latents of a group on one interactive page, aligned to the anchor cell."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.latents_3d import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821  (method -> (embedding, prepared) per cell)
        snakemake.output.page,  # noqa: F821
        group=snakemake.wildcards.group,  # noqa: F821
        anchor=snakemake.params.anchor,  # noqa: F821
        max_trials=snakemake.params.max_trials,  # noqa: F821
    )

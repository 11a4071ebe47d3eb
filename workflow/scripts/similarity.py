"""rule similarity: similarity of trial-averaged latent dynamics of one group (Tables 1 / 3)."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.similarity import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        group=snakemake.wildcards.group,  # noqa: F821
    )

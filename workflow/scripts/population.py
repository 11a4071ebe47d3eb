"""rule population: PCA and dPCA views of every cell of one group (Fig. 11)."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.population import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        anchor=snakemake.params.anchor,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
    )

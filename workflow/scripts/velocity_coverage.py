"""rule velocity_coverage: decoded vs true hand speed per speed quantile (Fig. 1a)."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.velocity_coverage import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        group=snakemake.wildcards.group,  # noqa: F821
        quantiles=snakemake.params.quantiles,  # noqa: F821
    )

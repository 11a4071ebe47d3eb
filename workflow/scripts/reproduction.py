"""rule reproduction: our values beside the paper's (config/paper.yaml)."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.reproduction import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.input.within,  # noqa: F821
        snakemake.input.blocks,  # noqa: F821
        snakemake.output.tsv,  # noqa: F821
        snakemake.output.md,  # noqa: F821
    )

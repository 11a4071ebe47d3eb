"""rule reproduction: our values beside the paper's (config/paper.yaml)."""

from pipeline.report.reproduction import reproduction_files
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    reproduction_files(
        snakemake.input.within,  # noqa: F821
        snakemake.input.blocks,  # noqa: F821
        snakemake.output.tsv,  # noqa: F821
        snakemake.output.md,  # noqa: F821
    )

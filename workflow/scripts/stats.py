"""rules stats_within / stats_group: decode tables -> statistics and block summaries (TSV)."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.stats import run

with workflow_job(snakemake):  # noqa: F821
    run(
        list(snakemake.input),  # noqa: F821
        snakemake.output.tests,  # noqa: F821
        snakemake.output.blocks,  # noqa: F821
    )

"""rules stats_within / stats_group: decode tables -> statistics and block summaries (TSV)."""

from pipeline.analysis.stats import statistics_files
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    statistics_files(
        list(snakemake.input),  # noqa: F821
        snakemake.output.tests,  # noqa: F821
        snakemake.output.blocks,  # noqa: F821
    )

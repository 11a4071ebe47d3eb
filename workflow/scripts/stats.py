"""rules stats_within / stats_group: decode tables -> statistics and block summaries (TSV)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import workflow_job  # noqa: E402
from pipeline.stats import statistics_files  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    statistics_files(
        list(snakemake.input),  # noqa: F821
        snakemake.output.tests,  # noqa: F821
        snakemake.output.blocks,  # noqa: F821
    )

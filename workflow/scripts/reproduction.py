"""rule reproduction: our values beside the paper's (config/paper.yaml)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import workflow_job  # noqa: E402
from pipeline.reproduction import reproduction_files  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    reproduction_files(
        snakemake.input.within,  # noqa: F821
        snakemake.input.blocks,  # noqa: F821
        snakemake.output.tsv,  # noqa: F821
        snakemake.output.md,  # noqa: F821
    )

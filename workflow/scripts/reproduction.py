"""rule reproduction: our values beside the paper's (config/paper.yaml)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import job_logging  # noqa: E402
from pipeline.reproduction import reproduction_files  # noqa: E402

with job_logging(snakemake.log[0]):  # noqa: F821
    reproduction_files(
        snakemake.input.within,  # noqa: F821
        snakemake.input.blocks,  # noqa: F821
        snakemake.output.tsv,  # noqa: F821
        snakemake.output.md,  # noqa: F821
    )

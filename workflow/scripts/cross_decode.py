"""rule cross_decode: the (train cell, test cell) decode matrices of one group, method and seed."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.crossdecode import cross_decode_stores  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    cross_decode_stores(
        snakemake.params.cells,  # noqa: F821  ((embedding, prepared) per cell, matrix order)
        snakemake.params.decoding,  # noqa: F821
        snakemake.wildcards.group,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

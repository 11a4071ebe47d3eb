"""rule decode_within: in-sample and held-out scores of every cell of one method and seed."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.crossdecode import decode_within_stores  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    decode_within_stores(
        snakemake.params.cells,  # noqa: F821  ((embedding, prepared) per cell)
        snakemake.params.decoding,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.output.accuracy,  # noqa: F821
    )

"""rule prepare: ingest store -> results/prepared/{session}.zarr."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import workflow_job  # noqa: E402
from pipeline.prepare import prepare  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    prepare(
        snakemake.input.store,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        session=snakemake.params.session,  # noqa: F821
        preprocessing=snakemake.params.preprocessing,  # noqa: F821
        code_fingerprint=snakemake.params.code,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )

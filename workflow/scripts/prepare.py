"""rule prepare: ingest store -> results/prepared/{session}.zarr."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.prepare import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.input.store,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        session=snakemake.params.session,  # noqa: F821
        preprocessing=snakemake.params.preprocessing,  # noqa: F821
        code_fingerprint=snakemake.params.code,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )

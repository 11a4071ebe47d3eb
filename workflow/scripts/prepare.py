"""rule prepare: ingest store -> results/prepared/{session}.zarr."""

from pipeline.preprocess.prepare import prepare
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    prepare(
        snakemake.input.store,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        session=snakemake.params.session,  # noqa: F821
        preprocessing=snakemake.params.preprocessing,  # noqa: F821
        code_fingerprint=snakemake.params.code,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )

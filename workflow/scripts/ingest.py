"""rule ingest: read one recording into results/ingest/{session}.zarr."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.ingest import run

with workflow_job(snakemake):  # noqa: F821
    row = snakemake.params.session  # noqa: F821
    run(
        snakemake.input.source,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        fmt=row["format"],
        areas=row["area_list"],
        session=row["session_id"],
        reader_options=snakemake.params.reader,  # noqa: F821
        code_fingerprint=snakemake.params.code,  # noqa: F821
    )

"""rule ingest: read one recording into results/ingest/{session}.zarr."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.io import ingest  # noqa: E402
from pipeline.jobs import workflow_job  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    row = snakemake.params.session  # noqa: F821
    ingest(
        snakemake.input.source,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        fmt=row["format"],
        areas=row["area_list"],
        session=row["session_id"],
        reader_options=snakemake.params.reader,  # noqa: F821
        code_fingerprint=snakemake.params.code,  # noqa: F821
    )

"""rule export_nwb: one session's derived NWB file (latents, decoded velocity, split, records, scores)."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.export_nwb import run

with workflow_job(snakemake):  # noqa: F821
    run(
        source=snakemake.input.source,  # noqa: F821
        ingest=snakemake.input.ingest,  # noqa: F821
        prepared=snakemake.input.prepared,  # noqa: F821
        embeddings=list(snakemake.input.embeddings),  # noqa: F821
        models=list(snakemake.input.models),  # noqa: F821
        tables=list(snakemake.input.tables),  # noqa: F821
        out=snakemake.output.nwb,  # noqa: F821
        fmt=snakemake.params.format,  # noqa: F821
        decoding=snakemake.params.decoding,  # noqa: F821
        link_source=snakemake.params.link_source,  # noqa: F821
    )

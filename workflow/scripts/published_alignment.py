"""rule published_alignment: the authors' published embeddings under every alignment variant."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.published_alignment import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.params.folder,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        alignments=snakemake.params.alignments,  # noqa: F821
    )

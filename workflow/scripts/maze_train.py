"""rule maze_train: one maze trial subset of a session -> embedding store + checkpoint (areas pooled)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import workflow_job  # noqa: E402
from pipeline.training import train_embedding  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    train_embedding(
        snakemake.input.store,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        snakemake.output.model,  # noqa: F821
        method=snakemake.wildcards.method,  # noqa: F821
        params=snakemake.params.method_params,  # noqa: F821
        area=snakemake.params.areas,  # noqa: F821
        subset=snakemake.params.subset,  # noqa: F821
        seed=int(snakemake.wildcards.seed),  # noqa: F821
        labels=snakemake.params.labels,  # noqa: F821
        device=snakemake.params.device,  # noqa: F821
        code_fingerprint=snakemake.params.code,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )

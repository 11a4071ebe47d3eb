"""rules train and maze_train: prepared store -> embedding store + checkpoint of one (method, session,
area, seed), or of one maze trial subset of a session with its areas pooled (params areas, subset)."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.train import run

with workflow_job(snakemake):  # noqa: F821
    params = dict(snakemake.params.items())  # noqa: F821
    wildcards = dict(snakemake.wildcards.items())  # noqa: F821
    run(
        snakemake.input.store,  # noqa: F821
        snakemake.output.store,  # noqa: F821
        snakemake.output.model,  # noqa: F821
        method=wildcards["method"],
        params=params["method_params"],
        area=params.get("areas") or wildcards["area"],
        subset=params.get("subset"),
        seed=int(wildcards["seed"]),
        labels=params["labels"],
        device=params["device"],
        code_fingerprint=params["code"],
        threads=snakemake.threads,  # noqa: F821
    )

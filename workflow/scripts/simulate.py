"""rule simulate: write one simulated session as a real NWB file plus its ground truth."""

from pipeline.stages.jobs import workflow_job
from pipeline.stages.rules.simulate import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.output.nwb,  # noqa: F821
        snakemake.output.truth,  # noqa: F821
        session=snakemake.params.session,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        params=snakemake.params.sim,  # noqa: F821
    )

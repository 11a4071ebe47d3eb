"""rule simulate: write one simulated session as a real NWB file plus its ground truth."""

from pipeline.simulate import simulate_session
from pipeline.stages.jobs import workflow_job

with workflow_job(snakemake):  # noqa: F821
    row = snakemake.params.session  # noqa: F821
    simulate_session(
        snakemake.output.nwb,  # noqa: F821
        snakemake.output.truth,  # noqa: F821
        session_id=row["session_id"],
        subject=row["subject"],
        date=row["date"],
        hemisphere=row["hemisphere"],
        task=row["task"],
        areas=row["area_list"],
        seed=snakemake.params.seed,  # noqa: F821
        params=snakemake.params.sim,  # noqa: F821
    )

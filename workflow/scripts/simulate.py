"""rule simulate: write one simulated session as a real NWB file plus its ground truth."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import workflow_job  # noqa: E402
from pipeline.simulate import simulate_session  # noqa: E402

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

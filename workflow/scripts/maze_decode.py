"""rule maze_decode: R2 and separation of every maze subset embedding of one method and seed."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")  # noqa: F821 (snakemake is injected)

from pipeline.jobs import workflow_job  # noqa: E402
from pipeline.maze import write_maze_scores  # noqa: E402

with workflow_job(snakemake):  # noqa: F821
    write_maze_scores(
        snakemake.params.cells,  # noqa: F821  ((subset embedding, maze-prepared store) pairs)
        snakemake.output.scores,  # noqa: F821
        decoders=snakemake.params.decoders,  # noqa: F821
    )

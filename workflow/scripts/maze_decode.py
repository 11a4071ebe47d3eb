"""rule maze_decode: R2 and separation of every maze subset embedding of one method and seed."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.maze_decode import run

with workflow_job(snakemake):  # noqa: F821
    run(
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821  ((subset embedding, maze-prepared store) pairs)
        snakemake.output.scores,  # noqa: F821
        decoders=snakemake.params.decoders,  # noqa: F821
    )

"""rule speed_accuracy: direction accuracy over time against the hand-speed profiles (Figs 4b / 12b)."""

from pipeline.stages.jobs import input_paths, workflow_job
from pipeline.stages.rules.speed_accuracy import run

with workflow_job(snakemake):  # noqa: F821
    run(
        snakemake.input.accuracy,  # noqa: F821
        input_paths(snakemake.params.cells, snakemake.input),  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        group=snakemake.wildcards.group,  # noqa: F821
        evaluation=snakemake.params.evaluation,  # noqa: F821
    )

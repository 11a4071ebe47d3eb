# Neural Embeddings Rank (NER) pipeline: readers -> prepared stores -> methods -> decoding -> statistics -> report.
# Run `snakemake --cores 8 --resources gpu=2` (see README.md). The default target must live in this file.
from snakemake.utils import min_version

min_version("9.19")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/maze.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        PLAN.final_targets(),
    localrule: True

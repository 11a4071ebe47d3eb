# Statistics over the decode tables: paired t-tests between methods, RM-ANOVA, Friedman,
# diagonal vs off-diagonal, and block summaries (cross-area / -hemisphere / -year).


rule stats_within:
    input:
        PLAN.within_tables(),
    output:
        tests=report(
            f"{PATHS['stats'].format(group='within')}/tests.tsv",
            caption="../report/stats.rst",
            category="Within session",
            labels={"table": "statistics"},
        ),
        blocks=f"{PATHS['stats'].format(group='within')}/blocks.tsv",
        provenance=f"{PATHS['stats'].format(group='within')}/stats.provenance.json",
    log:
        "logs/stats/within.log",
    benchmark:
        "results/benchmarks/stats_within/within.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        code=fingerprint("stats"),
    script:
        "../scripts/stats.py"


rule stats_group:
    input:
        lambda wc: PLAN.cross_tables(wc.group),
    output:
        tests=report(
            f"{PATHS['stats']}/tests.tsv",
            caption="../report/stats.rst",
            category="{group}",
            labels={"table": "statistics"},
        ),
        blocks=report(
            f"{PATHS['stats']}/blocks.tsv",
            caption="../report/blocks.rst",
            category="{group}",
            labels={"table": "block summary"},
        ),
        provenance=f"{PATHS['stats']}/stats.provenance.json",
    log:
        "logs/stats/{group}.log",
    benchmark:
        "results/benchmarks/stats_group/{group}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        code=fingerprint("stats"),
    script:
        "../scripts/stats.py"

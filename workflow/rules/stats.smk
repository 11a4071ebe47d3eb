# Statistics over the decode tables: paired t-tests between methods, RM-ANOVA, Friedman,
# diagonal vs off-diagonal, and block summaries (cross-area / -hemisphere / -year).


rule stats_within:
    input:
        PLAN.within_tables(),
    output:
        tests=report(
            "results/stats/within/tests.tsv",
            caption="../report/stats.rst",
            category="Within session",
            labels={"table": "statistics"},
        ),
        blocks="results/stats/within/blocks.tsv",
        provenance="results/stats/within/stats.provenance.json",
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
            "results/stats/{group}/tests.tsv",
            caption="../report/stats.rst",
            category="{group}",
            labels={"table": "statistics"},
        ),
        blocks=report(
            "results/stats/{group}/blocks.tsv",
            caption="../report/blocks.rst",
            category="{group}",
            labels={"table": "block summary"},
        ),
        provenance="results/stats/{group}/stats.provenance.json",
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

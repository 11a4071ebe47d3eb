# Figures (from the decode/statistics TSVs and the embedding stores) and their report entries.
# `snakemake --report results/report.html` gathers them with the captions of workflow/report/.


rule figures_within:
    input:
        scores=PLAN.within_tables(),
        accuracy=PLAN.within_tables("accuracy"),
    output:
        scores=report(
            f"{PATHS['figures'].format(group='within')}/scores.png",
            caption="../report/within_scores.rst",
            category="Within session",
            labels={"figure": "scores per method"},
        ),
        accuracy=report(
            f"{PATHS['figures'].format(group='within')}/accuracy_time.png",
            caption="../report/accuracy_time.rst",
            category="Within session",
            labels={"figure": "direction accuracy over time"},
        ),
        provenance=f"{PATHS['figures'].format(group='within')}/figures.provenance.json",
    log:
        "logs/figures/within.log",
    benchmark:
        "results/benchmarks/figures_within/within.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        code=fingerprint("figures_within"),
    script:
        "../scripts/figures_within.py"


# alignments.png only when config decoding.alignments has a variant to draw (plan.draws_alignment_curve)
rule figures_group:
    input:
        scores=lambda wc: PLAN.cross_tables(wc.group),
        accuracy=lambda wc: PLAN.cross_tables(wc.group, "accuracy"),
        blocks=f"{PATHS['stats']}/blocks.tsv",
    output:
        **(
            {
                "alignments": report(
                    f"{PATHS['figures']}/alignments.png",
                    caption="../report/alignments.rst",
                    category="{group}",
                    labels={"figure": "new session without its labels"},
                )
            }
            if draws_alignment_curve(config["decoding"]["alignments"])
            else {}
        ),
        velocity=report(
            f"{PATHS['figures']}/matrix_velocity.png",
            caption="../report/matrix.rst",
            category="{group}",
            labels={"figure": "velocity matrix"},
        ),
        position=report(
            f"{PATHS['figures']}/matrix_position.png",
            caption="../report/matrix.rst",
            category="{group}",
            labels={"figure": "position matrix"},
        ),
        direction=report(
            f"{PATHS['figures']}/matrix_direction.png",
            caption="../report/matrix.rst",
            category="{group}",
            labels={"figure": "direction matrix"},
        ),
        accuracy=report(
            f"{PATHS['figures']}/accuracy_time.png",
            caption="../report/accuracy_time.rst",
            category="{group}",
            labels={"figure": "direction accuracy over time"},
        ),
        blocks=report(
            f"{PATHS['figures']}/blocks.png",
            caption="../report/blocks.rst",
            category="{group}",
            labels={"figure": "block summary"},
        ),
        provenance=f"{PATHS['figures']}/figures.provenance.json",
    log:
        "logs/figures/{group}.log",
    benchmark:
        "results/benchmarks/figures_group/{group}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        code=fingerprint("figures_group"),
    script:
        "../scripts/figures_group.py"


rule figures_latents:
    input:
        lambda wc: flat(PLAN.cross_pairs(wc.group, wc.method, PLAN.seeds[0])),
    output:
        figure=report(
            f"{PATHS['figures']}/latents_{{method}}.png",
            caption="../report/latents.rst",
            category="{group}",
            labels={"figure": "latents {method}"},
        ),
        provenance=f"{PATHS['figures']}/latents_{{method}}.provenance.json",
    log:
        "logs/figures/{group}/latents_{method}.log",
    benchmark:
        "results/benchmarks/figures_latents/{group}/{method}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        cells=lambda wc: PLAN.cross_pairs(wc.group, wc.method, PLAN.seeds[0]),
        anchor=config["figures"]["anchor"],
        max_trials=config["figures"]["max_trials_per_direction"],
        code=fingerprint("figures_latents"),
    script:
        "../scripts/figures_latents.py"


rule latents_3d:
    input:
        lambda wc: sorted(
            {
                f
                for pairs in PLAN.latents_3d_pairs(wc.group).values()
                for f in flat(pairs)
            }
        ),
    output:
        page=report(
            f"{PATHS['figures']}/latents_3d.html",
            caption="../report/latents_3d.rst",
            category="{group}",
            labels={"figure": "latents in 3-D, interactive"},
        ),
        provenance=f"{PATHS['figures']}/latents_3d.provenance.json",
    log:
        "logs/figures/{group}/latents_3d.log",
    benchmark:
        "results/benchmarks/latents_3d/{group}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        cells=lambda wc: PLAN.latents_3d_pairs(wc.group),
        anchor=config["figures"]["anchor"],
        max_trials=config["figures"]["latents_3d_trials_per_direction"],
        code=fingerprint("latents_3d"),
    script:
        "../scripts/latents_3d.py"


rule reproduction:
    input:
        within=PLAN.within_tables(),
        blocks=[
            f"{PATHS['stats'].format(group=g)}/blocks.tsv"
            for g in PLAN.groups
            if PLAN.group_methods(g)
        ],
    output:
        tsv=report(
            f"{PATHS['reproduction']}.tsv",
            caption="../report/reproduction.rst",
            category="Reproduction of the paper",
            labels={"table": "ours vs paper"},
        ),
        md=f"{PATHS['reproduction']}.md",
        provenance=f"{PATHS['reproduction']}.provenance.json",
    log:
        "logs/reproduction.log",
    benchmark:
        "results/benchmarks/reproduction/reproduction.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        code=fingerprint("reproduction"),
    script:
        "../scripts/reproduction.py"

# The paper's analyses of latent dynamics per comparison group (config `dynamics`): similarity of
# trial-averaged dynamics (Tables 1/3), accuracy over time vs hand speed (Figs 4b/12b), coverage of the
# velocity range (Fig. 1a) and the PCA/dPCA views of the population (Fig. 11). Light CPU jobs.


rule similarity:
    input:
        group_pair_files,
    output:
        table=f"{PATHS['dynamics']}/similarity.tsv",
        tests=report(
            f"{PATHS['dynamics']}/similarity_tests.tsv",
            caption="../report/similarity.rst",
            category="{group}",
            labels={"table": "similarity of latent dynamics: tests"},
        ),
        blocks=f"{PATHS['dynamics']}/similarity_blocks.tsv",
        figure=report(
            f"{PATHS['figures']}/similarity.png",
            caption="../report/similarity.rst",
            category="{group}",
            labels={"figure": "similarity of latent dynamics"},
        ),
        provenance=f"{PATHS['dynamics']}/similarity.provenance.json",
    log:
        "logs/dynamics/{group}/similarity.log",
    benchmark:
        "results/benchmarks/similarity/{group}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cells=lambda wc: PLAN.group_cells_pairs(wc.group),
        code=fingerprint("similarity"),
    script:
        "../scripts/similarity.py"


rule speed_accuracy:
    input:
        accuracy=PLAN.within_tables("accuracy"),
        cells=lambda wc: flat(
            PLAN.cross_pairs(wc.group, PLAN.group_methods(wc.group)[0], PLAN.seeds[0])
        ),
    output:
        table=report(
            f"{PATHS['dynamics']}/speed_accuracy.tsv",
            caption="../report/speed_accuracy.rst",
            category="{group}",
            labels={"table": "accuracy vs hand speed"},
        ),
        profiles=f"{PATHS['dynamics']}/speed_profiles.tsv",
        figure=report(
            f"{PATHS['figures']}/speed_accuracy.png",
            caption="../report/speed_accuracy.rst",
            category="{group}",
            labels={"figure": "accuracy vs hand speed"},
        ),
        provenance=f"{PATHS['dynamics']}/speed_accuracy.provenance.json",
    log:
        "logs/dynamics/{group}/speed_accuracy.log",
    benchmark:
        "results/benchmarks/speed_accuracy/{group}.tsv"
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        cells=lambda wc: PLAN.cross_pairs(
            wc.group, PLAN.group_methods(wc.group)[0], PLAN.seeds[0]
        ),
        evaluation=config["dynamics"]["speed_evaluation"],
        code=fingerprint("speed_accuracy"),
    script:
        "../scripts/speed_accuracy.py"


rule velocity_coverage:
    input:
        group_pair_files,
    output:
        table=report(
            f"{PATHS['dynamics']}/velocity_coverage.tsv",
            caption="../report/velocity_coverage.rst",
            category="{group}",
            labels={"table": "velocity coverage"},
        ),
        figure=report(
            f"{PATHS['figures']}/velocity_coverage.png",
            caption="../report/velocity_coverage.rst",
            category="{group}",
            labels={"figure": "velocity coverage"},
        ),
        provenance=f"{PATHS['dynamics']}/velocity_coverage.provenance.json",
    log:
        "logs/dynamics/{group}/velocity_coverage.log",
    benchmark:
        "results/benchmarks/velocity_coverage/{group}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cells=lambda wc: PLAN.group_cells_pairs(wc.group),
        quantiles=config["dynamics"]["coverage_quantiles"],
        code=fingerprint("velocity_coverage"),
    script:
        "../scripts/velocity_coverage.py"


rule population:
    input:
        lambda wc: sorted({p for _, _, p in PLAN.population_cells(wc.group)}),
    output:
        table=report(
            f"{PATHS['dynamics']}/population.tsv",
            caption="../report/population.rst",
            category="{group}",
            labels={"table": "PCA and dPCA explained variance"},
        ),
        figure=report(
            f"{PATHS['figures']}/population.png",
            caption="../report/population.rst",
            category="{group}",
            labels={"figure": "PCA and dPCA of the population"},
        ),
        provenance=f"{PATHS['dynamics']}/population.provenance.json",
    log:
        "logs/dynamics/{group}/population.log",
    benchmark:
        "results/benchmarks/population/{group}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cells=lambda wc: PLAN.population_cells(wc.group),
        anchor=config["figures"]["anchor"],
        seed=PLAN.seeds[0],
        code=fingerprint("population"),
    script:
        "../scripts/population.py"

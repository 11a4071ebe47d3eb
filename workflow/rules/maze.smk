# Straight versus curved reaches (the paper's Fig. 8; pipeline/analysis/maze.py): every maze session prepared
# again with the paper's maze settings (5 ms bins, 50 ms smoothing, -50 ... +450 ms around movement
# onset), one model per (method, session, trial subset, seed) on that subset's trials with M1 and PMd
# pooled, R2 and separation tables per method, 3-D latent figures per session and a score summary.


use rule prepare as maze_prepare with:
    input:
        store=PATHS["ingest"],
    output:
        store=directory(PATHS["maze_prepared"]),
    log:
        "logs/maze/prepare/{session}.log",
    cache: True
    params:
        session=row,
        preprocessing=maze_preprocessing(config),
        code=fingerprint("prepare"),


use rule train as maze_train with:
    input:
        store=PATHS["maze_prepared"],
    output:
        store=directory(PATHS["maze_embedding"]),
        model=directory(PATHS["maze_model"]),
    log:
        "logs/maze/train/{method}/{session}/{subset}/seed{seed}.log",
    benchmark:
        "results/benchmarks/maze_train/{method}/{session}/{subset}/seed{seed}.tsv"
    params:
        method_params=lambda wc: PLAN.maze_params[wc.method],
        subset=lambda wc: maze_subset(config, wc.subset),
        areas=config["maze"]["areas"],
        labels=config["labels"],
        device=config["device"],
        code=train_fingerprint,


rule maze_decode:
    input:
        lambda wc: flat(PLAN.maze_pairs(wc.method, wc.seed)),
    output:
        scores=report(
            f"{PATHS['maze_decoding']}.scores.tsv",
            caption="../report/maze_scores.rst",
            category="Maze: straight vs curved",
            labels={"table": "scores {method} seed {seed}"},
        ),
        provenance=f"{PATHS['maze_decoding']}.provenance.json",
    log:
        "logs/maze/decode/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/maze_decode/{method}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cells=lambda wc: PLAN.maze_pairs(wc.method, wc.seed),
        decoders=config["maze"]["decoders"],
        code=fingerprint("maze_decode"),
    script:
        "../scripts/maze_decode.py"


rule maze_figure_scores:
    input:
        PLAN.maze_tables(),
    output:
        figure=report(
            f"{PATHS['maze_figures']}/scores.png",
            caption="../report/maze_scores.rst",
            category="Maze: straight vs curved",
            labels={"figure": "R2 and separation per subset"},
        ),
        provenance=f"{PATHS['maze_figures']}/scores.provenance.json",
    log:
        "logs/maze/figures/scores.log",
    benchmark:
        "results/benchmarks/maze_figure_scores/scores.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        code=fingerprint("maze_figure_scores"),
    script:
        "../scripts/maze_figure_scores.py"


rule maze_figure_latents:
    input:
        embeddings=lambda wc: [
            PATHS["maze_embedding"].format(
                method=m, session=wc.session, subset=s, seed=PLAN.seeds[0]
            )
            for m in PLAN.maze_methods
            for s in PLAN.maze_subsets
        ],
    output:
        figure=report(
            f"{PATHS['maze_figures']}/{{session}}/latents.png",
            caption="../report/maze_latents.rst",
            category="Maze: straight vs curved",
            labels={"figure": "3-D latents {session}"},
        ),
        provenance=f"{PATHS['maze_figures']}/{{session}}/latents.provenance.json",
    log:
        "logs/maze/figures/{session}/latents.log",
    benchmark:
        "results/benchmarks/maze_figure_latents/{session}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        max_trials=config["figures"]["max_trials_per_direction"],
        code=fingerprint("maze_figure_latents"),
    script:
        "../scripts/maze_figure_latents.py"

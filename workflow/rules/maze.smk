# Straight versus curved reaches (the paper's Fig. 8; pipeline/maze.py): every maze session prepared
# again with the paper's maze settings (5 ms bins, 50 ms smoothing, -50 ... +450 ms around movement
# onset), one model per (method, session, trial subset, seed) on that subset's trials with M1 and PMd
# pooled, R2 and separation tables per method, 3-D latent figures per session and a score summary.


rule maze_prepare:
    input:
        store="results/ingest/{session}.zarr",
    output:
        store=directory("results/maze/prepared/{session}.zarr"),
    log:
        "logs/maze/prepare/{session}.log",
    cache: True
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        session=row,
        preprocessing=maze_preprocessing(config),
        code=fingerprint("prepare"),
    script:
        "../scripts/prepare.py"


rule maze_train:
    input:
        store="results/maze/prepared/{session}.zarr",
    output:
        store=directory(
            "results/maze/embeddings/{method}/{session}/{subset}/seed{seed}.zarr"
        ),
        model=directory("results/maze/models/{method}/{session}/{subset}/seed{seed}"),
    log:
        "logs/maze/train/{method}/{session}/{subset}/seed{seed}.log",
    benchmark:
        "results/benchmarks/maze_train/{method}/{session}/{subset}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=method_gpus,
        mem_mb=8000,
        runtime=240,
    params:
        method_params=lambda wc: _MAZE_PARAMS[wc.method],
        subset=lambda wc: maze_subset(config, wc.subset),
        areas=config["maze"]["areas"],
        labels=config["labels"],
        device=config["device"],
        code=train_fingerprint,
    script:
        "../scripts/train.py"


rule maze_decode:
    input:
        embeddings=lambda wc: maze_embeddings(wc.method, wc.seed),
        prepared=[
            f"results/maze/prepared/{sid}.zarr"
            for sid in MAZE_SESSIONS
            for subset in MAZE_SUBSETS
        ],
    output:
        scores=report(
            "results/maze/decoding/{method}/seed{seed}.scores.tsv",
            caption="../report/maze_scores.rst",
            category="Maze: straight vs curved",
            labels={"table": "scores {method} seed {seed}"},
        ),
        provenance="results/maze/decoding/{method}/seed{seed}.provenance.json",
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
        decoders=config["maze"]["decoders"],
        code=fingerprint("maze_decode"),
    script:
        "../scripts/maze_decode.py"


rule maze_figure_scores:
    input:
        expand(
            "results/maze/decoding/{method}/seed{seed}.scores.tsv",
            method=MAZE_METHODS,
            seed=SEEDS,
        ),
    output:
        figure=report(
            "results/maze/figures/scores.png",
            caption="../report/maze_scores.rst",
            category="Maze: straight vs curved",
            labels={"figure": "R2 and separation per subset"},
        ),
        provenance="results/maze/figures/scores.provenance.json",
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
            f"results/maze/embeddings/{method}/{wc.session}/{subset}/seed{SEEDS[0]}.zarr"
            for method in MAZE_METHODS
            for subset in MAZE_SUBSETS
        ],
    output:
        figure=report(
            "results/maze/figures/{session}/latents.png",
            caption="../report/maze_latents.rst",
            category="Maze: straight vs curved",
            labels={"figure": "3-D latents {session}"},
        ),
        provenance="results/maze/figures/{session}/latents.provenance.json",
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

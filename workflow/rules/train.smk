# Methods: one training job per (method, session, area, seed) -> embedding store + checkpoint.


rule train:
    input:
        store="results/prepared/{session}.zarr",
    output:
        store=directory("results/embeddings/{method}/{session}/{area}/seed{seed}.zarr"),
        model=directory("results/models/{method}/{session}/{area}/seed{seed}"),
    log:
        "logs/train/{method}/{session}/{area}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{method}/{session}/{area}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        method_params=method_params,
        labels=config["labels"],
        device=config["device"],
        code=train_fingerprint,
    script:
        "../scripts/train.py"

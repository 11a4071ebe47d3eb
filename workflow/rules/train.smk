# Methods: one training job per (method, session, area, seed) -> embedding store + checkpoint.
# GPU-capable methods (NER, CEBRA, piVAE) are gpu-tagged jobs; PCA, dPCA and UMAP take no GPU slot.


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
        gpu=method_gpus,
        mem_mb=8000,
        runtime=240,
    params:
        method_params=method_params,
        labels=config["labels"],
        device=config["device"],
        code=train_fingerprint,
    script:
        "../scripts/train.py"

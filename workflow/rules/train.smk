# Methods: one training job per (method, session, area, seed) -> embedding store + checkpoint.
# GPU-capable methods (NER, CEBRA, piVAE) are gpu-tagged jobs; PCA, dPCA and UMAP take no GPU slot.


rule train:
    input:
        store=PATHS["prepared"],
    output:
        store=directory(PATHS["embedding"]),
        model=directory(PATHS["model"]),
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
        method_params=lambda wc: config["methods"][wc.method]["params"],
        labels=config["labels"],
        device=config["device"],
        code=train_fingerprint,
    script:
        "../scripts/train.py"

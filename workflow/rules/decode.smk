# Decoders on the embeddings: within-session tables per method and seed; cross-cell matrices per group.
# Light CPU jobs (scikit-learn); no GPU slot.


rule decode_within:
    input:
        lambda wc: flat(PLAN.within_pairs(wc.method, wc.seed)),
    output:
        scores=f"{PATHS['within']}.scores.tsv",
        accuracy=f"{PATHS['within']}.accuracy.tsv",
        provenance=f"{PATHS['within']}.provenance.json",
    log:
        "logs/decode_within/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/decode_within/{method}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cells=lambda wc: PLAN.within_pairs(wc.method, wc.seed),
        decoding=config["decoding"],
        code=fingerprint("decode_within"),
    script:
        "../scripts/decode_within.py"


rule cross_decode:
    input:
        lambda wc: flat(PLAN.cross_pairs(wc.group, wc.method, wc.seed)),
    output:
        scores=f"{PATHS['cross']}.scores.tsv",
        accuracy=f"{PATHS['cross']}.accuracy.tsv",
        provenance=f"{PATHS['cross']}.provenance.json",
    log:
        "logs/cross_decode/{group}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/cross_decode/{group}/{method}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        cells=lambda wc: PLAN.cross_pairs(wc.group, wc.method, wc.seed),
        decoding=config["decoding"],
        code=fingerprint("cross_decode"),
    script:
        "../scripts/cross_decode.py"

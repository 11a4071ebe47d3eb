# Decoders on the embeddings: within-session tables per method and seed; cross-cell matrices per group.
# Light CPU jobs (scikit-learn); no GPU slot.


rule decode_within:
    input:
        unpack(within_inputs),
    output:
        scores="results/decoding/within/{method}/seed{seed}.scores.tsv",
        accuracy="results/decoding/within/{method}/seed{seed}.accuracy.tsv",
        provenance="results/decoding/within/{method}/seed{seed}.provenance.json",
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
        decoding=config["decoding"],
        code=fingerprint("decode_within"),
    script:
        "../scripts/decode_within.py"


rule cross_decode:
    input:
        unpack(cross_inputs),
    output:
        scores="results/decoding/cross/{group}/{method}/seed{seed}.scores.tsv",
        accuracy="results/decoding/cross/{group}/{method}/seed{seed}.accuracy.tsv",
        provenance="results/decoding/cross/{group}/{method}/seed{seed}.provenance.json",
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
        decoding=config["decoding"],
        code=fingerprint("cross_decode"),
    script:
        "../scripts/cross_decode.py"

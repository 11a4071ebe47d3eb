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


rule published_alignment:
    output:
        scores=report(
            "results/decoding/published/alignments.scores.tsv",
            caption="../report/published_alignment.rst",
            category="Decoding a new session without its labels",
            labels={"table": "the authors' embeddings, every alignment"},
        ),
        figure=report(
            "results/figures/published/alignments.png",
            caption="../report/published_alignment.rst",
            category="Decoding a new session without its labels",
            labels={"figure": "the authors' embeddings, every alignment"},
        ),
        provenance="results/decoding/published/alignments.provenance.json",
    log:
        "logs/published_alignment.log",
    benchmark:
        "results/benchmarks/published_alignment/published.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        folder=config["published_embeddings"],
        alignments=config["decoding"]["alignments"],
        code=fingerprint("published_alignment"),
    script:
        "../scripts/published_alignment.py"

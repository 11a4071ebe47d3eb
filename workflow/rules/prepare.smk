# Binning, smoothing, windows, labels, split -> results/prepared/{session}.zarr (input of every method).


rule prepare:
    input:
        store="results/ingest/{session}.zarr",
    output:
        store=directory("results/prepared/{session}.zarr"),
    log:
        "logs/prepare/{session}.log",
    benchmark:
        "results/benchmarks/prepare/{session}.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        session=row,
        preprocessing=preprocessing,
        code=fingerprint("prepare"),
    script:
        "../scripts/prepare.py"

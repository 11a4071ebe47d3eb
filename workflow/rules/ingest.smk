# Readers: one source recording -> results/ingest/{session}.zarr (what the reader found).


rule ingest:
    input:
        source=source_file,
    output:
        store=directory("results/ingest/{session}.zarr"),
    log:
        "logs/ingest/{session}.log",
    benchmark:
        "results/benchmarks/ingest/{session}.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        session=row,
        reader=reader_options,
        code=fingerprint("ingest"),
    script:
        "../scripts/ingest.py"

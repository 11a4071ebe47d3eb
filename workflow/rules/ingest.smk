# Readers: one source recording -> results/ingest/{session}.zarr (what the reader found).
# Cacheable between workflows (`--cache ingest prepare`) for the reasons given in prepare.smk; the
# cache key includes the recording's checksum. Snakemake still produces a cached job's inputs, so
# caching both stages is what saves reading and binning the recording again.


rule ingest:
    input:
        source=source_file,
    output:
        store=directory(PATHS["ingest"]),
    log:
        "logs/ingest/{session}.log",
    cache: True
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

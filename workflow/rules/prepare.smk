# Binning, smoothing, windows, labels, split -> results/prepared/{session}.zarr (input of every method).
#
# Between-workflow caching (`snakemake --cache prepare`, with $SNAKEMAKE_OUTPUT_CACHE set) is safe here:
# the store is a deterministic function of the recording (whose checksum enters the cache key through
# the ingest job), the sheet row, the preprocessing block and the code fingerprint, all of which are
# params; no random choice, device or thread count changes it; and no later job writes into it (cached
# stores are symlinks into the shared cache). Training is not cached: GPU kernels differ between
# devices and drivers, and the checkpoints are per-run artefacts. Caching forbids `benchmark:`.


rule prepare:
    input:
        store=PATHS["ingest"],
    output:
        store=directory(PATHS["prepared"]),
    log:
        "logs/prepare/{session}.log",
    cache: True
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

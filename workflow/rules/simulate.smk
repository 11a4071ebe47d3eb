# The built-in simulated recordings: one real NWB file (+ ground truth) per sheet row.
if SIMULATED:

    rule simulate:
        output:
            # local: written where config `data_dir` says, unprefixed when imported as a module (common.smk)
            nwb=local(f"{DATA_DIR}/{{session}}.nwb"),
            truth=local(f"{DATA_DIR}/{{session}}_truth.npz"),
            provenance=local(f"{DATA_DIR}/{{session}}.provenance.json"),
        log:
            "logs/simulate/{session}.log",
        benchmark:
            "results/benchmarks/simulate/{session}.tsv"
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            session=row,
            seed=config["simulation"]["seed"],
            sim=config["simulation"]["params"],
            code=fingerprint("simulate"),
        script:
            "../scripts/simulate.py"

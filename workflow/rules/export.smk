# One derived NWB file per session for DANDI (config `export_nwb`; README "Export to NWB (DANDI)"):
# the latents of every method, area and seed trained on the session, their decoded velocity, the split,
# the model records and the session's within-session scores; the NWB source's metadata copied and its
# trials linked. A light CPU job; the file is validated with pynwb before it takes its name.


rule export_nwb:
    input:
        source=source_file,
        ingest=PATHS["ingest"],
        prepared=PATHS["prepared"],
        embeddings=lambda wc: PLAN.session_embeddings(wc.session),
        models=lambda wc: PLAN.session_embeddings(wc.session, "model"),
        tables=PLAN.within_tables("scores"),
    output:
        nwb=PATHS["nwb"],
        provenance=PATHS["nwb"].replace(".nwb", ".provenance.json"),
    log:
        "logs/export_nwb/{session}.log",
    benchmark:
        "results/benchmarks/export_nwb/{session}.tsv"
    conda:
        "../../envs/export.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        format=lambda wc: row(wc)["format"],
        # the decoders whose predictions are written, with the decoding settings they are fitted with
        decoding={
            **{
                k: config["decoding"][k]
                for k in ("logistic_max_iter", "knn_neighbors", "cv_folds")
            },
            "decoders": config["export_nwb"]["decoders"],
        },
        link_source=config["export_nwb"]["link_source"],
        code=fingerprint("export_nwb"),
    script:
        "../scripts/export_nwb.py"

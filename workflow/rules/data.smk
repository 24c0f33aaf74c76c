rule prepare_data:
    """Fetch the data set once (when data.download allows) and check it reads, before any
    training job starts."""
    output:
        # Per named study: switching studies in one folder must not make this job rerun.
        f"{DATA_DIR}/prepared.json",
    params:
        data=lambda wildcards: STUDY.to_dict()["data"],
    log:
        f"{LOGS_DIR}/prepare_data.log",
    benchmark:
        f"{BENCH_DIR}/prepare_data.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro prepare-data --out {output} > {log} 2>&1"

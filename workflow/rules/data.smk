rule prepare_data:
    """A record of the study's data: image counts per split and class, and the content
    fingerprint that names the data in every run's identity. (CIFAR-10 itself is fetched,
    when absent and data.download allows, while the DAG is built: see common.smk.)"""
    output:
        # Per named study: switching studies in one folder must not make this job rerun.
        f"{DATA_DIR}/prepared.json",
    log:
        f"{LOGS_DIR}/prepare_data.log",
    benchmark:
        f"{BENCH_DIR}/prepare_data.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        fingerprint=lambda wildcards: data_fingerprint(),
    shell:
        "resnet-repro prepare-data --out {output} > {log} 2>&1"

rule prepare_data:
    """Fetch the data set once (when data.download allows) and check it reads, before any
    training job starts."""
    output:
        "results/data/prepared.json",
    params:
        data=lambda wildcards: STUDY.to_dict()["data"],
    log:
        "logs/prepare_data.log",
    benchmark:
        "benchmarks/prepare_data.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro prepare-data --out {output} > {log} 2>&1"

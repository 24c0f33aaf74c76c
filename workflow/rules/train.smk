rule train:
    """One (model, seed) with the paper's recipe. The job takes a free GPU slot by lock file
    (Snakemake assigns no GPU ids to local jobs) and resumes from its checkpoint after a
    kill; the checkpoint is not a declared output, so Snakemake never deletes it."""
    output:
        metrics=f"{RUNS}/metrics.parquet",
        model=f"{RUNS}/model.pt",
        run=f"{RUNS}/run.json",
    log:
        "logs/train/{model}_seed{seed}.log",
    benchmark:
        "benchmarks/train/{model}_seed{seed}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        identity=run_identity_hash,
    shell:
        "resnet-repro train --model {wildcards.model}"
        " --seed {wildcards.seed} --out results/runs/{wildcards.model}/seed{wildcards.seed}"
        " --cpu-threads {threads} > {log} 2>&1"

rule layer_std:
    """Figure 7's statistic: std of every 3x3 layer's response (after BN, before the ReLU or
    the addition) of a trained model, in eval mode over the test images."""
    input:
        model=f"{RUNS}/model.pt",
        code=PACKAGE / "probes" / "layer_responses.py",
    output:
        "results/analysis/layer_std/{model}_seed{seed}.parquet",
    params:
        images=STUDY.analysis.layer_std_images,
    log:
        "logs/layer_std/{model}_seed{seed}.log",
    benchmark:
        "benchmarks/layer_std/{model}_seed{seed}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro layer-std --model-file {input.model}"
        " --images {params.images} --out {output} > {log} 2>&1"


rule tables:
    """Table 6 against the paper, plain vs residual per depth, and every run's status."""
    input:
        metrics=all_metrics(),
        code=PACKAGE / "analysis.py",
    output:
        table6=report(
            "results/tables/table6.csv",
            caption="../report/table6.rst",
            category="Tables",
            labels={"table": "Table 6"},
        ),
        table6_md="results/tables/table6.md",
        pvr=report(
            "results/tables/plain_vs_residual.csv",
            caption="../report/plain_vs_residual.rst",
            category="Tables",
            labels={"table": "plain vs residual"},
        ),
        pvr_md="results/tables/plain_vs_residual.md",
        runs=report(
            "results/tables/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
            labels={"table": "runs"},
        ),
        runs_md="results/tables/runs.md",
    params:
        tolerance=STUDY.analysis.tolerance_pct,
    log:
        "logs/tables.log",
    benchmark:
        "benchmarks/tables.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro tables --metrics {input.metrics}"
        " --out-dir results/tables > {log} 2>&1"

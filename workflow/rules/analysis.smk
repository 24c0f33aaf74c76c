rule layer_std:
    """Figure 7's statistic: std of every 3x3 layer's response (after BN, before the ReLU or
    the addition) of a trained model, in eval mode over the test images."""
    input:
        model=f"{RUNS}/model.pt",
        code=PACKAGE / "probes" / "layer_responses.py",
    output:
        "results/analysis/layer_std/{model}_seed{seed}.parquet",
    log:
        "logs/layer_std/{model}_seed{seed}.log",
    benchmark:
        "benchmarks/layer_std/{model}_seed{seed}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        images=STUDY.analysis.layer_std_images,
    shell:
        "resnet-repro layer-std --model-file {input.model}"
        " --images {params.images} --out {output} > {log} 2>&1"


rule tables:
    """Table 6 against the paper, plain vs residual per depth, every run's status, the
    ImageNet-style family reported the honest way, and both families side by side."""
    input:
        metrics=all_metrics(),
        code=PACKAGE / "analysis.py",
        families_code=PACKAGE / "families.py",
    output:
        table6=report(
            f"{TABLES_DIR}/table6.csv",
            caption="../report/table6.rst",
            category="Tables",
            labels={"table": "Table 6"},
        ),
        table6_md=f"{TABLES_DIR}/table6.md",
        pvr=report(
            f"{TABLES_DIR}/plain_vs_residual.csv",
            caption="../report/plain_vs_residual.rst",
            category="Tables",
            labels={"table": "plain vs residual"},
        ),
        pvr_md=f"{TABLES_DIR}/plain_vs_residual.md",
        runs=report(
            f"{TABLES_DIR}/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
            labels={"table": "runs"},
        ),
        runs_md=f"{TABLES_DIR}/runs.md",
        imagenet_style=report(
            f"{TABLES_DIR}/imagenet_style.csv",
            caption="../report/imagenet_style.rst",
            category="Tables",
            labels={"table": "ImageNet-style family"},
        ),
        imagenet_style_md=f"{TABLES_DIR}/imagenet_style.md",
        families=report(
            f"{TABLES_DIR}/families.csv",
            caption="../report/families.rst",
            category="Tables",
            labels={"table": "both families"},
        ),
        families_md=f"{TABLES_DIR}/families.md",
    log:
        f"{LOGS_DIR}/tables.log",
    benchmark:
        f"{BENCH_DIR}/tables.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        tolerance=STUDY.analysis.tolerance_pct,
        compare=compare_metrics(),
        out_dir=lambda wildcards, output: os.path.dirname(output.table6),
    shell:
        "resnet-repro tables --metrics {input.metrics}"
        " --compare-metrics {params.compare}"
        " --out-dir {params.out_dir} > {log} 2>&1"

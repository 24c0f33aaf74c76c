rule tables:
    """Table 6 against the paper, plain vs residual per depth, every run's status, the
    ImageNet-style family reported the honest way, and both families side by side."""
    input:
        metrics=all_metrics(),
        code=[
            PACKAGE / "tables" / f
            for f in ("runs.py", "comparison.py", "families.py", "paper.py", "text.py")
        ],
    output:
        table6=f"{TABLES_DIR}/table6.csv",
        table6_md=f"{TABLES_DIR}/table6.md",
        table6_html=report(
            f"{TABLES_DIR}/table6.html",
            caption="../report/table6.rst",
            category="Tables",
            labels={"table": "Table 6"},
        ),
        pvr=f"{TABLES_DIR}/plain_vs_residual.csv",
        pvr_md=f"{TABLES_DIR}/plain_vs_residual.md",
        pvr_html=report(
            f"{TABLES_DIR}/plain_vs_residual.html",
            caption="../report/plain_vs_residual.rst",
            category="Tables",
            labels={"table": "plain vs residual"},
        ),
        runs=f"{TABLES_DIR}/runs.csv",
        runs_md=f"{TABLES_DIR}/runs.md",
        runs_html=report(
            f"{TABLES_DIR}/runs.html",
            caption="../report/runs.rst",
            category="Tables",
            labels={"table": "runs"},
        ),
        imagenet_style=f"{TABLES_DIR}/imagenet_style.csv",
        imagenet_style_md=f"{TABLES_DIR}/imagenet_style.md",
        imagenet_style_html=report(
            f"{TABLES_DIR}/imagenet_style.html",
            caption="../report/imagenet_style.rst",
            category="Tables",
            labels={"table": "ImageNet-style family"},
        ),
        families=f"{TABLES_DIR}/families.csv",
        families_md=f"{TABLES_DIR}/families.md",
        families_html=report(
            f"{TABLES_DIR}/families.html",
            caption="../report/families.rst",
            category="Tables",
            labels={"table": "both families"},
        ),
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

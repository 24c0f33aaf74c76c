rule figure6:
    """The paper's Figure 6: training (dashed; means over fixed windows of iterations) and
    test (bold) error against iterations."""
    input:
        metrics=all_metrics(),
        code=[
            PACKAGE / "figures" / "paper_figures.py",
            PACKAGE / "figures" / "style.py",
        ],
    output:
        png=report(
            f"{FIGURES_DIR}/figure6.png",
            caption="../report/figure6.rst",
            category="Figures",
            labels={"figure": "Figure 6"},
        ),
        pdf=f"{FIGURES_DIR}/figure6.pdf",
    log:
        f"{LOGS_DIR}/figure6.log",
    benchmark:
        f"{BENCH_DIR}/figure6.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        ymax=STUDY.analysis.figure6_ymax,
    shell:
        "resnet-repro figure6 --metrics {input.metrics} --ymax {params.ymax}"
        " --out {output.png} > {log} 2>&1"


rule figure7:
    """The paper's Figure 7: std of layer responses, in layer order and sorted."""
    input:
        layer_std=layer_std_files(),
        code=[
            PACKAGE / "figures" / "paper_figures.py",
            PACKAGE / "figures" / "style.py",
        ],
    output:
        png=report(
            f"{FIGURES_DIR}/figure7.png",
            caption="../report/figure7.rst",
            category="Figures",
            labels={"figure": "Figure 7"},
        ),
        pdf=f"{FIGURES_DIR}/figure7.pdf",
    log:
        f"{LOGS_DIR}/figure7.log",
    benchmark:
        f"{BENCH_DIR}/figure7.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        models=figure7_models(),
        statistic=STUDY.analysis.figure7_statistic,
    shell:
        "resnet-repro figure7 --layer-std {input.layer_std} --models {params.models}"
        " --statistic {params.statistic} --out {output.png} > {log} 2>&1"

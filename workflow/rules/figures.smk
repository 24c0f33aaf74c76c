rule figure6:
    """The paper's Figure 6: training (dashed) and test (bold) error against iterations."""
    input:
        metrics=all_metrics(),
        code=PACKAGE / "plots.py",
    output:
        png=report(
            "figures/figure6.png",
            caption="../report/figure6.rst",
            category="Figures",
            labels={"figure": "Figure 6"},
        ),
        pdf="figures/figure6.pdf",
    params:
        ymax=STUDY.analysis.figure6_ymax,
    log:
        "logs/figure6.log",
    benchmark:
        "benchmarks/figure6.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro figure6 --metrics {input.metrics} --ymax {params.ymax}"
        " --out {output.png} > {log} 2>&1"


rule figure7:
    """The paper's Figure 7: std of layer responses, in layer order and sorted."""
    input:
        layer_std=layer_std_files(),
        code=PACKAGE / "plots.py",
    output:
        png=report(
            "figures/figure7.png",
            caption="../report/figure7.rst",
            category="Figures",
            labels={"figure": "Figure 7"},
        ),
        pdf="figures/figure7.pdf",
    params:
        models=figure7_models(),
    log:
        "logs/figure7.log",
    benchmark:
        "benchmarks/figure7.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro figure7 --layer-std {input.layer_std} --models {params.models}"
        " --out {output.png} > {log} 2>&1"

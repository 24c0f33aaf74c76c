# Published checkpoints of other reproductions (config `published:`): import each into our
# model.pt layout, evaluate it on this study's test set, measure its layer responses, and
# write their table and their Figure 7. Nothing here trains.


rule import_published:
    """A foreign checkpoint as our model.pt (same function, our channel layout, with the input
    normalisation it was trained with). A wooyeolbaek net's is the per-pixel mean of every
    training image of the study's data, stored in the file: it is imported again when the
    data changes (params.data), and evaluated alike by every study that reads it."""
    input:
        ancient(rules.prepare_data.output),
        checkpoint=published_file,
        code=PACKAGE / "published" / "checkpoints.py",
    output:
        f"{PUBLISHED_DIR}/model.pt",
    log:
        "logs/published/import_{name}.log",
    benchmark:
        "benchmarks/published/import_{name}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        format=lambda wildcards: PUBLISHED[wildcards.name].format,
        model=published_model_option,
        data=published_data,
    shell:
        "resnet-repro import --format {params.format} --file {input.checkpoint}"
        " --name {wildcards.name} {params.model} --out {output} > {log} 2>&1"


rule evaluate_published:
    """Test error of an imported net on this study's test set, in eval mode and fp32."""
    input:
        ancient(rules.prepare_data.output),
        model=f"{PUBLISHED_DIR}/model.pt",
    output:
        f"{PUBLISHED_DIR}/eval.json",
    log:
        "logs/published/evaluate_{name}.log",
    benchmark:
        "benchmarks/published/evaluate_{name}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        data=lambda wildcards: STUDY.to_dict()["data"],
    shell:
        "resnet-repro evaluate --model-file {input.model} --name {wildcards.name}"
        " --out {output} > {log} 2>&1"


rule layer_std_published:
    """Figure 7's statistic for an imported net, as rule layer_std does for ours."""
    input:
        ancient(rules.prepare_data.output),
        model=f"{PUBLISHED_DIR}/model.pt",
    output:
        f"{PUBLISHED_DIR}/layer_std.parquet",
    log:
        "logs/published/layer_std_{name}.log",
    benchmark:
        "benchmarks/published/layer_std_{name}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        images=STUDY.analysis.layer_std_images,
        data=lambda wildcards: STUDY.to_dict()["data"],
    shell:
        "resnet-repro layer-std --model-file {input.model}"
        " --images {params.images} --out {output} > {log} 2>&1"


rule published_table:
    """The authors' reported test error of each checkpoint, ours, and the difference."""
    input:
        evals=published_evals(),
        code=[
            PACKAGE / "published" / "table.py",
            PACKAGE / "tables" / "paper.py",
            PACKAGE / "tables" / "text.py",
        ],
    output:
        csv="results/tables/published.csv",
        md="results/tables/published.md",
        html=report(
            "results/tables/published.html",
            caption="../report/published.rst",
            category="Tables",
            labels={"table": "published checkpoints"},
        ),
    log:
        "logs/published/table.log",
    benchmark:
        "benchmarks/published/table.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro published-table --eval {input.evals} --out-dir results/tables"
        " > {log} 2>&1"


rule figure7_published:
    """Figure 7 of the imported nets, one column per reproduction."""
    input:
        layer_std=[f for files in published_layer_std_groups().values() for f in files],
        code=[
            PACKAGE / "figures" / "paper_figures.py",
            PACKAGE / "figures" / "style.py",
        ],
    output:
        png=report(
            "figures/figure7_published.png",
            caption="../report/figure7_published.rst",
            category="Figures",
            labels={"figure": "Figure 7 (published checkpoints)"},
        ),
        pdf="figures/figure7_published.pdf",
    log:
        "logs/published/figure7.log",
    benchmark:
        "benchmarks/published/figure7.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        groups=" ".join(
            f"--group {label} {' '.join(files)}"
            for label, files in published_layer_std_groups().items()
        ),
        statistic=STUDY.analysis.figure7_statistic,
    shell:
        "resnet-repro figure7-published {params.groups} --statistic {params.statistic}"
        " --out {output.png} > {log} 2>&1"


rule landscape_published:
    """The loss landscape of an imported net that has a twin (rule landscape does the same for
    ours), on this study's training images. Its initial weights are not published: the
    interpolation starts from our initialisation of the same net, and its rows say so.
    """
    input:
        ancient(rules.prepare_data.output),
        model=f"{PUBLISHED_DIR}/model.pt",
        code=PACKAGE / "probes" / "landscape.py",
    output:
        f"{PUBLISHED_DIR}/landscape.parquet",
    log:
        "logs/published/landscape_{name}.log",
    benchmark:
        "benchmarks/published/landscape_{name}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=landscape_settings,
        data=lambda wildcards: STUDY.to_dict()["data"],
    shell:
        "resnet-repro landscape --model-file {input.model}"
        " --cpu-threads {threads} --out {output} > {log} 2>&1"


rule figure_landscape_published:
    """The landscapes of the imported plain/residual twins, as figure_landscape draws ours."""
    input:
        results=published_landscapes(),
        code=[PACKAGE / "figures" / "landscape.py", PACKAGE / "figures" / "style.py"],
    output:
        png=report(
            "figures/landscape_published.png",
            caption="../report/landscape_published.rst",
            category="Figures",
            labels={"figure": "loss landscapes (published checkpoints)"},
        ),
        pdf="figures/landscape_published.pdf",
    log:
        "logs/published/figure_landscape.log",
    benchmark:
        "benchmarks/published/figure_landscape.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        title="Training-loss landscapes of published plain/residual twins (after Li et al. "
        "2018, Fig. 5)",
    shell:
        "resnet-repro landscape-figure --results {input.results}"
        " --title '{params.title}' --out {output.png} > {log} 2>&1"

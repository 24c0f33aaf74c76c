# Probes of trained nets, as the package's registry describes them
# (resnet_repro/probes/registry.py): one job per probe and trained model (first seed), then
# one figure per probe. Each probe job takes the model file and the probe's own modules as
# input, so editing a probe reruns that probe and its figure, never training; its config
# values are a param, so changing them does the same.


rule probe:
    """One probe of one trained model in eval mode and fp32 (`resnet-repro probe --help`
    lists them): lesions (Veit et al. Fig. 3), lesions_k (Fig. 5a), paths (Fig. 6, residual
    nets only; on the training or test images, analysis.path_split), branches (||y - x|| /
    ||x|| and ||F(x)|| / ||x|| per residual block). Runs on the training device."""
    input:
        model=f"{RUNS}/model.pt",
        code=lambda wc: probe_code(PROBE[wc.kind]),
    output:
        "results/analysis/{kind}/{model}_seed{seed}.parquet",
    log:
        "logs/probe/{kind}/{model}_seed{seed}.log",
    benchmark:
        "benchmarks/probe/{kind}/{model}_seed{seed}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=probe_settings,
    shell:
        "resnet-repro probe {wildcards.kind} --model-file {input.model}"
        " --cpu-threads {threads} --out {output} > {log} 2>&1"


rule layer_std:
    """Figure 7's statistic: std of every 3x3 layer's response (after BN, before the ReLU or
    the addition) of a trained model, in eval mode over the test images, on the CPU."""
    input:
        model=f"{RUNS}/model.pt",
        code=probe_code(LAYER_STD),
    output:
        f"results/analysis/{LAYER_STD.name}/{{model}}_seed{{seed}}.parquet",
    log:
        f"logs/{LAYER_STD.name}/{{model}}_seed{{seed}}.log",
    benchmark:
        f"benchmarks/{LAYER_STD.name}/{{model}}_seed{{seed}}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    params:
        settings=LAYER_STD.settings_of(STUDY),
    shell:
        f"resnet-repro probe {LAYER_STD.name}"
        " --model-file {input.model} --cpu-threads {threads} --out {output} > {log} 2>&1"


rule landscape:
    """The training-loss landscape of one trained model (Li et al. 2018, arXiv:1712.09913):
    the surface over two filter-normalised random directions, the 1-D curve along the first,
    and the interpolation from the run's initial weights (rebuilt from its seed). Eval mode,
    fp32, on the training device; nothing retrains."""
    input:
        model=f"{RUNS}/model.pt",
        code=probe_code(LANDSCAPE),
    output:
        f"results/analysis/{LANDSCAPE.name}/{{model}}_seed{{seed}}.parquet",
    log:
        f"logs/{LANDSCAPE.name}/{{model}}_seed{{seed}}.log",
    benchmark:
        f"benchmarks/{LANDSCAPE.name}/{{model}}_seed{{seed}}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=landscape_settings,
    shell:
        f"resnet-repro probe {LANDSCAPE.name}"
        " --model-file {input.model} --cpu-threads {threads} --out {output} > {log} 2>&1"


# One figure rule per probe with a figure (a report caption cannot hold a wildcard), drawn
# from the probe's Parquet files only, by the figure function its registry entry names.
for _probe in probe_figures():

    rule:
        name:
            f"figure_{_probe.name}"
        input:
            results=probe_files(_probe),
            code=[PACKAGE / f for f in _probe.figure.code + FIGURE_CODE],
        output:
            png=report(
                f"{FIGURES_DIR}/{_probe.name}.png",
                caption=f"../report/{_probe.name}.rst",
                category="Probes of trained nets",
                labels={"figure": _probe.figure.label},
            ),
            pdf=f"{FIGURES_DIR}/{_probe.name}.pdf",
        log:
            f"{LOGS_DIR}/figure_{_probe.name}.log",
        benchmark:
            f"{BENCH_DIR}/figure_{_probe.name}.tsv"
        conda:
            "../envs/resnet-repro.yaml"
        params:
            kind=_probe.name,
            models=_probe.figure_models(STUDY),
        shell:
            "resnet-repro probe-figure {params.kind} --results {input.results}"
            " --models {params.models} --out {output.png} > {log} 2>&1"

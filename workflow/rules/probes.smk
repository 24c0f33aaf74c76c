# Probes of trained nets (Veit et al. 2016, arXiv:1605.06431, and the branch magnitudes): one
# rule per experiment on every trained model (first seed), then one figure per experiment.
# Each probe rule takes the model file and its probe module as input, so editing a probe
# reruns that probe and its figure, never training.

PROBE_CODE = {
    "lesions": "lesions.py",
    "lesions_k": "lesions.py",
    "paths": "paths.py",
    "branches": "branches.py",
}


rule probe:
    """One probe of one trained model in eval mode and fp32 over the study's test images:
    lesions (Veit et al. Fig. 3), lesions_k (Fig. 5a), paths (Fig. 6, residual nets only; on
    the training or test images, analysis.path_split), branches (||y - x|| / ||x|| and
    ||F(x)|| / ||x|| per residual block). Runs on the training device."""
    input:
        model=f"{RUNS}/model.pt",
        code=lambda wc: PACKAGE / "probes" / PROBE_CODE[wc.kind],
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


# One figure rule per probe (a report caption cannot hold a wildcard), drawn from the probe's
# Parquet files only (first seed of each model). figures/probes.py draws them with figures/style.py.
for _kind in PROBES:

    rule:
        name:
            f"figure_{_kind}"
        input:
            results=probe_files(_kind),
            code=[PACKAGE / "figures" / "probes.py", PACKAGE / "figures" / "style.py"],
        output:
            png=report(
                f"{FIGURES_DIR}/{_kind}.png",
                caption=f"../report/{_kind}.rst",
                category="Probes of trained nets",
                labels={"figure": PROBE_FIGURE_LABELS[_kind]},
            ),
            pdf=f"{FIGURES_DIR}/{_kind}.pdf",
        log:
            f"logs/figure_{_kind}.log",
        benchmark:
            f"benchmarks/figure_{_kind}.tsv"
        conda:
            "../envs/resnet-repro.yaml"
        params:
            kind=_kind,
            models=probe_figure_models(_kind),
        shell:
            "resnet-repro probe-figure {params.kind} --results {input.results}"
            " --models {params.models} --out {output.png} > {log} 2>&1"


rule landscape:
    """The training-loss landscape of one trained model (Li et al. 2018, arXiv:1712.09913):
    the surface over two filter-normalised random directions, the 1-D curve along the first,
    and the interpolation from the run's initial weights (rebuilt from its seed). Eval mode,
    fp32, on the training device; nothing retrains."""
    input:
        model=f"{RUNS}/model.pt",
        code=PACKAGE / "probes" / "landscape.py",
    output:
        "results/analysis/landscape/{model}_seed{seed}.parquet",
    log:
        "logs/landscape/{model}_seed{seed}.log",
    benchmark:
        "benchmarks/landscape/{model}_seed{seed}.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=landscape_settings,
    shell:
        "resnet-repro landscape --model-file {input.model}"
        " --cpu-threads {threads} --out {output} > {log} 2>&1"


rule figure_landscape:
    """Plain and residual landscapes of each depth side by side, drawn from the landscape
    Parquet files only."""
    input:
        results=landscape_files(),
        code=[PACKAGE / "figures" / "landscape.py", PACKAGE / "figures" / "style.py"],
    output:
        png=report(
            f"{FIGURES_DIR}/landscape.png",
            caption="../report/landscape.rst",
            category="Probes of trained nets",
            labels={"figure": LANDSCAPE_FIGURE_LABEL},
        ),
        pdf=f"{FIGURES_DIR}/landscape.pdf",
    log:
        f"{LOGS_DIR}/figure_landscape.log",
    benchmark:
        f"{BENCH_DIR}/figure_landscape.tsv"
    conda:
        "../envs/resnet-repro.yaml"
    shell:
        "resnet-repro landscape-figure --results {input.results}"
        " --out {output.png} > {log} 2>&1"

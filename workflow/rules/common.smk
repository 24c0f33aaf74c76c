# Config loading and target lists shared by the rules.

import os
from pathlib import Path

import resnet_repro
from resnet_repro.cli import CONFIG_ENV
from resnet_repro.config import (
    ConfigError,
    identity_hash,
    load_study,
    run_identity,
    study_from_dict,
)

# Snakemake reads the Snakefile's configfile first and applies --configfile files over it;
# the jobs merge the files in that same order.
_cli_configfiles = [str(f) for f in workflow.overwrite_configfiles or []]
CONFIG_FILES = [
    str(f) for f in workflow.configfiles if str(f) not in _cli_configfiles
] + _cli_configfiles

try:
    # The package validates the same schema (with its defaults) plus what a schema cannot
    # say (depths 6n+2, milestones before the end); its message names the key.
    STUDY = study_from_dict(config)
    # The jobs read the config files themselves, so values given with --config would not
    # reach them; refuse those rather than train with something else than was asked.
    if load_study(CONFIG_FILES) != STUDY:
        raise ConfigError(
            "values given with --config do not reach the jobs; put them in a YAML file "
            "and pass it with --configfile"
        )
except ConfigError as e:
    raise WorkflowError(f"bad config: {e}")

validate(config, "../schemas/config.schema.yaml")

# The jobs read the same files, named in the environment rather than in shell text or params:
# which file holds the config is no reason to rerun anything (run_identity_hash is).
os.environ[CONFIG_ENV] = os.pathsep.join(str(Path(f).resolve()) for f in CONFIG_FILES)
PACKAGE = Path(resnet_repro.__file__).resolve().parent
RUNS = "results/runs/{model}/seed{seed}"


def run_dir(model, seed):
    return RUNS.format(model=model, seed=seed)


def all_metrics():
    return [f"{run_dir(m, s)}/metrics.parquet" for m, s in STUDY.runs()]


def figure7_models():
    """Figure 7's models that this study trains (first seed)."""
    return [m for m in STUDY.analysis.figure7_models if m in STUDY.models()]


def layer_std_files():
    seed = STUDY.study.seeds[0]
    return [f"results/analysis/layer_std/{m}_seed{seed}.parquet" for m in figure7_models()]


def run_identity_hash(wildcards):
    # Tracked by Snakemake as a param: a run is retrained exactly when something that
    # determines its numbers changes (not when depths or seeds are added elsewhere).
    return identity_hash(run_identity(STUDY, wildcards.model, int(wildcards.seed)))


PROBES = ["lesions", "lesions_k", "paths", "branches"]
PROBE_FIGURE_LABELS = {
    "lesions": "Veit Fig. 3: single-block lesions",
    "lesions_k": "Veit Fig. 5a: k-block lesions",
    "paths": "Veit Fig. 6: path lengths and gradients",
    "branches": "branch magnitudes",
}


def probe_models(kind):
    """Models a probe runs on: every trained model; the path experiment needs residual nets."""
    return [m for m in STUDY.models() if kind != "paths" or m.startswith("resnet")]


def probe_files(kind):
    seed = STUDY.study.seeds[0]
    return [f"results/analysis/{kind}/{m}_seed{seed}.parquet" for m in probe_models(kind)]


def probe_figure_models(kind):
    """The configured figure models that this probe has results for; all of those when the
    study trains none of the configured ones."""
    chosen = [m for m in STUDY.analysis.probe_figure_models if m in probe_models(kind)]
    return chosen or probe_models(kind)


def probe_settings(wildcards):
    # The config values a probe's numbers depend on (tracked by Snakemake as a param, so a
    # change reruns the probes, never training).
    a, d = STUDY.analysis, STUDY.data
    keys = {
        "lesions": ("probe_images",),
        "lesions_k": ("probe_images", "lesion_draws", "lesion_k_points", "probe_seed"),
        "paths": ("path_samples", "path_batches", "path_batch_size", "probe_seed"),
        "branches": ("probe_images",),
    }[wildcards.kind]
    out = {k: getattr(a, k) for k in keys}
    out["test_subset"] = d.test_subset
    return out


TABLES = ["table6", "plain_vs_residual", "runs"]


def all_targets():
    return (
        all_metrics()
        + [f"results/tables/{t}.{ext}" for t in TABLES for ext in ("csv", "md")]
        + [f"figures/figure6.{ext}" for ext in ("png", "pdf")]
        + [f"figures/figure7.{ext}" for ext in ("png", "pdf")]
        + [f for kind in PROBES for f in probe_files(kind)]
        + [f"figures/{kind}.{ext}" for kind in PROBES for ext in ("png", "pdf")]
    )


wildcard_constraints:
    kind="|".join(PROBES),
    model=r"(plain|resnet)\d+",
    seed=r"\d+",

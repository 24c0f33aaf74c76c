# Config loading and target lists shared by the rules.

import os
from pathlib import Path

import resnet_repro
from resnet_repro.cli import CONFIG_ENV
from resnet_repro.config import (
    ConfigError,
    identity_hash,
    load_study,
    missing_published_files,
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
    # Imported checkpoints are inputs nobody can rebuild: say so before any job starts.
    _missing = missing_published_files(STUDY)
    if _missing:
        raise ConfigError(_missing[0] + (f" (and {len(_missing) - 1} more)" if len(_missing) > 1
                                         else ""))
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


TABLES = ["table6", "plain_vs_residual", "runs"]


def all_targets():
    return (
        all_metrics()
        + [f"results/tables/{t}.{ext}" for t in TABLES for ext in ("csv", "md")]
        + [f"figures/figure6.{ext}" for ext in ("png", "pdf")]
        + [f"figures/figure7.{ext}" for ext in ("png", "pdf")]
        + published_targets()
    )


PUBLISHED = {p.name: p for p in STUDY.published}
PUBLISHED_DIR = "results/published/{name}"


def published_targets():
    """The published checkpoints' table and Figure 7 (rules/published.smk); none without a
    `published:` list."""
    if not PUBLISHED:
        return []
    return [f"results/tables/published.{ext}" for ext in ("csv", "md")] + [
        f"figures/figure7_published.{ext}" for ext in ("png", "pdf")
    ]


def published_file(wildcards):
    return PUBLISHED[wildcards.name].file


def published_model_option(wildcards):
    model = PUBLISHED[wildcards.name].model
    return f"--model {model}" if model else ""


def published_evals():
    return [f"{PUBLISHED_DIR.format(name=n)}/eval.json" for n in PUBLISHED]


def published_layer_std_groups():
    """One Figure 7 column per checkpoint format (that is, per reproduction)."""
    groups = {}
    for name, p in PUBLISHED.items():
        path = f"{PUBLISHED_DIR.format(name=name)}/layer_std.parquet"
        groups.setdefault(p.format, []).append(path)
    return groups


wildcard_constraints:
    model=r"(plain|resnet)\d+",
    seed=r"\d+",

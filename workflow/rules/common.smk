# Config loading and target lists shared by the rules.

import functools
import os
from pathlib import Path

import resnet_repro
from resnet_repro.cli.common import CONFIG_ENV
from resnet_repro.data import DataError, data_is_present, fingerprint, load_arrays
from resnet_repro.nets.families import MODEL_PATTERN
from resnet_repro.probes.registry import BY_NAME as PROBE
from resnet_repro.probes.registry import FIGURE_CODE, LANDSCAPE, LAYER_STD, PROBES
from resnet_repro.published.twins import twin_names
from resnet_repro.config import (
    ConfigError,
    check_trainable,
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

if workflow.config_settings.config:
    # Checked before the values are validated: whatever their form, the jobs read the config
    # files themselves, so values given with --config would never reach them.
    raise WorkflowError(
        "bad config: values given with --config do not reach the jobs; put them in a YAML "
        "file and pass it with --configfile"
    )

try:
    # The package validates the same schema (with its defaults) plus what a schema cannot
    # say (depths 6n+2, milestones before the end); its message names the key.
    STUDY = study_from_dict(config)
    check_trainable(STUDY)
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
        raise ConfigError(
            _missing[0]
            + (f" (and {len(_missing) - 1} more)" if len(_missing) > 1 else "")
        )
except ConfigError as e:
    raise WorkflowError(f"bad config: {e}")

validate(config, "../schemas/config.schema.yaml")

# The jobs read the same files, named in the environment rather than in shell text or params:
# which file holds the config is no reason to rerun anything (run_identity_hash is).
os.environ[CONFIG_ENV] = os.pathsep.join(str(Path(f).resolve()) for f in CONFIG_FILES)
# The package's code files are inputs of the rules that run them (an edit reruns exactly
# those). Named relative to the working directory when the package lies inside it (a clone
# run in place): Snakemake records each job's set of input paths, so absolute ones would make
# a project moved or copied to another folder rerun every analysis.
PACKAGE = Path(resnet_repro.__file__).resolve().parent
if PACKAGE.is_relative_to(Path.cwd().resolve()):
    PACKAGE = PACKAGE.relative_to(Path.cwd().resolve())
RUNS = "results/runs/{model}/seed{seed}"
# Runs of every study share results/runs (model names differ between families); tables,
# figures and their logs of a named study (study.name, e.g. imagenet-style) go to a folder of
# their own, so that two studies in one working directory never overwrite each other.
_NAMED = [STUDY.study.name] if STUDY.study.name else []
TABLES_DIR = os.path.join("results", "tables", *_NAMED)
FIGURES_DIR = os.path.join("figures", *_NAMED)
LOGS_DIR = os.path.join("logs", *_NAMED)
BENCH_DIR = os.path.join("benchmarks", *_NAMED)
DATA_DIR = os.path.join("results", "data", *_NAMED)


def run_dir(model, seed):
    return RUNS.format(model=model, seed=seed)


def all_metrics():
    return [f"{run_dir(m, s)}/metrics.parquet" for m, s in STUDY.runs()]


def compare_metrics():
    """metrics.parquet of analysis.compare_models (another study's runs in the same
    results/runs folder), for the families table. Not inputs: this study must never train
    them with its own recipe; the table reports the absent ones as missing."""
    return [
        f"{run_dir(m, s)}/metrics.parquet"
        for m in STUDY.analysis.compare_models
        if m not in STUDY.models()
        for s in STUDY.study.seeds
    ]


def figure7_models():
    """Figure 7's models that this study trains (first seed)."""
    return LAYER_STD.models(STUDY)


def layer_std_files():
    return probe_files(LAYER_STD)


@functools.cache
def data_fingerprint():
    """The content of the study's data (images and labels after split and subsets), read
    once per Snakemake run while the DAG is built, before any job starts. CIFAR-10 is
    downloaded here when it is absent and data.download allows it (not in a dry run)."""
    try:
        if workflow.dryrun and not data_is_present(STUDY.data):
            return "data-not-downloaded-yet"
        return fingerprint(load_arrays(STUDY.data))
    except (ConfigError, DataError) as e:
        raise WorkflowError(f"bad data: {e}")


def run_identity_hash(wildcards):
    # Tracked by Snakemake as a param, and no file is the training rule's input: a run is
    # retrained exactly when what determines its numbers changes (recipe, model, seed, the
    # data's content), in the same run, and never because the data moved or was re-read.
    identity = run_identity(
        STUDY, wildcards.model, int(wildcards.seed), data_fingerprint()
    )
    return identity_hash(identity)


# The probes of trained nets, each described once in the package's registry
# (resnet_repro/probes/registry.py): which nets, which config values, which code files, which
# figure. Every probe's results: one file per trained net (first seed).


def probe_files(p):
    seed = STUDY.study.seeds[0]
    return [
        f"results/analysis/{p.name}/{m}_seed{seed}.parquet" for m in p.models(STUDY)
    ]


def probe_code(p):
    """The probe's own modules: an edit reruns that probe, never training."""
    return [PACKAGE / f for f in p.code]


def probe_settings(wildcards):
    # The config values a probe's numbers depend on (tracked by Snakemake as a param, so a
    # change reruns the probes, never training).
    return PROBE[wildcards.kind].settings_of(STUDY)


def probe_figures():
    """Every probe figure that has results to draw (Figure 7 is drawn with the paper's)."""
    return [p for p in PROBES if p.figure is not None and p.models(STUDY)]


def landscape_settings(wildcards=None):
    return LANDSCAPE.settings_of(STUDY)


TABLES = ["table6", "plain_vs_residual", "runs", "imagenet_style", "families"]


def all_targets():
    return (
        all_metrics()
        + [f"{DATA_DIR}/prepared.json"]
        + [f"{TABLES_DIR}/{t}.{ext}" for t in TABLES for ext in ("csv", "md")]
        + [f"{FIGURES_DIR}/figure6.{ext}" for ext in ("png", "pdf")]
        + [f"{FIGURES_DIR}/figure7.{ext}" for ext in ("png", "pdf")]
        + published_targets()
        + [f for p in PROBES for f in probe_files(p)]
        + [
            f"{FIGURES_DIR}/{p.name}.{ext}"
            for p in probe_figures()
            for ext in ("png", "pdf")
        ]
    )


PUBLISHED = {p.name: p for p in STUDY.published}
PUBLISHED_DIR = "results/published/{name}"


def published_targets():
    """The published checkpoints' table and Figure 7 (rules/published.smk); none without a
    `published:` list."""
    if not PUBLISHED:
        return []
    return (
        [f"results/tables/published.{ext}" for ext in ("csv", "md")]
        + [f"figures/figure7_published.{ext}" for ext in ("png", "pdf")]
        + [
            f"figures/landscape_published.{ext}"
            for ext in ("png", "pdf")
            if published_landscapes()
        ]
    )


def published_landscapes():
    """landscape.parquet of the imported nets that have a twin (published/twins.py)."""
    return [
        f"{PUBLISHED_DIR.format(name=name)}/landscape.parquet"
        for name in twin_names(STUDY.published)
    ]


def published_file(wildcards):
    return PUBLISHED[wildcards.name].file


def published_model_option(wildcards):
    model = PUBLISHED[wildcards.name].model
    return f"--model {model}" if model else ""


def published_data(wildcards):
    """What an import's normalisation depends on: the data's content for a wooyeolbaek net
    (fed the mean of its training images), nothing for akamaster's fixed statistics."""
    if PUBLISHED[wildcards.name].format == "wooyeolbaek":
        return data_fingerprint()
    return None


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
    # The probes that share the rule `probe` (the others have rules of their own).
    kind="|".join(p.name for p in PROBES if not p.own_rule),
    # Every net family's model names (plain20, resnet110, imagenet-resnet18, ...).
    model=MODEL_PATTERN,
    seed=r"\d+",

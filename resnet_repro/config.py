"""Typed, validated study configuration.

The same JSON schema that the Snakefile validates against (workflow/schemas/config.schema.yaml)
is applied here, with its defaults filled in, and then the checks a schema cannot express.
Every error is a ConfigError whose message names the key and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
ARCHS = ("plain", "resnet")
SHORTCUTS = ("A", "B", "C")


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    source: str
    root: str
    download: bool
    val_size: int
    train_subset: int | None
    test_subset: int | None
    seed: int


@dataclass(frozen=True)
class StudyConfig:
    archs: tuple[str, ...]
    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    shortcut: str


@dataclass(frozen=True)
class WarmupConfig:
    lr: float
    until_train_error_pct: float
    min_depth: int | None
    check_every: int


@dataclass(frozen=True)
class AugmentConfig:
    padding: int
    flip: bool


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int
    iterations: int
    lr: float
    lr_milestones: tuple[int, ...]
    lr_decay: float
    momentum: float
    weight_decay: float
    warmup: WarmupConfig
    augment: AugmentConfig
    eval_batch_size: int


@dataclass(frozen=True)
class DeviceConfig:
    device: str
    precision: str
    channels_last: bool
    compile: bool
    cudnn_benchmark: bool
    fused_optimizer: bool
    jobs_per_gpu: int
    lock_dir: str | None
    cpu_threads: int | None


@dataclass(frozen=True)
class AnalysisConfig:
    layer_std_images: int
    figure7_models: tuple[str, ...]
    tolerance_pct: float
    figure6_ymax: float
    # Probes of trained nets (Veit et al. 2016 lesions and paths, branch magnitudes).
    probe_images: int
    lesion_draws: int
    lesion_k_points: int
    path_samples: int
    path_batches: int
    path_batch_size: int
    probe_seed: int
    probe_figure_models: tuple[str, ...]


@dataclass(frozen=True)
class Study:
    data: DataConfig
    study: StudyConfig
    train: TrainConfig
    device: DeviceConfig
    analysis: AnalysisConfig

    def models(self) -> list[str]:
        """Model names of the study, plain before residual, shallow before deep."""
        archs = [a for a in ARCHS if a in self.study.archs]
        return [model_name(a, d) for a in archs for d in sorted(self.study.depths)]

    def runs(self) -> list[tuple[str, int]]:
        return [(m, s) for m in self.models() for s in self.study.seeds]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_name(arch: str, depth: int) -> str:
    return f"{arch}{depth}"


def parse_model_name(name: str, key: str = "model") -> tuple[str, int]:
    """'resnet56' -> ('resnet', 56); raises ConfigError naming the allowed forms."""
    for arch in ARCHS:
        if name.startswith(arch) and name[len(arch):].isdigit():
            depth = int(name[len(arch):])
            check_depth(depth, key=f"{key} {name!r}")
            return arch, depth
    raise ConfigError(
        f"{key}: {name!r} is not a known model name: expected one of {list(ARCHS)} followed by a "
        f"depth 6n+2, such as 'plain20' or 'resnet110'"
    )


def check_depth(depth: int, key: str = "study.depths") -> None:
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ConfigError(
            f"{key}: depth {depth} is not allowed: CIFAR nets have 6n+2 layers with n >= 1 "
            f"(8, 14, 20, 32, 44, 56, 110, 1202, ...)"
        )


def load_schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        raise ConfigError(
            f"config schema not found at {SCHEMA_PATH}; install the project from its checkout "
            f"with pip install -e ."
        )
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _with_defaults(validator_class):
    """A validator that fills in each property's default before checking it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    schema = error.schema
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{key}." if error.absolute_path else ""
        return (f"unknown config key {', '.join(prefix + e for e in extra)}; allowed keys"
                f"{' in ' + key if error.absolute_path else ''}: {', '.join(allowed)}")
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not allowed; allowed values: {schema['enum']}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bounds = []
        for word, sym in (("minimum", ">="), ("exclusiveMinimum", ">"),
                          ("maximum", "<="), ("exclusiveMaximum", "<")):
            if word in schema:
                bounds.append(f"{sym} {schema[word]}")
        return f"{key}: {error.instance!r} is out of range; allowed: {' and '.join(bounds)}"
    if error.validator == "type":
        return f"{key}: {error.instance!r} has the wrong type; expected {schema['type']}"
    if error.validator == "minItems":
        return f"{key}: the list is empty; give at least {schema['minItems']} value(s)"
    if error.validator == "uniqueItems":
        return f"{key}: {error.instance!r} lists a value twice; values must be unique"
    if error.validator == "pattern":
        return f"{key}: {error.instance!r} does not match {schema['pattern']}"
    return f"{key}: {error.message}"


def validate_dict(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a config dict against the schema and return a copy with defaults filled."""
    cfg = copy.deepcopy(dict(raw or {}))
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # The deepest-first ordering above puts the most specific error first.
        raise ConfigError(_describe(errors[0]))
    return cfg


def study_from_dict(raw: Mapping[str, Any] | None) -> Study:
    """Validate and build the typed Study; raises ConfigError on any bad value."""
    cfg = validate_dict(raw)
    d, s, t, dev, a = cfg["data"], cfg["study"], cfg["train"], cfg["device"], cfg["analysis"]
    for depth in s["depths"]:
        check_depth(depth)
    milestones = tuple(t["lr_milestones"])
    if list(milestones) != sorted(milestones):
        raise ConfigError(f"train.lr_milestones: {list(milestones)} must be increasing")
    for m in milestones:
        if m >= t["iterations"]:
            raise ConfigError(
                f"train.lr_milestones: milestone {m} is not before the last iteration "
                f"(train.iterations = {t['iterations']}); allowed: 1 .. {t['iterations'] - 1}"
            )
    for key in ("figure7_models", "probe_figure_models"):
        for name in a[key]:
            parse_model_name(name, key=f"analysis.{key}")
    return Study(
        data=DataConfig(**d),
        study=StudyConfig(archs=tuple(s["archs"]), depths=tuple(s["depths"]),
                          seeds=tuple(s["seeds"]), shortcut=s["shortcut"]),
        train=TrainConfig(
            **{k: v for k, v in t.items() if k not in ("warmup", "augment", "lr_milestones")},
            lr_milestones=milestones,
            warmup=WarmupConfig(**t["warmup"]),
            augment=AugmentConfig(**t["augment"]),
        ),
        device=DeviceConfig(**dev),
        analysis=AnalysisConfig(**{k: v for k, v in a.items()
                                   if k not in ("figure7_models", "probe_figure_models")},
                                figure7_models=tuple(a["figure7_models"]),
                                probe_figure_models=tuple(a["probe_figure_models"])),
    )


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested dicts the way Snakemake merges several --configfile files."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        with open(p) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys, not {type(data).__name__}")
    return data


def load_study(paths: str | Path | Iterable[str | Path]) -> Study:
    """Load one or several config files (later files override earlier ones) and validate."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    merged: dict[str, Any] = {}
    for p in paths:
        merged = deep_merge(merged, read_yaml(p))
    return study_from_dict(merged)


def run_identity(study: Study, model: str, seed: int) -> dict[str, Any]:
    """Everything that determines a run's numbers (not the device knobs). A checkpoint is
    resumed only when this matches, and Snakemake reruns a run when it changes."""
    arch, depth = parse_model_name(model)
    return {
        "model": model, "arch": arch, "depth": depth, "shortcut": study.study.shortcut,
        "seed": seed, "data": asdict(study.data), "train": asdict(study.train),
    }


def identity_hash(identity: Mapping[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]

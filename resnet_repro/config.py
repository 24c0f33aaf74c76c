"""Typed, validated study configuration.

The same JSON schema that the Snakefile validates against (workflow/schemas/config.schema.yaml)
is applied here, with its defaults filled in, and then the checks a schema cannot express.
Every error is a ConfigError whose message names the key and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
ARCHS = ("plain", "resnet")  # the paper's 6n+2 CIFAR nets (section 4.2)
SHORTCUTS = ("A", "B", "C")
# The second study family (issue 13): the ImageNet-style ResNet-18/34/50 of the paper's
# Table 1, adapted to 32x32 inputs. Its model names ("imagenet-resnet18") share no prefix
# with "resnet20", so neither a reader nor the name parser can take one for the other.
IMAGENET_ARCH = "imagenet-resnet"
IMAGENET_DEPTHS = (18, 34, 50)
ALL_ARCHS = ARCHS + (IMAGENET_ARCH,)
SCHEDULES = ("step", "cosine")
NORMALIZATIONS = ("per_pixel_mean", "per_channel_mean_std")


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
    normalization: str = "per_pixel_mean"  # the paper's (section 4.2)


@dataclass(frozen=True)
class StudyConfig:
    name: str | None
    archs: tuple[str, ...]
    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    shortcut: str
    width: int | None


@dataclass(frozen=True)
class WarmupConfig:
    lr: float
    until_train_error_pct: float
    archs: tuple[str, ...]
    min_depth: int | None
    max_iterations: int
    check_every: int


@dataclass(frozen=True)
class AugmentConfig:
    padding: int
    flip: bool


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int
    iterations: int | None
    epochs: int | None
    schedule: str
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
    compare_models: tuple[str, ...]
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
class PublishedCheckpoint:
    """A trained net of another reproduction to import (resnet_repro.published)."""

    name: str
    format: str
    file: str
    model: str | None = None


@dataclass(frozen=True)
class Study:
    data: DataConfig
    study: StudyConfig
    train: TrainConfig
    device: DeviceConfig
    analysis: AnalysisConfig
    published: tuple[PublishedCheckpoint, ...] = ()

    def models(self) -> list[str]:
        """Model names of the study, plain before residual (then the ImageNet-style family),
        shallow before deep."""
        archs = [a for a in ALL_ARCHS if a in self.study.archs]
        return [model_name(a, d) for a in archs for d in sorted(self.study.depths)]

    def model_width(self, model: str) -> int | None:
        """study.width for the ImageNet-style nets (None: their real width); None for the
        paper's nets, whose widths are fixed."""
        return self.study.width if parse_model_name(model)[0] == IMAGENET_ARCH else None

    def runs(self) -> list[tuple[str, int]]:
        return [(m, s) for m in self.models() for s in self.study.seeds]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_name(arch: str, depth: int) -> str:
    return f"{arch}{depth}"


def parse_model_name(name: str, key: str = "model") -> tuple[str, int]:
    """'resnet56' -> ('resnet', 56), 'imagenet-resnet18' -> ('imagenet-resnet', 18); raises
    ConfigError naming the allowed forms."""
    for arch in ALL_ARCHS:
        if name.startswith(arch) and name[len(arch) :].isdigit():
            depth = int(name[len(arch) :])
            check_depth(depth, key=f"{key} {name!r}", arch=arch)
            return arch, depth
    raise ConfigError(
        f"{key}: {name!r} is not a known model name: expected one of {list(ARCHS)} followed by a "
        f"depth 6n+2, such as 'plain20' or 'resnet110', or {IMAGENET_ARCH!r} followed by one of "
        f"{list(IMAGENET_DEPTHS)} (the ImageNet-style nets, such as 'imagenet-resnet18')"
    )


def check_depth(depth: int, key: str = "study.depths", arch: str = "resnet") -> None:
    if arch == IMAGENET_ARCH:
        if depth not in IMAGENET_DEPTHS:
            raise ConfigError(
                f"{key}: depth {depth} is not allowed for {IMAGENET_ARCH} nets; allowed values: "
                f"{list(IMAGENET_DEPTHS)}"
            )
        return
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


def _strict_integer(checker, instance) -> bool:
    # JSON Schema counts 8.0 as an integer; a depth of 8.0 would become the model name
    # "resnet8.0" downstream, so only real Python ints (never bools) pass.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _strict_types(validator_class):
    checker = validator_class.TYPE_CHECKER.redefine("integer", _strict_integer)
    return jsonschema.validators.extend(validator_class, type_checker=checker)


_DefaultFillingValidator = _with_defaults(_strict_types(jsonschema.Draft202012Validator))


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
        return (
            f"unknown config key {', '.join(prefix + e for e in extra)}; allowed keys"
            f"{' in ' + key if error.absolute_path else ''}: {', '.join(allowed)}"
        )
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not allowed; allowed values: {schema['enum']}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bounds = []
        for word, sym in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        ):
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
    for arch in s["archs"]:
        for depth in s["depths"]:
            check_depth(depth, arch=arch)
    if s["width"] is not None and set(s["archs"]) & set(ARCHS):
        raise ConfigError(
            f"study.width: {s['width']} is not allowed with study.archs {s['archs']}: the "
            f"paper's nets keep their 16/32/64 filters; allowed: null, or study.archs "
            f"[{IMAGENET_ARCH}] only"
        )
    if IMAGENET_ARCH in s["archs"] and s["shortcut"] != "B":
        raise ConfigError(
            f"study.shortcut: {s['shortcut']!r} is not allowed with {IMAGENET_ARCH} in "
            f"study.archs: these nets project where the shape changes; allowed values: ['B']"
        )
    milestones = _check_schedule(t)
    for key in ("figure7_models", "probe_figure_models"):
        for name in a[key]:
            parse_model_name(name, key=f"analysis.{key}")
    for name in a["compare_models"]:
        parse_model_name(name, key="analysis.compare_models")
    published = tuple(PublishedCheckpoint(**p) for p in cfg["published"])
    _check_published(published, [model_name(a, d) for a in s["archs"] for d in s["depths"]])
    return Study(
        data=DataConfig(**d),
        study=StudyConfig(
            name=s["name"],
            archs=tuple(s["archs"]),
            depths=tuple(s["depths"]),
            seeds=tuple(s["seeds"]),
            shortcut=s["shortcut"],
            width=s["width"],
        ),
        train=TrainConfig(
            **{k: v for k, v in t.items() if k not in ("warmup", "augment", "lr_milestones")},
            lr_milestones=milestones,
            warmup=WarmupConfig(**{**t["warmup"], "archs": tuple(t["warmup"]["archs"])}),
            augment=AugmentConfig(**t["augment"]),
        ),
        device=DeviceConfig(**dev),
        analysis=AnalysisConfig(
            **{
                k: v
                for k, v in a.items()
                if k not in ("figure7_models", "probe_figure_models", "compare_models")
            },
            figure7_models=tuple(a["figure7_models"]),
            compare_models=tuple(a["compare_models"]),
            probe_figure_models=tuple(a["probe_figure_models"]),
        ),
        published=published,
    )


def _check_schedule(t: Mapping[str, Any]) -> tuple[int, ...]:
    """The schedule checks a schema cannot express; returns the milestones. Exactly one of
    train.iterations / train.epochs sets the length, milestones count in that unit and come
    before its end, and a cosine schedule has no milestones."""
    if (t["iterations"] is None) == (t["epochs"] is None):
        raise ConfigError(
            f"train.iterations / train.epochs: give exactly one of them and set the other to "
            f"null (got iterations {t['iterations']}, epochs {t['epochs']}); the paper's study "
            f"counts iterations, the ImageNet-style recipe epochs"
        )
    unit, length = (
        ("iteration", t["iterations"]) if t["iterations"] is not None else ("epoch", t["epochs"])
    )
    milestones = tuple(t["lr_milestones"])
    if t["schedule"] == "cosine" and milestones:
        raise ConfigError(
            f"train.lr_milestones: {list(milestones)} is not allowed with train.schedule "
            f"'cosine'; allowed: [] (cosine annealing has no milestones)"
        )
    if list(milestones) != sorted(milestones):
        raise ConfigError(f"train.lr_milestones: {list(milestones)} must be increasing")
    for m in milestones:
        if m >= length:
            raise ConfigError(
                f"train.lr_milestones: milestone {m} is not before the last {unit} "
                f"(train.{unit}s = {length}); allowed: 1 .. {length - 1}"
            )
    return milestones


def _check_published(published: tuple[PublishedCheckpoint, ...], models: list[str]) -> None:
    """Names are file names of the imported nets' results: unique, and never a study model's
    name, so an imported net is never mistaken for one of our runs."""
    seen: set[str] = set()
    for i, p in enumerate(published):
        if p.name in seen:
            raise ConfigError(
                f"published[{i}].name: {p.name!r} is used twice; names must be unique"
            )
        if p.name in models:
            raise ConfigError(
                f"published[{i}].name: {p.name!r} is a model of the study; give "
                f"imported nets other names (e.g. akamaster-{p.name})"
            )
        if p.model is not None:
            parse_model_name(p.model, key=f"published[{i}].model")
        seen.add(p.name)


def missing_published_files(study: Study, root: str | Path = ".") -> list[str]:
    """One line per `published` entry whose file does not exist (relative paths from `root`,
    the workflow's working directory), for the check before any job starts."""
    return [
        f"published[{i}].file: {p.file} does not exist (entry {p.name!r})"
        for i, p in enumerate(study.published)
        if not (Path(root) / p.file).is_file()
    ]


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
        raise ConfigError(yaml_error_message(p, e)) from None
    except OSError as e:
        raise ConfigError(f"config file {p} cannot be read ({e.strerror or e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys, not {type(data).__name__}")
    return data


def yaml_error_message(path: str | Path, error: yaml.YAMLError) -> str:
    """One line naming the file, the line and column (1-based) and what is wrong."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"config file {path}{where}: not valid YAML: {what}"


def load_study(paths: str | Path | Iterable[str | Path]) -> Study:
    """Load one or several config files (later files override earlier ones) and validate."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    merged: dict[str, Any] = {}
    for p in paths:
        merged = deep_merge(merged, read_yaml(p))
    return study_from_dict(merged)


# Config keys that do not change a run's numbers: where the data lives and whether it may be
# fetched (the data's content is in the fingerprint instead), the keys that select that content
# (also covered by the fingerprint, so that an equivalent selection is not a new run), and the
# evaluation batch size (evaluation is in fp32 and per image).
_DATA_KEYS_NOT_IN_IDENTITY = (
    "root",
    "download",
    "source",
    "val_size",
    "train_subset",
    "test_subset",
    "seed",
)
_TRAIN_KEYS_NOT_IN_IDENTITY = ("eval_batch_size",)


def run_identity(study: Study, model: str, seed: int, data_fingerprint: str) -> dict[str, Any]:
    """Everything that determines a run's numbers: the model, the seed, the recipe and the
    content of the data (`data.fingerprint` of the images and labels after split and subsets),
    not where the data lives nor the device knobs. A checkpoint is resumed only when this
    matches, and Snakemake retrains a run exactly when it changes."""
    arch, depth = parse_model_name(model)
    data = {k: v for k, v in asdict(study.data).items() if k not in _DATA_KEYS_NOT_IN_IDENTITY}
    train = {k: v for k, v in asdict(study.train).items() if k not in _TRAIN_KEYS_NOT_IN_IDENTITY}
    # The ImageNet-style nets always project where the shape changes (option B); their width
    # is study.width (null: the real 64). The paper's nets take study.shortcut.
    imagenet = arch == IMAGENET_ARCH
    return {
        "model": model,
        "arch": arch,
        "depth": depth,
        "shortcut": "B" if imagenet else study.study.shortcut,
        **({"width": study.study.width} if imagenet else {}),
        "seed": seed,
        "data": {**data, "fingerprint": data_fingerprint},
        "train": train,
    }


def identity_hash(identity: Mapping[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]

"""The typed study: frozen dataclasses for every config section, model names, and loading.

The same JSON schema that the Snakefile validates against (workflow/schemas/config.schema.yaml)
is applied first (`schema.validate_dict`, defaults filled in), then the checks a schema cannot
express. Every error is a ConfigError whose message names the key and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from ..nets.families import (
    ALL_ARCHS,
    BY_ARCH,
    check_depth,
    family_of,
    model_name,
    parse_model_name,
)
from .errors import ConfigError
from .schema import validate_dict

# The net families (plain, resnet, the ImageNet-style nets), their model names and depths are
# the families' own (nets/families.py); the config asks them.
SCHEDULES = ("step", "cosine")
NORMALIZATIONS = ("per_pixel_mean", "per_channel_mean_std")


@dataclass(frozen=True)
class DataConfig:
    source: str
    root: str
    download: bool
    val_size: int
    train_subset: int | None
    test_subset: int | None
    seed: int
    normalization: str  # per_pixel_mean: the paper's (section 4.2)


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
    # Training loss/error logged per window of this many iterations (engine/windows.py).
    window_iterations: int


@dataclass(frozen=True)
class DeviceConfig:
    device: str
    precision: str
    channels_last: bool
    compile: str  # eager | model | step (engine/step.py)
    compile_mode: str  # auto | default | reduce-overhead | max-autotune-no-cudagraphs
    deterministic: bool
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
    # The loss landscape of every trained net (Li et al. 2018, arXiv:1712.09913).
    landscape_range: tuple[float, float]
    landscape_points: int
    landscape_images: int
    landscape_seed: int
    figure7_statistic: str  # pooled or per_channel (results.LAYER_STD_STATISTICS)
    path_split: str  # the images of the path experiment (Veit et al.: training)


@dataclass(frozen=True)
class TrackingConfig:
    """Watching runs as they train (`resnet-repro status` needs no setting). None of it
    changes a run's numbers, so none of it is part of the run identity."""

    tensorboard: bool  # write TensorBoard scalars while training
    tensorboard_dir: str  # one folder per run, {model}_seed{seed}


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A trained net of another reproduction to import (resnet_repro.published)."""

    name: str
    format: str
    file: str
    model: str | None


@dataclass(frozen=True)
class Study:
    data: DataConfig
    study: StudyConfig
    train: TrainConfig
    device: DeviceConfig
    analysis: AnalysisConfig
    published: tuple[PublishedCheckpoint, ...]
    tracking: TrackingConfig

    def models(self) -> list[str]:
        """Model names of the study, plain before residual (then the ImageNet-style family),
        shallow before deep."""
        archs = [a for a in ALL_ARCHS if a in self.study.archs]
        return [model_name(a, d) for a in archs for d in sorted(self.study.depths)]

    def model_width(self, model: str) -> int | None:
        """study.width for a family that takes a width (the ImageNet-style nets; None: their
        real width); None for the paper's nets, whose widths are fixed."""
        return self.study.width if family_of(model).takes_width else None

    def model_shortcut(self, model: str) -> str:
        """The shortcut option `model` trains with: its family's own (the ImageNet-style nets
        always project, option B), else study.shortcut."""
        return family_of(model).shortcut(self.study.shortcut)

    def runs(self) -> list[tuple[str, int]]:
        return [(m, s) for m in self.models() for s in self.study.seeds]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def study_from_dict(raw: Mapping[str, Any] | None) -> Study:
    """Validate and build the typed Study; raises ConfigError on any bad value."""
    cfg = validate_dict(raw)
    s, t, a = cfg["study"], cfg["train"], cfg["analysis"]
    for arch in s["archs"]:
        for depth in s["depths"]:
            check_depth(depth, arch=arch)
    families = [BY_ARCH[arch] for arch in s["archs"]]
    widthless = [f.arch for f in families if not f.takes_width]
    if s["width"] is not None and widthless:
        takes = [f.arch for f in BY_ARCH.values() if f.takes_width]
        raise ConfigError(
            f"study.width: {s['width']} is not allowed with study.archs {s['archs']}: the "
            f"paper's nets keep their 16/32/64 filters; allowed: null, or study.archs "
            f"{takes} only"
        )
    for f in families:
        if f.fixed_shortcut and s["shortcut"] != f.fixed_shortcut:
            raise ConfigError(
                f"study.shortcut: {s['shortcut']!r} is not allowed with {f.arch} in "
                f"study.archs: these nets project where the shape changes; allowed values: "
                f"[{f.fixed_shortcut!r}]"
            )
    milestones = _check_schedule(t)
    for key in ("figure7_models", "probe_figure_models"):
        for name in a[key]:
            parse_model_name(name, key=f"analysis.{key}")
    for name in a["compare_models"]:
        parse_model_name(name, key="analysis.compare_models")
    lo, hi = a["landscape_range"]
    if not lo < hi:
        raise ConfigError(
            f"analysis.landscape_range: [{lo}, {hi}] is not a range: give [min, max] with "
            f"min < max, such as [-1.0, 1.0] (Li et al. 2018)"
        )
    study = _typed(Study, {**cfg, "train": {**t, "lr_milestones": milestones}})
    _check_published(study.published, study.models())
    return study


def _typed(cls, values: Mapping[str, Any]):
    """A section's frozen dataclass from its validated values. Every key is there: the
    schema fills in the defaults, the one place they live, so the dataclasses have none."""
    hints = get_type_hints(cls)
    return cls(**{f.name: _as(hints[f.name], values[f.name]) for f in fields(cls)})


def _as(kind: Any, value: Any) -> Any:
    """A YAML value as the field's type: nested sections and entries as their dataclasses,
    lists as tuples (the numbers of a fixed-length tuple as its types, so a range given as
    [-1, 1] reads as floats); scalars as they were written, since the run identity records
    them so."""
    if is_dataclass(kind):
        return _typed(kind, value)
    if get_origin(kind) is tuple:
        args = get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_as(args[0], v) for v in value)
        return tuple(a(v) if a in (int, float) else _as(a, v) for a, v in zip(args, value))
    return value


def batch_size_error(batch_size: int, n_train: int) -> str | None:
    """Why a recipe cannot train on `n_train` images at `batch_size`, or None when it can:
    a batch larger than the training set would make every step one batch of all the images,
    while run.json and the tables still said `batch_size`."""
    if batch_size <= n_train:
        return None
    return (
        f"train.batch_size = {batch_size} is larger than the {n_train} training images of "
        f"this data (every step would be one batch of all {n_train}); lower train.batch_size "
        f"to at most {n_train}, or train on more images (data.train_subset)"
    )


def check_trainable(study: Study) -> None:
    """ConfigError when the config itself says the recipe cannot train on its data (a batch
    larger than data.train_subset). For the workflow, before any job starts; the training
    command checks the same against the images it actually reads."""
    if study.data.train_subset is not None:
        error = batch_size_error(study.train.batch_size, study.data.train_subset)
        if error:
            raise ConfigError(error)


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


def field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]

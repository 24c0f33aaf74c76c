"""The study's configuration: typed, frozen dataclasses (`study`), the JSON schema applied
with its defaults (`schema`), and run identity, what makes two runs the same (`identity`).

The lowest layer with `results`: it imports no other part of the package. The names below are
re-exported so that `from resnet_repro.config import Study` reads as one module.
"""

from .errors import ConfigError
from .identity import identity_hash, run_identity
from .schema import SCHEMA_PATH, load_schema, validate_dict
from .study import (
    ALL_ARCHS,
    ARCHS,
    IMAGENET_ARCH,
    IMAGENET_DEPTHS,
    NORMALIZATIONS,
    SCHEDULES,
    SHORTCUTS,
    AnalysisConfig,
    AugmentConfig,
    DataConfig,
    DeviceConfig,
    PublishedCheckpoint,
    Study,
    StudyConfig,
    TrainConfig,
    WarmupConfig,
    batch_size_error,
    check_depth,
    check_trainable,
    deep_merge,
    field_names,
    load_study,
    missing_published_files,
    model_name,
    parse_model_name,
    read_yaml,
    study_from_dict,
    yaml_error_message,
)

__all__ = [
    "ALL_ARCHS",
    "ARCHS",
    "IMAGENET_ARCH",
    "IMAGENET_DEPTHS",
    "NORMALIZATIONS",
    "SCHEDULES",
    "SCHEMA_PATH",
    "SHORTCUTS",
    "AnalysisConfig",
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "DeviceConfig",
    "PublishedCheckpoint",
    "Study",
    "StudyConfig",
    "TrainConfig",
    "WarmupConfig",
    "batch_size_error",
    "check_depth",
    "check_trainable",
    "deep_merge",
    "field_names",
    "identity_hash",
    "load_schema",
    "load_study",
    "missing_published_files",
    "model_name",
    "parse_model_name",
    "read_yaml",
    "run_identity",
    "study_from_dict",
    "validate_dict",
    "yaml_error_message",
]

"""The study's configuration: typed, frozen dataclasses (`study`), the JSON schema applied
with its defaults (`schema`), and run identity, what makes two runs the same (`identity`).

It imports only the net families (`nets.families`, torch-free: model names and depths are
theirs), `errors` and `results`. The names below are re-exported so that
`from resnet_repro.config import Study` reads as one module.
"""

from ..nets.families import (
    ALL_ARCHS,
    PAPER_ARCHS,
    SHORTCUTS,
    check_depth,
    family_of,
    model_name,
    parse_model_name,
)
from .errors import ConfigError
from .identity import data_selection, identity_hash, run_identity
from .schema import SCHEMA_PATH, load_schema, validate_dict
from .study import (
    NORMALIZATIONS,
    SCHEDULES,
    AnalysisConfig,
    AugmentConfig,
    DataConfig,
    DeviceConfig,
    PublishedCheckpoint,
    Study,
    StudyConfig,
    TrackingConfig,
    TrainConfig,
    WarmupConfig,
    batch_size_error,
    check_trainable,
    deep_merge,
    field_names,
    load_study,
    missing_published_files,
    read_yaml,
    study_from_dict,
    yaml_error_message,
)

__all__ = [
    "ALL_ARCHS",
    "NORMALIZATIONS",
    "PAPER_ARCHS",
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
    "TrackingConfig",
    "TrainConfig",
    "WarmupConfig",
    "batch_size_error",
    "check_depth",
    "check_trainable",
    "data_selection",
    "deep_merge",
    "family_of",
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

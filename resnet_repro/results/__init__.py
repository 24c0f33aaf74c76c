"""Result files: their Parquet schemas (`schemas`), atomic writes that fail in one line
(`atomic`), and the writers and readers of each file (`parquet`). The contract between the
workflow's rules: every rule reads and writes its results through this package.

Every writer goes through `atomic.atomic_path`: the data lands in a temporary file beside the
target and is renamed over it, so a killed job never leaves a half-written result.
"""

from .atomic import ResultError, atomic_path, save_torch, write_failure, write_json, write_text
from .parquet import (
    epoch_rows,
    read_all,
    read_all_landscape,
    read_all_layer_std,
    read_all_metrics,
    read_layer_std,
    read_metrics,
    read_metrics_and_windows,
    read_parquet,
    window_rows,
    write_landscape,
    write_layer_std,
    write_metrics,
    write_parquet,
)
from .schemas import (
    BRANCH_SCHEMA,
    LANDSCAPE_SCHEMA,
    LAYER_STD_SCHEMA,
    LAYER_STD_STATISTICS,
    LESION_K_SCHEMA,
    LESION_SCHEMA,
    METRICS_SCHEMA,
    PATHS_SCHEMA,
    ROW_KINDS,
    STATUSES,
    rebuild_hint,
)

__all__ = [
    "BRANCH_SCHEMA",
    "LANDSCAPE_SCHEMA",
    "LAYER_STD_SCHEMA",
    "LAYER_STD_STATISTICS",
    "LESION_K_SCHEMA",
    "LESION_SCHEMA",
    "METRICS_SCHEMA",
    "PATHS_SCHEMA",
    "ROW_KINDS",
    "STATUSES",
    "ResultError",
    "atomic_path",
    "epoch_rows",
    "read_all",
    "read_all_landscape",
    "read_all_layer_std",
    "read_all_metrics",
    "read_layer_std",
    "read_metrics",
    "read_metrics_and_windows",
    "read_parquet",
    "rebuild_hint",
    "save_torch",
    "window_rows",
    "write_failure",
    "write_json",
    "write_landscape",
    "write_layer_std",
    "write_metrics",
    "write_parquet",
    "write_text",
]

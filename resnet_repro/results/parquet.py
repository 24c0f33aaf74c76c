"""Writers and readers of the Parquet result files, one pair per schema (`schemas`), each
write atomic (`atomic.atomic_path`) and each read checked against its schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import ResultError, atomic_path
from .schemas import (
    LANDSCAPE_SCHEMA,
    LAYER_STD_SCHEMA,
    METRICS_SCHEMA,
    ROW_KINDS,
    optional_columns,
    rebuild_hint,
)


def _table(rows: pd.DataFrame | Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise ResultError(f"result rows lack the columns {missing}")
    return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)


def write_parquet(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]], path: str | Path, schema: pa.Schema
) -> None:
    table = _table(rows, schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: str | Path, schema: pa.Schema, rebuild: str | None = None) -> pd.DataFrame:
    """A result file as a DataFrame with every column of `schema`. Columns added to the schema
    after older files were written (`OPTIONAL_COLUMNS`) get their older meaning; a file that
    lacks any other column is refused with one line that names it and how to rebuild it
    (`rebuild`, or the schema's own hint in `schemas.REBUILD`)."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"result file {path} does not exist")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise ResultError(f"result file {path} is not a readable Parquet file ({e})") from None
    optional = optional_columns(schema)
    missing = [c for c in schema.names if c not in table.column_names and c not in optional]
    if missing:
        how = rebuild or rebuild_hint(schema)
        raise ResultError(
            f"result file {path} lacks the columns {missing}"
            + (f" (an older layout); rebuild it: {how}" if how else "")
        )
    df = table.to_pandas()
    for column, value in optional.items():
        if column not in df.columns:
            df[column] = value
        elif value is not None:
            df[column] = df[column].astype("object").where(df[column].notna(), value)
    return df


def _kinds(kind: pd.Series) -> pd.Series:
    """Row kinds, "epoch" where null (rows written before windows existed)."""
    kind = kind.astype("object")
    return kind.where(kind.notna(), "epoch")


def _fill_metrics(rows) -> pd.DataFrame:
    """Metrics rows with `kind` ("epoch" where absent: rows of checkpoints written before
    windows existed) and `window_iterations` (null where absent)."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    df = df.copy()
    if "kind" not in df.columns:
        df["kind"] = "epoch"
    df["kind"] = _kinds(df["kind"])
    bad = sorted(set(df["kind"]) - set(ROW_KINDS))
    if bad:
        raise ResultError(f"metrics rows of kind {bad}; allowed: {list(ROW_KINDS)}")
    if "window_iterations" not in df.columns:
        df["window_iterations"] = None
    df["window_iterations"] = df["window_iterations"].astype("Int64")
    return df


def write_metrics(rows, path: str | Path) -> None:
    """One run's rows, epoch rows and training-window rows together (`kind`)."""
    write_parquet(_fill_metrics(rows), path, METRICS_SCHEMA)


def epoch_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The epoch rows of metrics (all rows of a frame without a `kind` column)."""
    if "kind" not in metrics.columns:
        return metrics
    return metrics[_kinds(metrics["kind"]) == "epoch"].reset_index(drop=True)


def window_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The training-window rows of metrics (none in a frame without a `kind` column)."""
    if "kind" not in metrics.columns:
        return metrics.iloc[0:0]
    return metrics[metrics["kind"] == "window"].reset_index(drop=True)


def read_metrics(path: str | Path) -> pd.DataFrame:
    """The epoch rows of a metrics file (one per epoch, as every table reads them)."""
    return epoch_rows(read_parquet(path, METRICS_SCHEMA))


def read_metrics_and_windows(path: str | Path) -> pd.DataFrame:
    """Every row of a metrics file, epoch and window rows (`kind`)."""
    return read_parquet(path, METRICS_SCHEMA)


def read_all(
    paths: Sequence[str | Path], schema: pa.Schema, rebuild: str | None = None
) -> pd.DataFrame:
    """Several result files of one kind as one frame (empty, with the columns, for none)."""
    frames = [read_parquet(p, schema, rebuild) for p in paths]
    if not frames:
        return schema.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)


def read_all_metrics(paths: Sequence[str | Path], windows: bool = False) -> pd.DataFrame:
    """The epoch rows of several metrics files; with `windows`, their window rows too."""
    df = read_all(paths, METRICS_SCHEMA)
    return df if windows else epoch_rows(df)


def write_layer_std(rows, path: str | Path) -> None:
    write_parquet(rows, path, LAYER_STD_SCHEMA)


def read_layer_std(path: str | Path) -> pd.DataFrame:
    return read_parquet(path, LAYER_STD_SCHEMA)


def read_all_layer_std(paths: Sequence[str | Path]) -> pd.DataFrame:
    return read_all(paths, LAYER_STD_SCHEMA)


def write_landscape(rows, path: str | Path) -> None:
    """Write one net's loss landscape (LANDSCAPE_SCHEMA), atomically."""
    write_parquet(rows, path, LANDSCAPE_SCHEMA)


def read_all_landscape(paths: Sequence[str | Path]) -> pd.DataFrame:
    return read_all(paths, LANDSCAPE_SCHEMA)

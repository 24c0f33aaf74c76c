"""Result files: their Parquet schemas and atomic writers and readers.

Every writer goes through `atomic_path`: the data lands in a temporary file beside the target
and is renamed over it, so a killed job never leaves a half-written result. A write that
fails (a full disk, a quota, a folder that cannot be written) ends in a ResultError of one
line naming the file, the free space of its folder and what to do; the temporary file is
removed and the file it would have replaced is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METRICS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("arch", pa.string()),
        ("depth", pa.int32()),
        ("shortcut", pa.string()),
        ("seed", pa.int32()),
        ("epoch", pa.int32()),  # 1-based; the last row may be a partial epoch
        ("iteration", pa.int64()),  # iterations done at the end of this row's epoch
        ("lr", pa.float64()),  # learning rate of the last iteration of the epoch
        ("train_loss", pa.float64()),  # mean over the epoch's (augmented) training batches
        ("train_error_pct", pa.float64()),
        ("val_loss", pa.float64()),  # null without a validation split
        ("val_error_pct", pa.float64()),
        ("test_loss", pa.float64()),  # full test set, eval mode, original images
        ("test_error_pct", pa.float64()),
        ("epoch_seconds", pa.float64()),  # training + evaluation wall time of the epoch
        ("images_per_second", pa.float64()),  # training images per second of training time
        ("status", pa.string()),  # "ok" or "diverged"
        # "epoch": the row of an epoch's end (evaluation included); "window": the training
        # loss and error over one fixed window of `train.window_iterations` iterations (test,
        # val, seconds and throughput null). Files written before windows existed hold epoch
        # rows only and lack both columns: they read as kind "epoch".
        ("kind", pa.string()),
        # iterations the row's train_loss / train_error_pct average over (the window's length;
        # on epoch rows the epoch's steps); null in older files
        ("window_iterations", pa.int64()),
    ]
)

ROW_KINDS = ("epoch", "window")

LAYER_STD_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("arch", pa.string()),
        ("depth", pa.int32()),
        ("seed", pa.int32()),
        ("layer", pa.int32()),  # 1-based index of the 3x3 conv layer in network order
        ("name", pa.string()),  # module name of the BN whose output is measured
        # Two statistics of the BN output (Figure 7; the paper does not say which it drew):
        ("std", pa.float64()),  # pooled: one std over all images, positions and channels
        # the std of each channel over images and positions, averaged over the channels (the
        # spread of the per-channel means, mostly BN's beta, left out); null in older files
        ("channel_std_mean", pa.float64()),
        ("images", pa.int32()),
    ]
)

# Figure 7's statistic (analysis.figure7_statistic) -> its LAYER_STD_SCHEMA column.
LAYER_STD_STATISTICS = {"pooled": "std", "per_channel": "channel_std_mean"}

# Probes of trained nets (Veit et al. 2016, arXiv:1605.06431, and the branch magnitudes): one
# file per (model, seed) under results/analysis/<kind>/. Every file starts with the run keys.
_RUN_COLUMNS = [
    ("model", pa.string()),
    ("arch", pa.string()),
    ("depth", pa.int32()),
    ("seed", pa.int32()),
]

LESION_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("block", pa.int32()),  # 1-based index of the block in network order
        ("name", pa.string()),  # module name, e.g. "stage2.0"
        ("stage", pa.int32()),  # 1..3
        ("changes_shape", pa.bool_()),  # stride 2 or width change (the stage's first block)
        ("removable", pa.bool_()),  # residual, or plain with equal input/output shapes
        ("intact_error_pct", pa.float64()),  # test error of the whole net
        ("test_error_pct", pa.float64()),  # with this block deleted; null when not removable
        ("images", pa.int32()),
    ]
)

LESION_K_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("k", pa.int32()),  # number of blocks deleted at once
        ("draw", pa.int32()),  # 0-based index of the seeded random draw for this k
        ("removed", pa.string()),  # the deleted blocks' 1-based indices, comma-separated
        ("removable_blocks", pa.int32()),  # how many blocks could be deleted
        ("intact_error_pct", pa.float64()),
        ("test_error_pct", pa.float64()),
        ("images", pa.int32()),
    ]
)

PATHS_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("blocks", pa.int32()),  # n residual blocks: 2^n paths
        ("length", pa.int32()),  # k: blocks whose residual branch the path goes through
        ("paths", pa.float64()),  # C(n, k), the number of paths of length k
        ("path_fraction", pa.float64()),  # C(n, k) / 2^n (Veit et al. Fig. 6a)
        # per-image norm of d loss / d image at the network's input (the normalised image),
        # through one random path of this length per (image, draw) (Fig. 6b): mean, std and
        # standard error of the mean over the `samples` (image, path) pairs
        ("grad_norm_mean", pa.float64()),
        ("grad_norm_std", pa.float64()),
        ("grad_norm_sem", pa.float64()),
        ("weighted_grad", pa.float64()),  # path_fraction * grad_norm_mean (Fig. 6c, normalised)
        ("samples", pa.int32()),  # (image, path) pairs averaged: images x draws
        ("images", pa.int32()),  # distinct images
        ("image_split", pa.string()),  # "train" (original training images) or "test"
    ]
)

# Residual nets only (a plain block's output channels need not match its input's, so
# ||y - x|| means nothing there). Per image, x the block's input, y its output (after the final
# ReLU), F(x) its residual branch (before the addition), norms over all channels and positions.
BRANCH_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("block", pa.int32()),
        ("name", pa.string()),
        ("stage", pa.int32()),
        ("blocks", pa.int32()),  # blocks of the net: relative position (block - 0.5) / blocks
        ("changes_shape", pa.bool_()),  # downsampling block (stride 2, width doubled)
        # False where y and x differ in shape (downsampling blocks: option A zero-pads half of
        # the output channels), so neither ratio is a distance from the identity: values null
        ("measurable", pa.bool_()),
        ("change_mean", pa.float64()),  # ||y - x|| / ||x||: what the block changes
        ("change_std", pa.float64()),  # population std over the images
        ("branch_mean", pa.float64()),  # ||F(x)|| / ||x||: what the residual branch adds
        ("branch_std", pa.float64()),
        ("images", pa.int32()),
    ]
)

# The loss landscape of a trained net (Li et al. 2018, arXiv:1712.09913; probes/landscape.py):
# one row per evaluated point, under results/analysis/landscape/ (ours) or
# results/published/{name}/landscape.parquet (imported checkpoints).
LANDSCAPE_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("source", pa.string()),  # "run" (ours) or the imported checkpoint's name
        # "surface": theta + alpha d1 + beta d2; "direction": theta + alpha d1 (beta 0);
        # "interpolation": (1 - alpha) theta0 + alpha theta1, theta0 the initial weights
        ("kind", pa.string()),
        ("alpha", pa.float64()),
        ("beta", pa.float64()),
        ("loss", pa.float64()),  # mean cross-entropy over the training images, eval mode, fp32
        ("error_pct", pa.float64()),  # top-1 training error there
        ("status", pa.string()),  # "ok", or "diverged" (one row, NaN loss: the run diverged)
        ("note", pa.string()),  # why a row says "diverged"; null otherwise
        # interpolation rows: "run" (the run's own initialisation, rebuilt from its seed) or
        # "ours" (an imported net: a fresh initialisation of the same net by our code); null else
        ("init_source", pa.string()),
        ("direction_seed", pa.int32()),  # seed of d1 and d2
        ("range_min", pa.float64()),  # the grid: points per axis over [range_min, range_max]
        ("range_max", pa.float64()),
        ("points", pa.int32()),
        ("images", pa.int32()),  # first N training images, unaugmented
        ("batch_size", pa.int32()),  # images per forward pass
        ("point_seconds", pa.float64()),  # wall time of this point's evaluation
        ("wall_seconds", pa.float64()),  # wall time of the whole probe (every row the same)
    ]
)

PROBE_SCHEMAS = {
    "lesions": LESION_SCHEMA,
    "lesions_k": LESION_K_SCHEMA,
    "paths": PATHS_SCHEMA,
    "branches": BRANCH_SCHEMA,
}

STATUSES = ("ok", "diverged")

# Columns added to a schema after files of it were written, and the value an older file gets.
_OPTIONAL_COLUMNS = {
    "metrics": {"kind": "epoch", "window_iterations": None},
    "layer_std": {"channel_std_mean": None},
}

# How to rebuild a result file of an older layout, per schema (the readers' one-line refusal).
_REBUILD = {
    "metrics": "retrain that run: delete its metrics.parquet and rerun snakemake",
    "layer_std": "delete it and rerun snakemake (or resnet-repro layer-std --model-file "
    "MODEL.pt --out FILE)",
    "lesions": "delete it and rerun snakemake (or resnet-repro probe lesions ...)",
    "lesions_k": "delete it and rerun snakemake (or resnet-repro probe lesions_k ...)",
    "paths": "delete it and rerun snakemake (or resnet-repro probe paths --model-file "
    "MODEL.pt --out FILE); the older layout measured the gradient at the first block's "
    "input, not at the image",
    "branches": "delete it and rerun snakemake (or resnet-repro probe branches "
    "--model-file MODEL.pt --out FILE); the older layout measured ||F(x)|| / ||s(x)||",
}


class ResultError(ValueError):
    """A result file that is missing, unreadable or not of the expected layout."""


# What torch.save raises when the bytes do not reach the file (a full disk, among others):
# "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598", "PytorchStreamWriter
# failed writing file data/0: file write failed". It says nothing about space.
_TORCH_WRITE_ERRORS = ("inline_container", "PytorchStreamWriter", "unexpected pos", "write failed")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _free_space(folder: Path) -> str:
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "free space unknown"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if free < 1024 or unit == "TB":
            break
        free /= 1024
    return f"{free:.0f} bytes free" if unit == "bytes" else f"{free:.1f} {unit} free"


def write_failure(path: Path, error: BaseException) -> ResultError:
    """One line for a result file that could not be written: which file, why, the free space
    of its folder, and what to do."""
    folder = path.parent
    if isinstance(error, OSError) and error.errno not in (None, *_NO_SPACE):
        reason = error.strerror or str(error)
        advice = "make that folder writable, or write the results elsewhere, and run again"
    else:
        if isinstance(error, OSError) and error.errno is not None:
            reason = os.strerror(error.errno).lower()
        else:
            reason = "the file could not be written in full (a full disk?)"
        advice = (
            "free some space there (or move the results to a larger disk) and run the same "
            "command again"
        )
    return ResultError(
        f"cannot write {path}: {reason}; {_free_space(folder)} in {folder}; {advice}: nothing "
        "written before is lost (a run resumes from its last checkpoint)"
    )


def _is_write_error(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return True
    return isinstance(error, RuntimeError) and any(t in str(error) for t in _TORCH_WRITE_ERRORS)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`. A failed write
    (OSError, or torch's write errors) becomes a ResultError of one line (`write_failure`);
    the temporary file is removed either way."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        # mkstemp makes the file private (0600); results are ordinary files, so use the umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, path)
    except Exception as e:
        if _is_write_error(e):
            raise write_failure(path, e) from None
        raise
    finally:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)


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


def _schema_name(schema: pa.Schema) -> str | None:
    named = {"metrics": METRICS_SCHEMA, "layer_std": LAYER_STD_SCHEMA, **PROBE_SCHEMAS}
    return next((k for k, v in named.items() if v.equals(schema)), None)


def read_parquet(path: str | Path, schema: pa.Schema) -> pd.DataFrame:
    """A result file as a DataFrame with every column of `schema`. Columns added to the schema
    after older files were written (`_OPTIONAL_COLUMNS`) get their older meaning; a file that
    lacks any other column is refused with one line that names it and how to rebuild it."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"result file {path} does not exist")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise ResultError(f"result file {path} is not a readable Parquet file ({e})") from None
    name = _schema_name(schema)
    optional = _OPTIONAL_COLUMNS.get(name, {})
    missing = [c for c in schema.names if c not in table.column_names and c not in optional]
    if missing:
        how = _REBUILD.get(name)
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


def read_all(paths: Sequence[str | Path], schema: pa.Schema) -> pd.DataFrame:
    """Several result files of one kind as one frame (empty, with the columns, for none)."""
    frames = [read_parquet(p, schema) for p in paths]
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


def _probe_schema(kind: str) -> pa.Schema:
    if kind not in PROBE_SCHEMAS:
        raise ResultError(f"unknown probe result {kind!r}; known: {sorted(PROBE_SCHEMAS)}")
    return PROBE_SCHEMAS[kind]


def write_probe(kind: str, rows, path: str | Path) -> None:
    """Write one probe's rows (`kind` in PROBE_SCHEMAS) for one (model, seed)."""
    write_parquet(rows, path, _probe_schema(kind))


def read_all_probe(kind: str, paths: Sequence[str | Path]) -> pd.DataFrame:
    return read_all(paths, _probe_schema(kind))


def write_landscape(rows, path: str | Path) -> None:
    """Write one net's loss landscape (LANDSCAPE_SCHEMA), atomically."""
    write_parquet(rows, path, LANDSCAPE_SCHEMA)


def read_all_landscape(paths: Sequence[str | Path]) -> pd.DataFrame:
    return read_all(paths, LANDSCAPE_SCHEMA)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch(obj: Any, path: str | Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)

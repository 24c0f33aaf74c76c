"""The files a training run leaves in its folder, and how to read them without torch: their
names, the summary of a run's metrics rows (progress.json and run.json's "progress"), and
readers that never raise."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import basics

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.pt"
PROGRESS_FILE = "progress.json"
PROGRESS_VERSION = 1
RUN_FILE = "run.json"
METRICS_FILE = "metrics.parquet"
RUNS_DIR = Path("results") / "runs"

# Every state a run can be in, with what it means (the CLI's help and the README say these).
STATES = {
    "done": "complete, and the run the config names",
    "diverged": "stopped early: its training loss became non-finite (complete)",
    "running": "a trainer is writing it now",
    "interrupted": "stopped before its end; the next snakemake resumes it from its checkpoint",
    "waiting": "not started yet",
    "stale": "results on disk from another recipe or other data than the config names; "
    "the next snakemake retrains it",
    "unknown": "its files cannot be read (truncated, foreign, or being written)",
}
FINISHED = ("done", "diverged")


# ---------------------------------------------------------------- the files of a run


def run_dir(folder: str | Path, model: str, seed: int) -> Path:
    return Path(folder) / RUNS_DIR / model / f"seed{seed}"


def checkpoint_path(run_folder: str | Path) -> Path:
    return Path(run_folder) / CHECKPOINT_DIR / CHECKPOINT_FILE


def progress_path(run_folder: str | Path) -> Path:
    return Path(run_folder) / CHECKPOINT_DIR / PROGRESS_FILE


def finite(x: Any) -> float | None:
    """A number as a JSON-safe float; None for missing, NaN or infinite."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def schedule_length(train: Mapping[str, Any], n_train: int) -> tuple[int, int]:
    """(total iterations, iterations per epoch) of a recipe's train section (a mapping: a
    run.json's identity, or the config's as a dict), counted as the trainer counts them."""
    total = basics.total_iterations(
        train.get("iterations"), train.get("epochs"), n_train, train["batch_size"]
    )
    return total, basics.steps_per_epoch(n_train, train["batch_size"])


def summarize_rows(
    rows: Sequence[Mapping[str, Any]], total_iterations: int, steps_per_epoch: int
) -> dict[str, Any]:
    """Where a run stands after its metrics `rows` (one per evaluation, as in
    metrics.parquet): iteration, epoch, the last errors, lr and rate, the seconds per
    iteration of its last epoch (evaluation included) and the seconds all its epochs took.
    JSON-ready (NaN and infinities become None). progress.json and run.json's "progress".
    Only the epoch rows count: the training-window rows (kind "window", engine/windows.py)
    carry no evaluation."""
    rows = [r for r in rows if (r.get("kind") or "epoch") == "epoch"]
    last = rows[-1] if rows else {}
    before = int(rows[-2]["iteration"]) if len(rows) > 1 else 0
    iteration = int(last.get("iteration") or 0)
    steps = iteration - before
    epoch_seconds = finite(last.get("epoch_seconds"))
    return {
        "iteration": iteration,
        "epoch": int(last.get("epoch") or 0),
        "total_iterations": int(total_iterations),
        "total_epochs": math.ceil(total_iterations / max(1, steps_per_epoch)),
        "steps_per_epoch": int(steps_per_epoch),
        "lr": finite(last.get("lr")),
        "train_loss": finite(last.get("train_loss")),
        "train_error_pct": finite(last.get("train_error_pct")),
        "val_error_pct": finite(last.get("val_error_pct")),
        "test_error_pct": finite(last.get("test_error_pct")),
        "images_per_second": finite(last.get("images_per_second")),
        "seconds_per_iteration": (
            epoch_seconds / steps if epoch_seconds is not None and steps > 0 else None
        ),
        "train_seconds": sum(finite(r.get("epoch_seconds")) or 0.0 for r in rows),
        "status": str(last.get("status") or "ok"),
    }


def read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the object, None), (None, None) when the file is absent, or (None, why) when it
    cannot be read, is not JSON (truncated, or written by hand right now) or not an object.
    Never raises."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{path.name} cannot be read ({getattr(e, 'strerror', None) or e})"
    try:
        obj = json.loads(text)
    except ValueError:
        return None, f"{path.name} is truncated or not JSON (being written right now?)"
    if not isinstance(obj, dict):
        return None, f"{path.name} is not a resnet-repro file (not a JSON object)"
    return obj, None


def read_progress(path: Path, model: str, seed: int) -> tuple[dict[str, Any] | None, str | None]:
    """A run's progress.json, checked to be ours and this run's (as `read_json`)."""
    obj, problem = read_json(path)
    if obj is None:
        return None, problem
    if obj.get("version") != PROGRESS_VERSION:
        return None, (
            f"{path.name} is not a resnet-repro progress file (version "
            f"{obj.get('version')!r}, expected {PROGRESS_VERSION})"
        )
    ints = ("iteration", "total_iterations", "steps_per_epoch")
    if not isinstance(obj.get("identity"), dict) or not all(
        isinstance(obj.get(k), int) for k in ints
    ):
        return None, f"{path.name} lacks the identity or the iteration counts"
    if (obj.get("model"), obj.get("seed")) != (model, seed):
        return None, (
            f"{path.name} is for {obj.get('model')} seed {obj.get('seed')}, not {model} seed {seed}"
        )
    return obj, None


def _summary_from_metrics(run_folder: Path, final: Mapping[str, Any]) -> dict[str, Any]:
    """For run.json files written before they had "progress": the same summary from the
    run's metrics.parquet (a few kB; pyarrow is imported only here)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(run_folder / METRICS_FILE).to_pylist()
    n_train = (final.get("data") or {}).get("n_train") or 0
    total, per_epoch = schedule_length(final["identity"]["train"], n_train)
    return summarize_rows(rows, total, per_epoch)


def final_summary(run_folder: Path, final: Mapping[str, Any]) -> tuple[dict | None, str | None]:
    """A complete run's summary: run.json's "progress", else from its metrics.parquet."""
    if isinstance(final.get("progress"), dict):
        return final["progress"], None
    try:
        return _summary_from_metrics(run_folder, final), None
    except Exception as e:  # a damaged or foreign file: a note in the row, never a traceback
        return None, f"{METRICS_FILE} unreadable ({type(e).__name__})"

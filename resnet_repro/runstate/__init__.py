"""Where each run of a study stands, from the small files its trainer leaves behind.

A training run (`resnet-repro train --out DIR`) keeps its resume state in DIR/checkpoint/:
state.pt (the tensors) and, beside it, progress.json, a few hundred bytes that the trainer
rewrites atomically when it starts and after every evaluation: the run's identity, iteration,
errors, rate, device and process. When the run is complete it writes DIR/metrics.parquet,
model.pt and run.json (whose "progress" key is the same summary, final), keeps links to
them in DIR/checkpoint/finished/ (engine.resume.keep_finished) and removes state.pt and
progress.json.

This module names those files, summarises training rows one way for both (`summarize_rows`),
and turns the files of a study's runs into one row per run (`study_status`): its state, how
far it is, its last errors, rate and device, its time left, and below them the study's
totals and expected end. It only reads, and only small files: JSON of a few kilobytes (and,
for a run finished before run.json had its "progress", that run's metrics.parquet), never a
checkpoint's tensors. It imports neither torch nor pandas, so `resnet-repro status` answers
in well under a second.

Whether results on disk are the run the config names is decided by the run identity
(`config.run_identity`): the recipe part is compared key by key; the data part by the content
fingerprint when it is known without reading the data (results/data/prepared.json, written by
the workflow, for the same data keys; or one the caller computed), else by the config's data
keys recorded with the run (`config.data_selection`).
"""

from .compare import DataCheck, data_check, differences, identity_changes, jsonable, prepared_path
from .files import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    FINISHED,
    METRICS_FILE,
    PROGRESS_FILE,
    PROGRESS_VERSION,
    RUN_FILE,
    RUNS_DIR,
    STATES,
    checkpoint_path,
    final_summary,
    progress_path,
    read_json,
    read_progress,
    run_dir,
    schedule_length,
    summarize_rows,
)
from .liveness import Here, pid_alive, this_boot, writer_alive
from .study import (
    RunStatus,
    StudyStatus,
    config_n_train,
    estimated_seconds_per_iteration,
    expected_finish,
    relative_cost,
    run_status,
    study_status,
)

__all__ = [
    "CHECKPOINT_DIR",
    "CHECKPOINT_FILE",
    "FINISHED",
    "METRICS_FILE",
    "PROGRESS_FILE",
    "PROGRESS_VERSION",
    "RUN_FILE",
    "RUNS_DIR",
    "STATES",
    "DataCheck",
    "Here",
    "RunStatus",
    "StudyStatus",
    "checkpoint_path",
    "config_n_train",
    "data_check",
    "differences",
    "estimated_seconds_per_iteration",
    "expected_finish",
    "final_summary",
    "identity_changes",
    "jsonable",
    "pid_alive",
    "prepared_path",
    "progress_path",
    "read_json",
    "read_progress",
    "relative_cost",
    "run_dir",
    "run_status",
    "schedule_length",
    "study_status",
    "summarize_rows",
    "this_boot",
    "writer_alive",
]

"""One row per run of a study (its state, how far it is, its time left) and the study's totals
and expected end, from the files of `files` compared by `compare`."""

from __future__ import annotations

import heapq
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Study, run_identity
from ..nets.families import model_mmacs
from .compare import DataCheck, data_check, identity_changes, jsonable, said
from .files import (
    FINISHED,
    METRICS_FILE,
    RUN_FILE,
    STATES,
    checkpoint_path,
    final_summary,
    finite,
    progress_path,
    read_json,
    read_progress,
    run_dir,
    schedule_length,
)
from .liveness import Here, writer_alive

# ---------------------------------------------------------------- one row per run


@dataclass
class RunStatus:
    model: str
    seed: int
    state: str  # a key of STATES
    iteration: int | None = None
    total_iterations: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    train_error_pct: float | None = None
    test_error_pct: float | None = None
    images_per_second: float | None = None
    device: str | None = None  # as the trainer named it ("CPU: ...", "NVIDIA H100 (GPU 0...)")
    device_type: str | None = None  # "cuda", "cpu", ...
    seconds_left: float | None = None  # None: no rate known to estimate it
    left_estimated: bool = False  # from another run's rate, not this run's own
    seconds_per_iteration: float | None = None  # this run's own, last epoch
    resumes_from: int | None = 0  # where its next start begins; None while running or complete
    train_seconds: float = 0.0  # compute its epochs took so far (all sessions)
    updated_at: float | None = None  # when its trainer last wrote progress.json
    note: str = ""


def _fill(row: RunStatus, summary: Mapping[str, Any]) -> None:
    for key in (
        "iteration",
        "total_iterations",
        "epoch",
        "total_epochs",
        "train_error_pct",
        "test_error_pct",
        "images_per_second",
        "seconds_per_iteration",
    ):
        if summary.get(key) is not None:
            setattr(row, key, summary[key])
    row.train_seconds = finite(summary.get("train_seconds")) or 0.0


def _final_device_type(final: Mapping[str, Any]) -> str | None:
    sessions = final.get("sessions")
    if isinstance(sessions, list) and sessions and isinstance(sessions[-1], dict):
        return sessions[-1].get("device")
    device = str(final.get("device") or "")
    return "cpu" if device.startswith("CPU") else ("cuda" if device else None)


def _final_selection(final: Mapping[str, Any]) -> dict[str, Any] | None:
    data = (final.get("config") or {}).get("data")
    if not isinstance(data, dict):
        return None
    return {k: v for k, v in data.items() if k not in ("root", "download")}


def run_status(
    study: Study,
    folder: str | Path,
    model: str,
    seed: int,
    check: DataCheck,
    here: Here,
    total: tuple[int, int],
) -> RunStatus:
    """One run's row from its files; `total` is (iterations, per epoch) of the config's
    recipe, for runs that have not recorded their own. Its time left is filled in by
    `study_status`, which knows the other runs' rates."""
    d = run_dir(folder, model, seed)
    expected = jsonable(run_identity(study, model, seed, check.fingerprint or ""))
    row = RunStatus(model, seed, "waiting")
    row.total_iterations, row.total_epochs = total[0], math.ceil(total[0] / total[1])
    final, final_problem = read_json(d / RUN_FILE)
    if final is not None and not isinstance(final.get("identity"), dict):
        final, final_problem = None, f"{RUN_FILE} is not a resnet-repro run record"
    has_metrics = (d / METRICS_FILE).is_file()
    progress, progress_problem = read_progress(progress_path(d), model, seed)

    stale = None
    if final is not None and has_metrics:
        changes = identity_changes(final["identity"], _final_selection(final), expected, check)
        if not changes:
            summary, problem = final_summary(d, final)
            _fill(row, summary or {})
            row.state = "diverged" if final.get("status") == "diverged" else "done"
            row.device, row.device_type = final.get("device"), _final_device_type(final)
            row.seconds_left, row.note, row.resumes_from = 0.0, problem or "", None
            return row
        stale = changes
    if progress is not None:
        _fill(row, progress)
        row.device, row.device_type = progress.get("device"), progress.get("device_type")
        row.updated_at = finite(progress.get("updated_at"))
        alive, where = writer_alive(progress, here)
        changes = identity_changes(
            progress["identity"], progress.get("data_selection"), expected, check
        )
        if alive:
            row.state, row.resumes_from = "running", None
            notes = [where] if where else []
            if progress.get("status") == "diverged":
                notes.append("diverged; writing its results")
            if changes:
                notes.append(f"trains another recipe than the config names ({said(changes)})")
            row.note = "; ".join(notes)
        elif changes:
            row.state = "stale"
            row.note = f"a partial run of another recipe ({said(changes)}): retrains from 0"
        else:
            row.state = "interrupted"
            if checkpoint_path(d).is_file():
                row.resumes_from = row.iteration
                row.note = f"resumes from iteration {row.iteration}"
            else:
                row.note = "its checkpoint is gone: retrains from 0"
            if where:
                row.note += f" ({where})"
        return row
    if progress_problem:
        row.state, row.note = "unknown", progress_problem
    elif stale is not None:
        row.state = "stale"
        row.note = f"results of another recipe or data ({said(stale)})"
        row.device, row.device_type = final.get("device"), _final_device_type(final)
    elif final_problem:
        row.state, row.note = "unknown", final_problem
    elif checkpoint_path(d).is_file():
        row.state, row.note = "interrupted", "resumable (no progress.json: an older trainer)"
    elif has_metrics:
        row.state, row.note = "unknown", f"{METRICS_FILE} without {RUN_FILE}: incomplete outputs"
    elif final is not None:
        row.note = f"{RUN_FILE} without {METRICS_FILE}: retrained by the next snakemake"
    return row


# ---------------------------------------------------------------- rates and the end


def relative_cost(model: str, width: int | None = None) -> float:
    """A rough cost of one training image of `model`, in forward multiply-accumulates
    (millions), as its family estimates it (nets/families.py)."""
    return model_mmacs(model, width)


def estimated_seconds_per_iteration(rows: Sequence[RunStatus], study: Study) -> dict[str, float]:
    """Seconds per iteration of every model of the study: the median of its runs' own
    rates, else scaled by `relative_cost` from the models that have one; models with no
    estimate are left out. Stale runs' rates, from another recipe, are not used."""
    measured: dict[str, list[float]] = {}
    for r in rows:
        if r.state != "stale" and r.seconds_per_iteration:
            measured.setdefault(r.model, []).append(r.seconds_per_iteration)
    own = {m: statistics.median(v) for m, v in measured.items()}
    out = dict(own)
    if own:
        per_cost = statistics.median(
            v / relative_cost(m, study.model_width(m)) for m, v in own.items()
        )
        for m in study.models():
            if m not in out:
                out[m] = per_cost * relative_cost(m, study.model_width(m))
    return out


def _set_time_left(row: RunStatus, rates: Mapping[str, float], now: float) -> None:
    if row.state in FINISHED:
        row.seconds_left = 0.0
        return
    start = (row.iteration if row.state == "running" else row.resumes_from) or 0
    if row.seconds_per_iteration and row.state in ("running", "interrupted"):
        spi, estimated = row.seconds_per_iteration, False
    elif row.model in rates:
        spi, estimated = rates[row.model], True
    else:
        row.seconds_left = None
        return
    left = max(0, (row.total_iterations or 0) - start) * spi
    if row.state == "running" and row.updated_at is not None:
        left -= max(0.0, now - row.updated_at)  # the part of this epoch done since
    row.seconds_left, row.left_estimated = max(0.0, left), estimated


def expected_finish(rows: Sequence[RunStatus], parallel: int) -> float | None:
    """Seconds until the last run of the study ends with `parallel` runs at once: the
    running ones go on in their slots, the others queue longest first onto the slot that
    frees first (as Snakemake starts them); None when a run's time left is not known."""
    if any(r.seconds_left is None for r in rows if r.state not in FINISHED):
        return None
    running = [r.seconds_left for r in rows if r.state == "running"]
    queued = sorted(r.seconds_left for r in rows if r.state not in (*FINISHED, "running"))
    slots = [*running, *[0.0] * max(0, max(1, parallel) - len(running))]
    heapq.heapify(slots)
    for left in reversed(queued):
        heapq.heappush(slots, heapq.heappop(slots) + left)
    return max(slots, default=0.0)


@dataclass
class StudyStatus:
    rows: list[RunStatus]
    states: dict[str, int]  # runs per state
    finished: int  # done or diverged
    gpu_hours: float  # compute the study's runs took on GPUs (epochs written so far)
    cpu_hours: float  # ... and on CPUs
    parallel: int  # runs at once, for the expected end
    seconds_left: float | None  # until the last run ends; None when not known
    expected_end: float | None  # that moment (Unix time)
    unknown_rates: list[str]  # models whose time cannot be estimated yet
    data_check: str  # how the runs' data was compared with the config's
    started: bool  # whether any run of the study has files on disk
    now: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def config_n_train(study: Study, check: DataCheck) -> int:
    """Training images per epoch: known from the data, else from the config (the subset, or
    CIFAR-10's 50,000 less the validation split)."""
    if check.n_train:
        return int(check.n_train)
    d = study.data
    full = 50000 - d.val_size
    return min(d.train_subset, full) if d.train_subset else full


def study_status(
    study: Study,
    folder: str | Path,
    parallel: int = 1,
    check: DataCheck | None = None,
    here: Here | None = None,
) -> StudyStatus:
    """Every run of `study` in the working directory `folder`, in the study's order, and
    the totals. Reads small files only and never writes."""
    here = here or Here.now_here()
    check = check or data_check(study, folder)
    total = schedule_length(asdict(study.train), config_n_train(study, check))
    rows = [run_status(study, folder, m, s, check, here, total) for m, s in study.runs()]
    rates = estimated_seconds_per_iteration(rows, study)
    for r in rows:
        _set_time_left(r, rates, here.now)
    states = {s: sum(r.state == s for r in rows) for s in STATES}
    hours = {"cuda": 0.0, "cpu": 0.0}
    for r in rows:
        if r.device_type in hours:
            hours[r.device_type] += r.train_seconds / 3600
    left = expected_finish(rows, parallel)
    unknown = sorted({r.model for r in rows if r.seconds_left is None})
    started = any(run_dir(folder, m, s).exists() for m, s in study.runs())
    return StudyStatus(
        rows=rows,
        states=states,
        finished=states["done"] + states["diverged"],
        gpu_hours=hours["cuda"],
        cpu_hours=hours["cpu"],
        parallel=parallel,
        seconds_left=left,
        expected_end=None if left is None else here.now + left,
        unknown_rates=unknown,
        data_check=check.how,
        started=started,
        now=here.now,
    )

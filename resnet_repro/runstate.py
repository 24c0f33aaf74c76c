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

from __future__ import annotations

import heapq
import json
import math
import os
import socket
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import IMAGENET_ARCH, Study, data_selection, parse_model_name, run_identity

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

# A trainer on another machine (a cluster node) is taken for alive while its progress.json is
# younger than this many of its epochs, and at least this many seconds.
_REMOTE_EPOCHS, _REMOTE_MIN_SECONDS = 3, 900.0


# ---------------------------------------------------------------- the files of a run


def run_dir(folder: str | Path, model: str, seed: int) -> Path:
    return Path(folder) / RUNS_DIR / model / f"seed{seed}"


def checkpoint_path(run_folder: str | Path) -> Path:
    return Path(run_folder) / CHECKPOINT_DIR / CHECKPOINT_FILE


def progress_path(run_folder: str | Path) -> Path:
    return Path(run_folder) / CHECKPOINT_DIR / PROGRESS_FILE


def _finite(x: Any) -> float | None:
    """A number as a JSON-safe float; None for missing, NaN or infinite."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def schedule_length(train: Mapping[str, Any], n_train: int) -> tuple[int, int]:
    """(total iterations, iterations per epoch) of a recipe's train section, as the trainer
    counts them (engine.schedule): train.iterations, or train.epochs full epochs of
    n_train // batch_size steps (at least one)."""
    per_epoch = max(1, int(n_train) // int(train["batch_size"]))
    if train.get("epochs") is not None:
        return int(train["epochs"]) * per_epoch, per_epoch
    return int(train["iterations"]), per_epoch


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
    epoch_seconds = _finite(last.get("epoch_seconds"))
    return {
        "iteration": iteration,
        "epoch": int(last.get("epoch") or 0),
        "total_iterations": int(total_iterations),
        "total_epochs": math.ceil(total_iterations / max(1, steps_per_epoch)),
        "steps_per_epoch": int(steps_per_epoch),
        "lr": _finite(last.get("lr")),
        "train_loss": _finite(last.get("train_loss")),
        "train_error_pct": _finite(last.get("train_error_pct")),
        "val_error_pct": _finite(last.get("val_error_pct")),
        "test_error_pct": _finite(last.get("test_error_pct")),
        "images_per_second": _finite(last.get("images_per_second")),
        "seconds_per_iteration": (
            epoch_seconds / steps if epoch_seconds is not None and steps > 0 else None
        ),
        "train_seconds": sum(_finite(r.get("epoch_seconds")) or 0.0 for r in rows),
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


# ---------------------------------------------------------------- identity


def jsonable(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples become lists), for comparing a recorded
    identity with the one the config gives now."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'key before -> now' for every (dotted) key whose value differs."""
    a, b = _flat(jsonable(recorded), prefix), _flat(jsonable(now), prefix)
    return [
        f"{k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


@dataclass(frozen=True)
class DataCheck:
    """What the config's data is known to be, and how runs' data are compared with it."""

    selection: dict[str, Any]  # config.data_selection, JSON form
    fingerprint: str | None  # the content's fingerprint, when known without reading the data
    n_train: int | None  # training images, when known
    how: str  # one line for the footer


def prepared_path(folder: str | Path, study: Study) -> Path:
    """The workflow's record of the study's data (rules/data.smk)."""
    named = [study.study.name] if study.study.name else []
    return Path(folder).joinpath("results", "data", *named, "prepared.json")


def data_check(
    study: Study,
    folder: str | Path,
    fingerprint: str | None = None,
    n_train: int | None = None,
) -> DataCheck:
    """How to tell whether a run's data is the config's: by `fingerprint` when the caller
    computed it; else by the one results/data/prepared.json records for the same data keys;
    else by the data keys alone (a folder that now holds other images goes unnoticed)."""
    selection = jsonable(data_selection(study))
    if fingerprint is not None:
        return DataCheck(selection, fingerprint, n_train, "data compared by content (read now)")
    path = prepared_path(folder, study)
    prepared, _ = read_json(path)
    if (
        prepared is not None
        and jsonable(prepared.get("data")) == selection
        and isinstance(prepared.get("fingerprint"), str)
    ):
        counts = prepared.get("counts") if isinstance(prepared.get("counts"), dict) else {}
        shown = path.relative_to(folder) if path.is_relative_to(folder) else path
        return DataCheck(
            selection,
            prepared["fingerprint"],
            counts.get("n_train"),
            f"data compared by content fingerprint (from {shown})",
        )
    return DataCheck(
        selection,
        None,
        None,
        "data compared by the config's data keys only (no prepared.json for them yet); "
        "--check-data compares the content",
    )


def identity_changes(
    recorded: Mapping[str, Any],
    recorded_selection: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
    check: DataCheck,
) -> list[str]:
    """How a recorded run identity differs from the one the config gives now; [] when it is
    the same run. The data fingerprint is compared when the config's is known; else the data
    keys recorded with the run (when it recorded them)."""
    strip = lambda ident: {  # noqa: E731
        **ident,
        "data": {k: v for k, v in (ident.get("data") or {}).items() if k != "fingerprint"},
    }
    changes = differences(strip(recorded), strip(expected))
    if check.fingerprint is not None:
        before = (recorded.get("data") or {}).get("fingerprint")
        if before != check.fingerprint:
            changes.append(f"data content {before} -> {check.fingerprint}")
    elif recorded_selection is not None:
        changes += differences(recorded_selection, check.selection, prefix="data.")
    return changes


def _said(changes: Sequence[str], most: int = 2) -> str:
    more = f" (and {len(changes) - most} more)" if len(changes) > most else ""
    return "; ".join(changes[:most]) + more


# ---------------------------------------------------------------- the trainer's process


def this_boot() -> str | None:
    """This machine's boot id (Linux), so that a process id from before a reboot is not
    taken for a live trainer."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine and is a Python process (a trainer);
    signal 0 only asks, it delivers nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"python" in cmd or b"resnet-repro" in cmd


@dataclass(frozen=True)
class Here:
    """The machine `status` runs on and the time it looks; injectable for tests."""

    host: str
    boot_id: str | None
    now: float
    alive: Callable[[int], bool] = pid_alive

    @classmethod
    def now_here(cls) -> Here:
        return cls(socket.gethostname(), this_boot(), time.time())


def writer_alive(progress: Mapping[str, Any], here: Here) -> tuple[bool, str]:
    """Whether the trainer that wrote `progress` still runs, and how that was told. On this
    machine by its process id; on another (a cluster node) by the file's age."""
    age = here.now - (_finite(progress.get("updated_at")) or 0.0)
    host = progress.get("host")
    if host == here.host:
        if progress.get("boot_id") not in (None, here.boot_id):
            return False, "its trainer ran before this machine restarted"
        pid = progress.get("pid")
        return isinstance(pid, int) and here.alive(pid), ""
    spi = _finite(progress.get("seconds_per_iteration")) or 0.0
    grace = max(_REMOTE_MIN_SECONDS, _REMOTE_EPOCHS * spi * progress.get("steps_per_epoch", 1))
    return age <= grace, f"on {host}, written {_ago(age)} ago"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


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
    row.train_seconds = _finite(summary.get("train_seconds")) or 0.0


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
        row.updated_at = _finite(progress.get("updated_at"))
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
                notes.append(f"trains another recipe than the config names ({_said(changes)})")
            row.note = "; ".join(notes)
        elif changes:
            row.state = "stale"
            row.note = f"a partial run of another recipe ({_said(changes)}): retrains from 0"
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
        row.note = f"results of another recipe or data ({_said(stale)})"
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
    (millions): 6n+2 nets about 41M x (depth - 2) / 18 (ResNet-20: 41M, ResNet-110: 253M);
    the ImageNet-style nets as measured (README, "Two studies"), times (width / 64)^2."""
    arch, depth = parse_model_name(model)
    if arch == IMAGENET_ARCH:
        macs = {18: 555.0, 34: 1160.0, 50: 1300.0}[depth]
        return macs * ((width or 64) / 64) ** 2
    return 41.0 * (depth - 2) / 18


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

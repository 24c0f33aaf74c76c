"""The training loop of section 4.2: iteration-based schedule, warm-up, evaluation every epoch,
atomic checkpoints with exact resume, and divergence handling.

The data lives on the training device and is augmented there; the step (`step.TrainStep`,
eager or compiled into graphs) accumulates the loss and error in device tensors that are read
once per epoch and once per training window (`windows.TrainingWindows`, every
`train.window_iterations` iterations, for Figure 6's curves), so a step never waits for the
host (the warm-up phase of the deepest nets is the one exception: it reads the running error
every `warmup.check_every` iterations until the warm-up ends). The run's setup (data, seeded
net, optimizer) is `run_setup`'s.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import data as data_mod
from .. import progressbar
from ..basics import hms
from ..config import Study
from ..nets import normalization
from .devices import Placement, numerics
from .evaluation import loss_and_error
from .loop import StepLoop
from .progress import RunProgress
from .resume import (
    load_checkpoint,
    numeric_changes,
    restore_optimizer,
    save_checkpoint,
    session_record,
)
from .run_setup import RunSetup, set_up_run
from .schedule import (  # noqa: F401 (lr_at: the schedule is part of the trainer's interface)
    WarmupState,
    lr_at,
    warmup_applies,
)
from .step import TrainStep

# ---------------------------------------------------------------- evaluation


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    batch_size: int,
    placement: Placement,
    std: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Mean loss and top-1 error (%) on original (unaugmented) images in eval mode and fp32
    (evaluation.loss_and_error), fed as in training: the training images' mean subtracted
    (and the std divided by, with `std`), in the placement's memory format. (nan, nan) for an
    empty set."""

    def inputs(xb: torch.Tensor) -> torch.Tensor:
        xb = data_mod.normalize(xb, mean, std)
        if placement.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb

    return loss_and_error(model, x, y, batch_size, inputs)


# ---------------------------------------------------------------- the loop


@dataclass
class RunResult:
    rows: list[dict[str, Any]]
    status: str
    model: torch.nn.Module
    parameters: int
    identity: dict[str, Any]
    wall_seconds: float
    resumed_at_iteration: int
    data: dict[str, Any]
    warmup: dict[str, Any]  # applied, ended_at_iteration, reason
    normalization: dict[str, Any]  # how the inputs were made (nets/normalization.py record)
    sessions: list[dict[str, Any]]  # one per start or resume: iteration and placement
    summary: dict[str, Any]  # where it ended (runstate.summarize_rows), for run.json


def metrics_row(identity: dict[str, Any], **values: Any) -> dict[str, Any]:
    """One metrics row: the run's keys from its identity, then `values`."""
    keys = ("model", "arch", "depth", "shortcut", "seed")
    return {**{k: identity[k] for k in keys}, **values}


@dataclass
class _Start:
    """Where a run starts: at 0, or where its checkpoint left it."""

    iteration: int
    epoch: int
    rows: list[dict[str, Any]]
    warm: WarmupState
    sessions: list[dict[str, Any]]
    window: dict[str, Any] | None  # the open training window's sums (windows.to_state)

    @property
    def status(self) -> str:
        return self.rows[-1]["status"] if self.rows else "ok"


def _resume(
    run: RunSetup,
    checkpoint_path: Path,
    log: Callable[[str], None],
    warn: Callable[[str], None],
) -> _Start:
    """The start of a fresh run, or the state of its checkpoint loaded into the net and the
    optimizer; a warning when the numeric settings differ from the last session's."""
    placement, identity = run.placement, run.identity
    applies = warmup_applies(identity["arch"], identity["depth"], run.study.train.warmup)
    state = load_checkpoint(checkpoint_path, run.identity_hash, warn)
    if state is None:
        warm = WarmupState.start(applies, placement.device)
        return _Start(0, 0, [], warm, [session_record(placement, iteration=0)], None)
    run.model.load_state_dict(state["model"])
    restore_optimizer(run.optimizer, state["optimizer"], placement)
    iteration, epoch = state["iteration"], state["epoch"]
    session = session_record(placement, iteration=iteration)
    log(f"resuming {run.model_name} seed {run.seed} from iteration {iteration} (epoch {epoch})")
    changed = numeric_changes(state["sessions"][-1], session)
    if changed:
        warn(
            f"resuming with other numeric settings than before ({'; '.join(changed)}): "
            "the rest of this run will not be bit-identical to an uninterrupted one; "
            "every resume is recorded in run.json"
        )
    return _Start(
        iteration,
        epoch,
        list(state["rows"]),
        WarmupState.restore(state["warmup"], placement.device),
        [*state["sessions"], session],
        state.get("window"),
    )


def _train_epoch(
    run: RunSetup,
    loop: StepLoop,
    epoch: int,
    rows: list[dict[str, Any]],
    log: Callable[[str], None],
) -> str:
    """One epoch's steps (a row for each training window they close), then the evaluation on
    the test and validation sets: its row appended and logged. Returns the run's status."""
    train, dd, placement = run.study.train, run.dd, run.placement
    t0 = time.perf_counter()
    steps = loop.start_epoch(run.seed, epoch)
    while not loop.epoch_done:
        window = loop()
        if window is not None:  # Figure 6's training curve: one host read per window
            rows.append(metrics_row(run.identity, epoch=epoch, lr=loop.lr, **window))
    train_loss, train_error, seen = loop.step.read_meter()  # the epoch's one host sync
    train_seconds = time.perf_counter() - t0
    status = "ok"
    if not math.isfinite(train_loss):
        status = "diverged"
        log(
            f"{run.model_name} seed {run.seed}: non-finite training loss in epoch {epoch}; "
            "stopping this run and keeping its rows"
        )
    test_loss, test_error = evaluate(
        run.model, dd.test_x, dd.test_y, dd.mean, train.eval_batch_size, placement, dd.std
    )
    val_loss, val_error = evaluate(
        run.model, dd.val_x, dd.val_y, dd.mean, train.eval_batch_size, placement, dd.std
    )
    epoch_seconds = time.perf_counter() - t0
    iteration, lr = loop.iteration, loop.lr
    rows.append(
        metrics_row(
            run.identity,
            epoch=epoch,
            iteration=iteration,
            lr=lr,
            train_loss=train_loss,
            train_error_pct=train_error,
            val_loss=None if math.isnan(val_loss) else val_loss,
            val_error_pct=None if math.isnan(val_error) else val_error,
            test_loss=test_loss,
            test_error_pct=test_error,
            epoch_seconds=epoch_seconds,
            images_per_second=seen / train_seconds,
            status=status,
            kind="epoch",
            window_iterations=steps,
        )
    )
    left = (run.total - iteration) * epoch_seconds / steps
    log(
        f"{run.model_name} seed {run.seed} | epoch {epoch} | iter {iteration}/{run.total} "
        f"| lr {lr:g} | train loss {train_loss:.4f} error {train_error:.2f}% | test error "
        f"{test_error:.2f}% | {seen / train_seconds:,.0f} img/s | left {hms(left)}"
    )
    return status


def _save(
    run: RunSetup,
    checkpoint_path: Path,
    loop: StepLoop,
    rows: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
) -> None:
    """The checkpoint after an epoch's evaluation: what an exact resume needs."""
    save_checkpoint(
        checkpoint_path,
        identity=run.identity,
        identity_hash=run.identity_hash,
        model=run.model,
        optimizer=run.optimizer,
        iteration=loop.iteration,
        epoch=loop.epoch,
        rows=rows,
        warmup=loop.warm.to_state(),
        sessions=sessions,
        window=loop.windows.to_state(),
    )


def train_run(
    study: Study,
    model_name: str,
    seed: int,
    checkpoint_path: Path,
    placement: Placement,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
    bar: progressbar.Bar = progressbar.NULL,
    data: tuple[data_mod.CifarArrays, dict] | None = None,
) -> RunResult:
    """Train one (model, seed) to the end of the schedule, resuming from the checkpoint;
    progress.json beside it says how far it is (engine/progress.py), `bar` shows it.
    `data`: what `run_data` returned, when the caller has read it already."""
    warn = warn or (lambda m: warnings.warn(m, stacklevel=2))
    started = time.perf_counter()
    run = set_up_run(study, model_name, seed, placement, data)
    start = _resume(run, checkpoint_path, log, warn)
    rows, status, epoch = start.rows, start.status, start.epoch
    progress = RunProgress(
        study,
        checkpoint_path.parent,
        run.identity,
        run.identity_hash,
        placement,
        run.total,
        run.per_epoch,
    )
    progress.started(rows)
    bar.start(run.total, start.iteration)

    with numerics(placement):
        step = TrainStep(run.model, run.optimizer, run.dd, study.train, placement, run.per_epoch)
        loop = StepLoop(
            step, study.train, run.total, start.iteration, start.warm, start.window, log, bar
        )
        while loop.iteration < run.total and status == "ok":
            epoch += 1
            status = _train_epoch(run, loop, epoch, rows, log)
            _save(run, checkpoint_path, loop, rows, start.sessions)
            progress.evaluated(rows)
        progress.close()

    return RunResult(
        rows=rows,
        status=status,
        model=run.model,
        parameters=run.parameters,
        identity=run.identity,
        wall_seconds=time.perf_counter() - started,
        resumed_at_iteration=start.iteration,
        data=data_mod.describe(run.arrays),
        warmup=loop.warm.summary(),
        sessions=start.sessions,
        normalization=input_normalization(run.dd),
        summary=progress.summary(rows),
    )


def input_normalization(dd: data_mod.DeviceData) -> dict[str, Any]:
    """The record, stored with the weights, of how this run's inputs were normalised."""
    if dd.std is None:
        return normalization.per_pixel_mean(
            dd.mean,
            f"per-pixel mean of this run's {len(dd.train_y)} training images, 0..1 scale "
            "(He et al. 2015, section 4.2)",
        )
    return normalization.per_channel(
        tuple(dd.mean.flatten().tolist()),
        tuple(dd.std.flatten().tolist()),
        "per-channel mean and std of the training images, 0..1 scale",
    )

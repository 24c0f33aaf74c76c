"""The training loop of section 4.2: iteration-based schedule, warm-up, evaluation every epoch,
atomic checkpoints with exact resume, and divergence handling.

The data lives on the training device and is augmented there; the step (`step.TrainStep`,
eager or compiled into graphs) accumulates the loss and error in device tensors that are read
once per epoch and once per training window (`windows.TrainingWindows`, every
`train.window_iterations` iterations, for Figure 6's curves), so a step never waits for the
host (the warm-up phase of the deepest nets is the one exception: it reads the running error
every `warmup.check_every` iterations until the
warm-up ends).
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
from ..config import Study, TrainConfig, batch_size_error, identity_hash, run_identity
from ..nets import normalization
from ..nets.cifar_nets import build_model, count_parameters
from .devices import Placement, numerics
from .evaluation import loss_and_error
from .progress import RunProgress
from .resume import (
    load_checkpoint,
    numeric_changes,
    restore_optimizer,
    save_checkpoint,
    session_record,
)
from .schedule import (
    WarmupState,
    lr_at,
    steps_per_epoch,
    total_iterations,
    warmup_applies,
)  # noqa: F401 (the schedule is part of the trainer's interface)
from .step import TrainStep, make_optimizer
from .windows import TrainingWindows

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


def _row(identity: dict[str, Any], **values: Any) -> dict[str, Any]:
    keys = ("model", "arch", "depth", "shortcut", "seed")
    return {**{k: identity[k] for k in keys}, **values}


def initial_model(
    model_name: str, shortcut: str, seed: int, width: int | None = None
) -> torch.nn.Module:
    """The run's initial weights, on the CPU: the global RNG seeded with the run's seed, then
    the net built (its He initialisation draws from that RNG). `setup_model` starts every run
    from it, so the initial weights of any run can be rebuilt from its seed alone (the loss
    landscape's interpolation from the initial to the trained weights does)."""
    torch.manual_seed(seed)
    return build_model(model_name, shortcut=shortcut, width=width)


def setup_model(
    model_name: str,
    shortcut: str,
    train: TrainConfig,
    placement: Placement,
    seed: int,
    width: int | None = None,
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The seeded model on its device and its optimizer (`step.TrainStep` compiles what
    `device.compile` asks for)."""
    model = initial_model(model_name, shortcut, seed, width).to(placement.device)
    if placement.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, train, placement)
    if placement.compile != "eager":
        # A fresh compile per model, so that several models in one process (the benchmark)
        # do not add up to dynamo's recompile limit.
        torch._dynamo.reset()
    model.train()
    return model, optimizer


def run_data(study: Study, model_name: str, seed: int) -> tuple[data_mod.CifarArrays, dict]:
    """The run's data on the host and its identity (`config.run_identity`), or DataError in
    one line when the recipe cannot train on it (a batch larger than the training set, where
    every step would see all images while run.json said otherwise)."""
    arrays = data_mod.load_arrays(study.data)  # refuses an empty training or test set
    too_big = batch_size_error(study.train.batch_size, len(arrays.train_y))
    if too_big:
        raise data_mod.DataError(too_big)
    return arrays, run_identity(study, model_name, seed, data_mod.fingerprint(arrays))


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
    train = study.train
    device = placement.device

    arrays, identity = data if data is not None else run_data(study, model_name, seed)
    ident_hash = identity_hash(identity)
    dd = data_mod.to_device(arrays, device, study.data.normalization)

    model, optimizer = setup_model(
        model_name, study.study.shortcut, train, placement, seed, study.model_width(model_name)
    )
    parameters = count_parameters(model)

    iteration, epoch, rows = 0, 0, []
    warm = WarmupState.start(
        warmup_applies(identity["arch"], identity["depth"], train.warmup), device
    )
    session = session_record(placement, iteration=0)
    sessions = [session]
    state = load_checkpoint(checkpoint_path, ident_hash, warn)
    if state is not None:
        model.load_state_dict(state["model"])
        restore_optimizer(optimizer, state["optimizer"], placement)
        iteration, epoch, rows = state["iteration"], state["epoch"], list(state["rows"])
        warm = WarmupState.restore(state["warmup"], device)
        session = session_record(placement, iteration=iteration)
        sessions = [*state["sessions"], session]
        log(f"resuming {model_name} seed {seed} from iteration {iteration} (epoch {epoch})")
        changed = numeric_changes(state["sessions"][-1], session)
        if changed:
            warn(
                f"resuming with other numeric settings than before ({'; '.join(changed)}): "
                "the rest of this run will not be bit-identical to an uninterrupted one; "
                "every resume is recorded in run.json"
            )
    resumed_at = iteration

    per_epoch = steps_per_epoch(len(dd.train_y), train.batch_size)
    total = total_iterations(train, len(dd.train_y))
    status = rows[-1]["status"] if rows else "ok"
    progress = RunProgress(
        study, checkpoint_path.parent, identity, ident_hash, placement, total, per_epoch
    )
    progress.started(rows)
    bar.start(total, iteration)

    with numerics(placement):
        step = TrainStep(model, optimizer, dd, train, placement, per_epoch)
        windows = TrainingWindows(
            train.window_iterations, device, iteration, state.get("window") if state else None
        )
        step.add_meter(windows.loss_sum, windows.wrong)  # summed inside the step's graph
        while iteration < total and status == "ok":
            epoch += 1
            t0 = time.perf_counter()
            steps = min(per_epoch, total - iteration)
            step.start_epoch(seed, epoch)
            lr = None
            for _ in range(steps):
                new_lr = lr_at(iteration, train, warm.active, per_epoch)
                if new_lr != lr:
                    lr = new_lr
                    step.set_lr(lr)
                _, batch_wrong = step()
                iteration += 1
                bar.advance()
                window = windows.advance(step.batch_size, iteration, total)
                if window is not None:  # Figure 6's training curve: one host read per window
                    rows.append(_row(identity, epoch=epoch, lr=lr, **window))
                if warm.active:
                    # Section 4.2: "0.01 to warm up the training until the training error is
                    # below 80% (about 400 iterations), and then go back to 0.1".
                    reason = warm.step(iteration, batch_wrong, step.batch_size, train, per_epoch)
                    if reason is not None:
                        log(f"warm-up ends at iteration {iteration}: {reason}")
            train_loss, train_error, seen = step.read_meter()  # the epoch's one host sync
            train_seconds = time.perf_counter() - t0
            if not math.isfinite(train_loss):
                status = "diverged"
                log(
                    f"{model_name} seed {seed}: non-finite training loss in epoch {epoch}; "
                    "stopping this run and keeping its rows"
                )
            test_loss, test_error = evaluate(
                model, dd.test_x, dd.test_y, dd.mean, train.eval_batch_size, placement, dd.std
            )
            val_loss, val_error = evaluate(
                model, dd.val_x, dd.val_y, dd.mean, train.eval_batch_size, placement, dd.std
            )
            epoch_seconds = time.perf_counter() - t0
            row = _row(
                identity,
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
            rows.append(row)
            left = (total - iteration) * epoch_seconds / steps
            log(
                f"{model_name} seed {seed} | epoch {epoch} | iter {iteration}/{total} "
                f"| lr {lr:g} | train loss {train_loss:.4f} error {train_error:.2f}% | test error "
                f"{test_error:.2f}% | {seen / train_seconds:,.0f} img/s | left {hms(left)}"
            )
            save_checkpoint(
                checkpoint_path,
                identity=identity,
                identity_hash=ident_hash,
                model=model,
                optimizer=optimizer,
                iteration=iteration,
                epoch=epoch,
                rows=rows,
                warmup=warm.to_state(),
                sessions=sessions,
                window=windows.to_state(),
            )
            progress.evaluated(rows)
        progress.close()

    return RunResult(
        rows=rows,
        status=status,
        model=model,
        parameters=parameters,
        identity=identity,
        wall_seconds=time.perf_counter() - started,
        resumed_at_iteration=resumed_at,
        data=data_mod.describe(arrays),
        warmup=warm.summary(),
        sessions=sessions,
        normalization=input_normalization(dd),
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

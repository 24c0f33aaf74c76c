"""The training loop of section 4.2: iteration-based schedule, warm-up, evaluation every epoch,
atomic checkpoints with exact resume, and divergence handling.

The data lives on the training device and is augmented there; the loss and error of each
step are accumulated in device tensors and read once per epoch and once per training window
(`windows.TrainingWindows`, every `train.window_iterations` iterations, for Figure 6's
curves), so a step never waits for the host (the warm-up phase of the deepest nets is the one
exception: it reads the running error every `warmup.check_every` iterations until the
warm-up ends).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import data as data_mod
from ..config import Study, TrainConfig, identity_hash, run_identity
from ..nets import normalization
from ..nets.cifar_nets import build_model, count_parameters
from .devices import Placement
from .evaluation import loss_and_error
from .resume import (
    load_checkpoint,
    numeric_changes,
    restore_optimizer,
    save_checkpoint,
    session_record,
)
from .schedule import (
    WarmupState,
    epoch_seed,
    lr_at,
    steps_per_epoch,
    total_iterations,
    warmup_applies,
)  # noqa: F401 (the schedule is part of the trainer's interface)
from .windows import TrainingWindows

# ---------------------------------------------------------------- evaluation


def autocast(placement: Placement):
    if placement.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(placement.device.type, dtype=placement.autocast_dtype)


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


class DeviceMeter:
    """Loss and wrong-prediction sums of training batches, kept on the device so that no step
    waits for the host; `read` is the one sync."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0

    def add(self, loss: torch.Tensor, wrong: torch.Tensor, n: int) -> None:
        self.loss_sum += loss.double() * n
        self.wrong += wrong
        self.seen += n

    def read(self) -> tuple[float, float]:
        """(mean loss, error %) since the last reset; one host sync."""
        if self.seen == 0:
            return float("nan"), float("nan")
        stats = torch.stack([self.loss_sum, self.wrong.double()]).tolist()
        return stats[0] / self.seen, 100.0 * stats[1] / self.seen

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.wrong.zero_()
        self.seen = 0


def _row(identity: dict[str, Any], **values: Any) -> dict[str, Any]:
    keys = ("model", "arch", "depth", "shortcut", "seed")
    return {**{k: identity[k] for k in keys}, **values}


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def training_batch(
    dd: data_mod.DeviceData,
    idx: torch.Tensor,
    generator: torch.Generator,
    train: TrainConfig,
    placement: Placement,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented, normalised images and labels at `idx`, made on the device (section 4.2:
    4-pixel zero padding, random 32x32 crop, random horizontal flip)."""
    x = data_mod.augment(
        dd.train_x[idx], dd.mean, generator, train.augment.padding, train.augment.flip, std=dd.std
    )
    if placement.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, dd.train_y[idx]


def epoch_batches(
    dd: data_mod.DeviceData,
    seed: int,
    epoch: int,
    steps: int,
    train: TrainConfig,
    placement: Placement,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The first `steps` augmented batches of an epoch: a fresh permutation each epoch, and
    shuffle and augmentation drawn from a generator seeded by (seed, epoch), so that a resumed
    run sees exactly the batches an uninterrupted one would."""
    gen = torch.Generator(device=placement.device).manual_seed(epoch_seed(seed, epoch))
    order = data_mod.epoch_order(len(dd.train_y), gen, placement.device)
    b = train.batch_size
    for k in range(steps):
        yield training_batch(dd, order[k * b : (k + 1) * b], gen, train, placement)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    placement: Placement,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step; returns the loss and the count of wrong predictions as device tensors
    (reading them here would make every step wait for the device)."""
    with autocast(placement):
        out = model(x)
        loss = F.cross_entropy(out.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (out.detach().argmax(1) != y).sum()


def make_optimizer(
    model: torch.nn.Module, train: TrainConfig, placement: Placement
) -> torch.optim.Optimizer:
    """SGD of section 4.2 (momentum 0.9, weight decay 1e-4 on all weights)."""
    kwargs: dict[str, Any] = {"fused": True} if placement.fused_optimizer else {"foreach": True}
    return torch.optim.SGD(
        model.parameters(),
        lr=train.lr,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        **kwargs,
    )


def setup_model(
    model_name: str,
    shortcut: str,
    train: TrainConfig,
    placement: Placement,
    seed: int,
    width: int | None = None,
) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer]:
    """The seeded model on its device, the module that steps (compiled or not; it shares the
    model's parameters) and its optimizer."""
    torch.manual_seed(seed)
    model = build_model(model_name, shortcut=shortcut, width=width).to(placement.device)
    if placement.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, train, placement)
    if placement.compile:
        # A fresh compile per model, so that several models in one process (the benchmark)
        # do not add up to dynamo's recompile limit.
        torch._dynamo.reset()
    step_model = torch.compile(model) if placement.compile else model
    model.train()
    return model, step_model, optimizer


def train_run(
    study: Study,
    model_name: str,
    seed: int,
    checkpoint_path: Path,
    placement: Placement,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Train one (model, seed) to the end of the schedule, resuming from the checkpoint."""
    warn = warn or (lambda m: warnings.warn(m, stacklevel=2))
    started = time.perf_counter()
    train = study.train
    device = placement.device

    arrays = data_mod.load_arrays(study.data)  # refuses an empty training or test set
    identity = run_identity(study, model_name, seed, data_mod.fingerprint(arrays))
    ident_hash = identity_hash(identity)
    dd = data_mod.to_device(arrays, device, study.data.normalization)

    model, step_model, optimizer = setup_model(
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
    windows = TrainingWindows(
        train.window_iterations, device, iteration, state.get("window") if state else None
    )

    while iteration < total and status == "ok":
        epoch += 1
        t0 = time.perf_counter()
        steps = min(per_epoch, total - iteration)
        meter = DeviceMeter(device)
        lr = None
        for x, y in epoch_batches(dd, seed, epoch, steps, train, placement):
            new_lr = lr_at(iteration, train, warm.active, per_epoch)
            if new_lr != lr:
                lr = new_lr
                set_lr(optimizer, lr)
            loss, batch_wrong = train_step(step_model, optimizer, x, y, placement)
            meter.add(loss, batch_wrong, len(y))
            iteration += 1
            window = windows.add(loss, batch_wrong, len(y), iteration, total)
            if window is not None:  # Figure 6's training curve: one host read per window
                rows.append(_row(identity, epoch=epoch, lr=lr, **window))
            if warm.active:
                # Section 4.2: "0.01 to warm up the training until the training error is
                # below 80% (about 400 iterations), and then go back to 0.1".
                reason = warm.step(iteration, batch_wrong, len(y), train, per_epoch)
                if reason is not None:
                    log(f"warm-up ends at iteration {iteration}: {reason}")
        train_loss, train_error = meter.read()  # the epoch's one host sync
        train_seconds = time.perf_counter() - t0
        seen = meter.seen
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
            f"{test_error:.2f}% | {seen / train_seconds:,.0f} img/s | left {_hms(left)}"
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
    )


def input_normalization(dd: data_mod.DeviceData) -> dict[str, Any]:
    """The record, stored with the weights, of how this run's inputs were normalised."""
    if dd.std is None:
        return normalization.per_pixel_mean()
    return normalization.per_channel(
        tuple(dd.mean.flatten().tolist()),
        tuple(dd.std.flatten().tolist()),
        "per-channel mean and std of the training images, 0..1 scale",
    )


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

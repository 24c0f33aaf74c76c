"""The training loop of section 4.2: iteration-based schedule, warm-up, evaluation every epoch,
atomic checkpoints with exact resume, and divergence handling.

The data lives on the training device and is augmented there; the loss and error of each
step are accumulated in device tensors and read once per epoch, so a step never waits for
the host (the warm-up phase of the deepest nets is the one exception: it reads the running
error every `warmup.check_every` iterations until the warm-up ends).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import data as data_mod
from .config import Study, TrainConfig, WarmupConfig, identity_hash, run_identity
from .devices import Placement
from .models import build_model, count_parameters
from .results import save_torch

CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------- pure schedule functions


def warmup_applies(depth: int, warmup: WarmupConfig) -> bool:
    """Section 4.2: the 110-layer net warms up at lr 0.01; so do deeper ones (1202)."""
    return warmup.min_depth is not None and depth >= warmup.min_depth


def lr_at(iteration: int, train: TrainConfig, warming_up: bool = False,
          per_epoch: int = 1) -> float:
    """Learning rate of the step that starts at `iteration` (0-based).

    Section 4.2: start at 0.1, divide by 10 at 32k and 48k iterations; during the warm-up
    of the deepest nets the rate is 0.01 instead. Other schedules: `scheduled_lr`.
    """
    if warming_up:
        return train.warmup.lr
    return scheduled_lr(iteration, train, per_epoch)


def scheduled_lr(iteration: int, train: TrainConfig, per_epoch: int = 1) -> float:
    """The schedule's rate at `iteration` (0-based), `per_epoch` iterations to an epoch.

    With train.iterations the schedule counts iterations (the paper's); with train.epochs it
    counts whole epochs, the rate changing at epoch starts (as a per-epoch
    `torch.optim.lr_scheduler` step does in the ImageNet-style recipe). "step": lr times
    lr_decay per milestone passed; "cosine": lr * (1 + cos(pi t / T)) / 2, from lr down to 0
    at the end T (Loshchilov & Hutter 2017, SGDR, without restarts; CosineAnnealingLR with
    eta_min 0).
    """
    if train.epochs is not None:
        t, end = iteration // per_epoch, train.epochs
    else:
        t, end = iteration, train.iterations
    if train.schedule == "cosine":
        return train.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, end) / end))
    decays = sum(1 for m in train.lr_milestones if t >= m)
    return train.lr * train.lr_decay ** decays


def total_iterations(train: TrainConfig, n_train: int) -> int:
    """Length of the run in iterations: train.iterations, or train.epochs full epochs."""
    if train.epochs is not None:
        return train.epochs * steps_per_epoch(n_train, train.batch_size)
    return train.iterations


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Full batches per epoch; the few images left over are drawn in later epochs' shuffles.
    A set smaller than one batch (tiny test studies) is one batch."""
    return max(1, n_train // batch_size)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of an epoch's shuffle and augmentation, so a resumed run draws exactly what an
    uninterrupted one would."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
               % (2**63))


# ---------------------------------------------------------------- evaluation


def autocast(placement: Placement):
    if placement.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(placement.device.type, dtype=placement.autocast_dtype)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor,
             batch_size: int, placement: Placement,
             std: torch.Tensor | None = None) -> tuple[float, float]:
    """Mean loss and top-1 error (%) on original (unaugmented) images in eval mode."""
    if len(y) == 0:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb = data_mod.normalize(x[i:i + batch_size], mean, std)
            if placement.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y[i:i + batch_size]
            with autocast(placement):
                out = model(xb)
            loss_sum += F.cross_entropy(out.float(), yb, reduction="sum").double()
            wrong += (out.argmax(1) != yb).sum()
    model.train(was_training)
    stats = torch.stack([loss_sum, wrong.double()]).tolist()  # the one host sync
    return stats[0] / len(y), 100.0 * stats[1] / len(y)


# ---------------------------------------------------------------- checkpoints


def load_checkpoint(path: Path, expected_hash: str,
                    warn: Callable[[str], None]) -> dict[str, Any] | None:
    """The saved state when it is readable and from the same run config; else None, with a
    warning that says why the run starts afresh."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            raise ValueError("unknown checkpoint layout")
    except Exception as e:  # truncated, corrupt or foreign file: never fatal, never trusted
        warn(f"checkpoint {path} is unreadable ({type(e).__name__}); starting afresh")
        return None
    if state.get("identity_hash") != expected_hash:
        warn(f"checkpoint {path} was written for a different run config; starting afresh")
        return None
    return state


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


def training_batch(dd: data_mod.DeviceData, idx: torch.Tensor, generator: torch.Generator,
                   train: TrainConfig, placement: Placement) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented, normalised images and labels at `idx`, made on the device (section 4.2:
    4-pixel zero padding, random 32x32 crop, random horizontal flip)."""
    x = data_mod.augment(dd.train_x[idx], dd.mean, generator, train.augment.padding,
                         train.augment.flip, std=dd.std)
    if placement.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, dd.train_y[idx]


def epoch_batches(dd: data_mod.DeviceData, seed: int, epoch: int, steps: int,
                  train: TrainConfig, placement: Placement
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The first `steps` augmented batches of an epoch: a fresh permutation each epoch, and
    shuffle and augmentation drawn from a generator seeded by (seed, epoch), so that a resumed
    run sees exactly the batches an uninterrupted one would."""
    gen = torch.Generator(device=placement.device).manual_seed(epoch_seed(seed, epoch))
    order = data_mod.epoch_order(len(dd.train_y), gen, placement.device)
    b = train.batch_size
    for k in range(steps):
        yield training_batch(dd, order[k * b:(k + 1) * b], gen, train, placement)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, placement: Placement) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step; returns the loss and the count of wrong predictions as device tensors
    (reading them here would make every step wait for the device)."""
    with autocast(placement):
        out = model(x)
        loss = F.cross_entropy(out.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (out.detach().argmax(1) != y).sum()


def make_optimizer(model: torch.nn.Module, train: TrainConfig,
                   placement: Placement) -> torch.optim.Optimizer:
    """SGD of section 4.2 (momentum 0.9, weight decay 1e-4 on all weights)."""
    kwargs: dict[str, Any] = {"fused": True} if placement.fused_optimizer else {"foreach": True}
    return torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                           weight_decay=train.weight_decay, **kwargs)


def setup_model(model_name: str, shortcut: str, train: TrainConfig, placement: Placement,
                seed: int, width: int | None = None
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


def train_run(study: Study, model_name: str, seed: int, checkpoint_path: Path,
              placement: Placement, log: Callable[[str], None] = print,
              warn: Callable[[str], None] | None = None) -> RunResult:
    """Train one (model, seed) to the end of the schedule, resuming from the checkpoint."""
    warn = warn or (lambda m: warnings.warn(m, stacklevel=2))
    started = time.perf_counter()
    identity = run_identity(study, model_name, seed)
    ident_hash = identity_hash(identity)
    train = study.train
    device = placement.device

    arrays = data_mod.load_arrays(study.data)  # refuses an empty training or test set
    dd = data_mod.to_device(arrays, device, study.data.normalization)

    model, step_model, optimizer = setup_model(model_name, study.study.shortcut, train,
                                               placement, seed,
                                               study.model_width(model_name))
    parameters = count_parameters(model)

    iteration, epoch, rows = 0, 0, []
    warming_up = warmup_applies(identity["depth"], train.warmup)
    state = load_checkpoint(checkpoint_path, ident_hash, warn)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        iteration, epoch = state["iteration"], state["epoch"]
        warming_up, rows = state["warming_up"], list(state["rows"])
        log(f"resuming {model_name} seed {seed} from iteration {iteration} (epoch {epoch})")
    resumed_at = iteration

    per_epoch = steps_per_epoch(len(dd.train_y), train.batch_size)
    total = total_iterations(train, len(dd.train_y))
    status = rows[-1]["status"] if rows else "ok"

    while iteration < total and status == "ok":
        epoch += 1
        t0 = time.perf_counter()
        steps = min(per_epoch, total - iteration)
        meter = DeviceMeter(device)
        window_wrong = torch.zeros((), dtype=torch.int64, device=device)
        window_seen = 0
        lr = None
        for x, y in epoch_batches(dd, seed, epoch, steps, train, placement):
            new_lr = lr_at(iteration, train, warming_up, per_epoch)
            if new_lr != lr:
                lr = new_lr
                set_lr(optimizer, lr)
            loss, batch_wrong = train_step(step_model, optimizer, x, y, placement)
            meter.add(loss, batch_wrong, len(y))
            iteration += 1
            if warming_up:
                # Section 4.2: "0.01 to warm up the training until the training error is
                # below 80% (about 400 iterations), and then go back to 0.1".
                window_wrong += batch_wrong
                window_seen += len(y)
                if iteration % train.warmup.check_every == 0:
                    err = 100.0 * window_wrong.item() / window_seen
                    window_wrong.zero_()
                    window_seen = 0
                    if err < train.warmup.until_train_error_pct:
                        warming_up = False
                        log(f"warm-up ends at iteration {iteration} (running training "
                            f"error {err:.1f}%)")
        train_loss, train_error = meter.read()  # the epoch's one host sync
        train_seconds = time.perf_counter() - t0
        seen = meter.seen
        if not math.isfinite(train_loss):
            status = "diverged"
            log(f"{model_name} seed {seed}: non-finite training loss in epoch {epoch}; "
                "stopping this run and keeping its rows")
        test_loss, test_error = evaluate(model, dd.test_x, dd.test_y, dd.mean,
                                         train.eval_batch_size, placement, dd.std)
        val_loss, val_error = evaluate(model, dd.val_x, dd.val_y, dd.mean,
                                       train.eval_batch_size, placement, dd.std)
        epoch_seconds = time.perf_counter() - t0
        row = _row(
            identity, epoch=epoch, iteration=iteration, lr=lr,
            train_loss=train_loss, train_error_pct=train_error,
            val_loss=None if math.isnan(val_loss) else val_loss,
            val_error_pct=None if math.isnan(val_error) else val_error,
            test_loss=test_loss, test_error_pct=test_error,
            epoch_seconds=epoch_seconds, images_per_second=seen / train_seconds,
            status=status,
        )
        rows.append(row)
        left = (total - iteration) * epoch_seconds / steps
        log(f"{model_name} seed {seed} | epoch {epoch} | iter {iteration}/{total} "
            f"| lr {lr:g} | train loss {train_loss:.4f} error {train_error:.2f}% | test error "
            f"{test_error:.2f}% | {seen / train_seconds:,.0f} img/s | left {_hms(left)}")
        save_torch({
            "version": CHECKPOINT_VERSION, "identity_hash": ident_hash, "identity": identity,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "iteration": iteration, "epoch": epoch, "warming_up": warming_up, "rows": rows,
        }, checkpoint_path)

    return RunResult(rows=rows, status=status, model=model, parameters=parameters,
                     identity=identity, wall_seconds=time.perf_counter() - started,
                     resumed_at_iteration=resumed_at, data=data_mod.describe(arrays))


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

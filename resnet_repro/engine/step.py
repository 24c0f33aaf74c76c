"""The training step of section 4.2 (SGD with momentum 0.9 and weight decay 1e-4 on a batch of
128 augmented images) over fixed buffers, so that it can run as compiled graphs.

Small CIFAR nets at batch 128 are launch-bound on a GPU: an eager ResNet-20 step issues a few
hundred kernels, ResNet-110 over a thousand. Everything a step needs therefore lives in
tensors at fixed addresses, filled in place:

- each epoch's randomness (the permutation, the crop corners and the flips) is drawn once at
  the epoch's start from the (seed, epoch) generator, outside any graph, into buffers that
  the step reads by a step counter held on the device; a resumed run draws what an
  uninterrupted one would, and every `compile` mode draws the same augmentation;
- the learning rate is a device tensor updated in place, so schedule milestones and the end
  of the warm-up never recompile anything;
- the loss and error sums are device tensors, read once per epoch (`read_meter`).

`compile` (config `device.compile`) chooses how the step runs:

- ``eager``: no compilation;
- ``model``: the net's forward (and its backward) compiled, the rest eager;
- ``step``: two graphs per step and no graph break: the batch gather, the augmentation, the
  forward, the loss and the meters in one compiled call (whose backward AOTAutograd compiles
  with it), then the SGD update with momentum and weight decay and the zeroing of the
  gradients in a second one. The update calls torch.optim's functional `sgd` on the
  optimizer's own momentum buffers: `Optimizer.step` breaks the graph on purpose, and the
  optimizer object still holds the state that checkpoints save and resume.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch.optim.sgd import sgd

from .. import data as data_mod
from ..config import TrainConfig
from .devices import Placement
from .schedule import epoch_seed

COMPILE_MODES = ("eager", "model", "step")


def autocast(placement: Placement):
    if placement.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(placement.device.type, dtype=placement.autocast_dtype)


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


def momentum_buffers(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer's momentum buffers, created as zeros where a step has not made them yet.
    With dampening 0, SGD's first step sets the buffer to the gradient, which is what a zero
    buffer gives too (0.9 * 0 + g), so starting from zeros changes no number."""
    out = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            out.append(state["momentum_buffer"])
    return out


class EpochDraws:
    """One epoch's randomness in fixed buffers: the batches' image indices [steps, b], crop
    corners [steps, 2, b] and flips [steps, b], for the `steps` full batches of an epoch."""

    def __init__(self, steps: int, batch_size: int, train: TrainConfig, device: torch.device):
        self.steps, self.batch_size, self.device = steps, batch_size, device
        self.padding, self.flip = train.augment.padding, train.augment.flip
        self.order = torch.zeros((steps, batch_size), dtype=torch.int64, device=device)
        self.offsets = (
            torch.zeros((steps, 2, batch_size), dtype=torch.int64, device=device)
            if self.padding > 0
            else None
        )
        self.flips = (
            torch.zeros((steps, batch_size), dtype=torch.bool, device=device) if self.flip else None
        )

    def draw(self, seed: int, epoch: int, n_train: int) -> None:
        """Fill the buffers in place from the (seed, epoch) generator: a fresh permutation of
        the training set, then every batch's crop corners and flips."""
        gen = torch.Generator(device=self.device).manual_seed(epoch_seed(seed, epoch))
        order = data_mod.epoch_order(n_train, gen, self.device)
        self.order.copy_(order[: self.steps * self.batch_size].view(self.steps, -1))
        offsets, flips = data_mod.draw_augmentation(
            (self.steps, self.batch_size), gen, self.device, self.padding, self.flip
        )
        if offsets is not None:
            self.offsets.copy_(offsets)
        if flips is not None:
            self.flips.copy_(flips)


class TrainStep:
    """The training step over the device-resident data `dd`. Per epoch: `start_epoch`, then
    `set_lr` when the rate changes and one call per step; `read_meter` at the epoch's end."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        dd: data_mod.DeviceData,
        train: TrainConfig,
        placement: Placement,
        steps_per_epoch: int,
    ):
        if placement.compile not in COMPILE_MODES:
            raise ValueError(f"compile {placement.compile!r}; allowed: {list(COMPILE_MODES)}")
        device = placement.device
        self.model, self.optimizer, self.dd = model, optimizer, dd
        self.train, self.placement = train, placement
        # A set smaller than one batch (tiny test studies) is one batch (schedule.steps_per_epoch).
        self.batch_size = min(train.batch_size, len(dd.train_y))
        self.draws = EpochDraws(steps_per_epoch, self.batch_size, train, device)
        self.fill = data_mod.border(dd.mean, dd.std)
        self.k = torch.zeros((), dtype=torch.int64, device=device)  # step within the epoch
        # Shape (1,), not a 0-d tensor: Dynamo guards on a 0-d float tensor's value (not NaN),
        # which reads it on the host at every call.
        self.loss_sum = torch.zeros(1, dtype=torch.float64, device=device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=device)
        self.meters = [(self.loss_sum, self.wrong)]  # every (loss sum, wrong) the step adds to
        self.seen = 0
        self.lr = torch.tensor(float(train.lr), dtype=torch.float32, device=device)
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.mode = placement.compile
        if self.mode == "step":
            self.buffers = momentum_buffers(optimizer)
            options = {"fullgraph": True, "mode": placement.compile_mode}
            self._forward = torch.compile(self._forward_loss, **options)
            self._update = torch.compile(self._sgd_update, **options)
        else:
            net = (
                torch.compile(model, mode=placement.compile_mode) if self.mode == "model" else model
            )
            self._net = net

    # -------------------------------------------------------------- per epoch and per step

    def start_epoch(self, seed: int, epoch: int) -> None:
        self.draws.draw(seed, epoch, len(self.dd.train_y))
        self.k.zero_()
        self.reset_meter()

    def reset_meter(self) -> None:
        self.loss_sum.zero_()
        self.wrong.zero_()
        self.seen = 0

    def add_meter(self, loss_sum: torch.Tensor, wrong: torch.Tensor) -> None:
        """Let every step also add its loss (times the batch size; float64, shape (1,)) and
        wrong count (int64, 0-d) into these tensors, e.g. the training windows'. Before the
        first step: a compiled step is traced with the meters it has then."""
        self.meters.append((loss_sum, wrong))

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)  # the compiled update reads the tensor: no recompilation
        for group in self.optimizer.param_groups:  # the eager update, and checkpoints
            group["lr"] = lr

    def __call__(
        self, x: torch.Tensor | None = None, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on the epoch's next batch (or on the given batch `x`, `y`: the
        benchmark's other input pipelines); the loss and the count of wrong predictions as
        device tensors (reading them here would make every step wait for the device)."""
        self.seen += self.batch_size if y is None else len(y)
        if self.mode == "step":
            loss, wrong = self._forward(x, y)
            loss.backward()
            self._update()
            return loss.detach(), wrong
        return self._eager_step(x, y)

    def read_meter(self) -> tuple[float, float, int]:
        """(mean loss, error %, images) of the epoch so far: the epoch's one host sync."""
        if self.seen == 0:
            return float("nan"), float("nan"), 0
        stats = torch.cat([self.loss_sum, self.wrong.double().view(1)]).tolist()
        return stats[0] / self.seen, 100.0 * stats[1] / self.seen, self.seen

    # -------------------------------------------------------------- the step's parts

    def batch(self, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The augmented, normalised images and labels of step `k` of the epoch (section 4.2:
        4-pixel zero padding, random 32x32 crop, random horizontal flip), made on the device."""
        d, dd = self.draws, self.dd
        # index_select with a 1-element index: indexing by a 0-d tensor would read it on
        # the host (`item`) inside a compiled graph.
        k1 = k.view(1)

        def row(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.index_select(0, k1)[0]

        idx = row(d.order)
        x = data_mod.normalize(dd.train_x[idx], dd.mean, dd.std)
        x = data_mod.crop_and_flip(x, row(d.offsets), row(d.flips), d.padding, self.fill)
        if self.placement.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, dd.train_y[idx]

    def _loss(self, net, x: torch.Tensor, y: torch.Tensor):
        with autocast(self.placement):
            out = net(x)
            loss = F.cross_entropy(out.float(), y)
        wrong = (out.detach().argmax(1) != y).sum()
        summed = loss.detach().double() * y.shape[0]
        for loss_sum, wrong_sum in self.meters:
            loss_sum.add_(summed)
            wrong_sum.add_(wrong)
        return loss, wrong

    def _forward_loss(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        if x is None:
            x, y = self.batch(self.k)
            self.k.add_(1)
        return self._loss(self.model, x, y)

    @torch.no_grad()
    def _sgd_update(self) -> None:
        grads = [p.grad for p in self.params]
        sgd(
            self.params,
            grads,
            self.buffers,
            weight_decay=self.train.weight_decay,
            momentum=self.train.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            foreach=True,
        )
        torch._foreach_zero_(grads)

    def _eager_step(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        if x is None:
            x, y = self.batch(self.k)
            self.k.add_(1)
        loss, wrong = self._loss(self._net, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), wrong

"""The three measured variants, which differ only in how the training batches are made:

* `measure_trainer`: our training step in the trainer's own loop (`engine.loop.StepLoop`, as
  `train.train_run` runs it), data and augmentation on the device;
* `measure_dataloader`: torchvision transforms over PIL images in a DataLoader with workers,
  the conventional pipeline;
* `measure_ceiling`: forward, backward and step on one fixed batch already on the device.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from .. import data as data_mod
from ..config import DataConfig, Study, TrainConfig
from ..engine.devices import Placement
from ..engine.loop import StepLoop
from ..engine.run_setup import setup_model
from ..engine.schedule import steps_per_epoch
from ..engine.step import TrainStep
from .timing import time_steps

VARIANTS = ("trainer", "dataloader", "ceiling")


def _bench_train_config(study: Study, batch_size: int) -> TrainConfig:
    return dataclasses.replace(study.train, batch_size=batch_size)


def bench_arrays(cfg: DataConfig) -> data_mod.CifarArrays:
    """The training images of the study's data settings (split and subset applied as in
    training); the test set is cut to one image, since nothing is evaluated."""
    return data_mod.load_arrays(dataclasses.replace(cfg, test_subset=1))


def measure_trainer(
    dd: data_mod.DeviceData,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    before_timing: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Our training step as train.train_run runs it, data on the device: the trainer's own
    host work per step and per epoch (engine/loop.py: the scheduled lr, the training windows,
    each epoch's draws). The warm-up of the deepest nets, a passing phase, is left out."""
    train = _bench_train_config(study, batch_size)
    per_epoch = steps_per_epoch(len(dd.train_y), batch_size)
    train_step = _train_step(dd, model_name, study, placement, train, seed, per_epoch)
    # No end of schedule: the benchmark's steps may outnumber a tiny study's iterations.
    loop = StepLoop(train_step, train, total=sys.maxsize)

    def step() -> int:
        if loop.epoch_done:
            loop.start_epoch(seed, loop.epoch + 1)
        loop()
        return train_step.batch_size

    return time_steps(step, warmup_steps, steps, placement, train_step, before_timing)


def _train_step(
    dd: data_mod.DeviceData,
    model_name: str,
    study: Study,
    placement: Placement,
    train: TrainConfig,
    seed: int,
    per_epoch: int = 1,
) -> TrainStep:
    """A fresh model, optimizer and step, built as train.train_run builds them."""
    model, optimizer = setup_model(
        model_name, study.study.shortcut, train, placement, seed, study.model_width(model_name)
    )
    return TrainStep(model, optimizer, dd, train, placement, per_epoch)


class PilCifar(torch.utils.data.Dataset):
    """CIFAR images held as uint8 HWC arrays and handed to the transform as PIL images, the
    way torchvision.datasets.CIFAR10 does it."""

    def __init__(self, images_nchw: np.ndarray, labels: np.ndarray, transform: Callable):
        self.images = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1))
        self.labels = labels.astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def conventional_transform(
    train_x: np.ndarray, padding: int = 4, flip: bool = True, divide_by_std: bool = False
):
    """RandomCrop(32, padding) + RandomHorizontalFlip + ToTensor + Normalize. Normalize gets
    the per-channel training mean and std 1, the nearest torchvision gets to the paper's
    per-pixel mean subtraction (the cost is the same either way), or the per-channel std
    with `divide_by_std` (data.normalization: per_channel_mean_std, the ImageNet-style
    recipe)."""
    from torchvision import transforms as T

    per_channel = train_x.reshape(len(train_x), 3, -1).transpose(1, 0, 2).reshape(3, -1)
    mean = (per_channel.mean(axis=1) / 255.0).tolist()
    std = (per_channel.std(axis=1) / 255.0).tolist() if divide_by_std else [1.0, 1.0, 1.0]
    steps: list[Any] = [T.RandomCrop(32, padding=padding)] if padding > 0 else []
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)


def measure_dataloader(
    arrays: data_mod.CifarArrays,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    workers: int,
) -> dict[str, Any]:
    """The conventional input pipeline: PIL images, torchvision transforms, DataLoader workers."""
    device = placement.device
    train = _bench_train_config(study, batch_size)
    # The same step as the trainer's, fed the DataLoader's batches instead of its own.
    dd = data_mod.to_device(arrays, device, study.data.normalization)
    train_step = _train_step(dd, model_name, study, placement, train, seed)
    dataset = PilCifar(
        arrays.train_x,
        arrays.train_y,
        conventional_transform(
            arrays.train_x,
            train.augment.padding,
            train.augment.flip,
            divide_by_std=study.data.normalization == "per_channel_mean_std",
        ),
    )
    pin = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=pin,
        drop_last=len(dataset) >= batch_size,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:  # epoch after epoch; persistent workers survive the epoch boundary
            yield from loader  # noqa: F821 (deleted only after the last step)

    it = batches()

    def step() -> int:
        xb, yb = next(it)  # noqa: F821 (deleted only after the last step)
        x = xb.to(device, non_blocking=True)
        y = yb.to(device, non_blocking=True)
        if placement.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        train_step(x, y)
        return len(yb)

    try:
        result = time_steps(step, warmup_steps, steps, placement, train_step)
    finally:
        it.close()  # ends the epoch's iterator; dropping the loader stops the workers
        del it, loader
        gc.collect()
    result.update(workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    return result


def measure_ceiling(
    dd: data_mod.DeviceData,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
) -> dict[str, Any]:
    """Forward, backward and step on one fixed, already augmented batch on the device."""
    train = _bench_train_config(study, batch_size)
    train_step = _train_step(dd, model_name, study, placement, train, seed)
    train_step.start_epoch(seed, 1)
    # The epoch's first batch; its index on the buffers' device (index_select wants both there).
    first = torch.zeros((), dtype=torch.int64, device=train_step.draws.order.device)
    x, y = (t.clone() for t in train_step.batch(first))

    def step() -> int:
        train_step(x, y)
        return len(y)

    return time_steps(step, warmup_steps, steps, placement, train_step)

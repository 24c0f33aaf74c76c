"""The data on the training device: every split moved there once as uint8 with its training
statistics, and the normalisation and section 4.2 augmentation of each batch made there with
batched tensor ops only, so a GPU never waits on the host."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .arrays import CifarArrays, DataError


@dataclass(eq=False)
class DeviceData:
    """The whole data set on one device as uint8 (150 MB for CIFAR-10), plus the training
    images' mean on a 0..1 scale: per pixel [3, 32, 32] (the paper), or per channel [3, 1, 1]
    with the per-channel std beside it (data.normalization: per_channel_mean_std)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor | None = None


def per_pixel_mean(train_x: torch.Tensor) -> torch.Tensor:
    """float32 [3, 32, 32] on a 0..1 scale (section 4.2: "the per-pixel mean subtracted")."""
    n = train_x.shape[0]
    if n == 0:
        raise DataError(
            "the per-pixel mean needs at least one training image; "
            "lower data.val_size or raise data.train_subset"
        )
    total = torch.zeros(train_x.shape[1:], dtype=torch.int64, device=train_x.device)
    # Exact integer sums in chunks: no float copy of the whole set; 50k * 255 fits float32's
    # exact integer range, so the division below is the only rounding.
    for s in range(0, n, 8192):
        total += train_x[s : s + 8192].sum(0, dtype=torch.int64)
    return total.to(torch.float32) / (255.0 * n)


def per_channel_mean_std(train_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 [3, 1, 1] mean and std (population, over all training pixels of a channel) on
    a 0..1 scale: the per-channel normalisation of the ImageNet-style recipe, computed from
    the training images actually used (the write-up hard-codes constants for all 50k)."""
    n = train_x.shape[0]
    if n == 0:
        raise DataError(
            "the per-channel mean and std need at least one training image; "
            "lower data.val_size or raise data.train_subset"
        )
    c = train_x.shape[1]
    total = torch.zeros(c, dtype=torch.float64, device=train_x.device)
    squares = torch.zeros(c, dtype=torch.float64, device=train_x.device)
    for s in range(0, n, 8192):
        chunk = train_x[s : s + 8192].to(torch.float64).transpose(0, 1).reshape(c, -1) / 255.0
        total += chunk.sum(1)
        squares += chunk.square().sum(1)
    count = n * train_x.shape[2] * train_x.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float().reshape(c, 1, 1), std.float().reshape(c, 1, 1)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 batch -> float32 x/255 - mean. Only the mean is subtracted, as in section 4.2
    (no division by a standard deviation), unless `std` is given (per-channel recipe)."""
    out = x.to(torch.float32).div_(255.0).sub_(mean)
    return out if std is None else out.div_(std)


def augment(
    x: torch.Tensor,
    mean: torch.Tensor,
    generator: torch.Generator,
    padding: int = 4,
    flip: bool = True,
    std: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training augmentation of section 4.2 on a uint8 batch, on x's device:
    normalize, pad `padding` zeros on each side, take a random 32x32 crop per image and flip
    it horizontally with probability 0.5 per image. All randomness comes from `generator`,
    which must live on x's device (`draw_augmentation`, then `crop_and_flip`)."""
    offsets, flips = draw_augmentation((x.shape[0],), generator, x.device, padding, flip)
    return crop_and_flip(normalize(x, mean, std), offsets, flips, padding, border(mean, std))


def draw_augmentation(
    shape: tuple[int, ...],
    generator: torch.Generator,
    device: torch.device | str,
    padding: int = 4,
    flip: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The random part of the augmentation for images laid out as `shape` (a batch (b,), or
    a whole epoch (steps, b)): crop corners int64 [*shape[:-1], 2, b] in padded coordinates
    (0 .. 2*padding per axis; None without padding) and flips bool `shape` (None without
    flipping). Drawn in that order from `generator`."""
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    *lead, b = shape
    offsets = (
        torch.randint(0, 2 * padding + 1, (*lead, 2, b), generator=generator, device=device)
        if padding > 0
        else None
    )
    flips = torch.rand(shape, generator=generator, device=device) < 0.5 if flip else None
    return offsets, flips


def border(mean: torch.Tensor, std: torch.Tensor | None) -> torch.Tensor | float:
    """The value of padded pixels after normalisation. Zero after mean subtraction, following
    the paper's order (mean subtracted from the input, then padded). With `std` (the
    ImageNet-style recipe) the border is a black pixel instead, -mean/std after normalising,
    as torchvision's RandomCrop(padding=4) before Normalize gives in the write-up whose recipe
    that is."""
    return 0.0 if std is None else -mean / std


def crop_and_flip(
    x: torch.Tensor,
    offsets: torch.Tensor | None,
    flips: torch.Tensor | None,
    padding: int,
    fill: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Crop each normalised image of x [b, c, h, w] at its corner in `offsets` [2, b] out of
    the image padded by `padding` pixels of `fill`, and flip it where `flips` [b] is true.
    No padded copy is built: each output pixel gathers its source pixel, and pixels that fall
    in the border are set to `fill`. Pure tensor ops with fixed shapes, so the step can be
    compiled into one graph."""
    b, c, h, w = x.shape
    dev = x.device
    if isinstance(fill, torch.Tensor):
        fill = fill.expand(x.shape[1:])
    rows = cols = None
    if offsets is not None:
        rows = torch.arange(h, device=dev) + (offsets[0] - padding)[:, None]  # [b, h] source
        cols = torch.arange(w, device=dev) + (offsets[1] - padding)[:, None]  # [b, w] source
    if flips is not None:
        if cols is None:
            cols = torch.arange(w, device=dev).expand(b, w)
        # Flipping the crop reverses the order of its source columns.
        cols = torch.where(flips[:, None], cols.flip(1), cols)
    out = x
    if rows is not None:
        ok_r = (rows >= 0) & (rows < h)
        out = out.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
        out = torch.where(ok_r[:, None, :, None], out, fill)
    if cols is not None:
        ok_c = (cols >= 0) & (cols < w)
        out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
        out = torch.where(ok_c[:, None, None, :], out, fill)
    return out


def epoch_order(n: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """A random permutation of range(n) on `device`; the caller draws a new one each epoch."""
    return torch.randperm(n, generator=generator, device=device)


def to_device(
    arrays: CifarArrays, device: torch.device | str, normalization: str = "per_pixel_mean"
) -> DeviceData:
    """Move every split to `device` once, as uint8, and compute the training statistics of
    `normalization` (config data.normalization) there."""

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    train_x = put(arrays.train_x)
    return DeviceData(
        train_x=train_x,
        train_y=put(arrays.train_y.astype(np.int64)),
        val_x=put(arrays.val_x),
        val_y=put(arrays.val_y.astype(np.int64)),
        test_x=put(arrays.test_x),
        test_y=put(arrays.test_y.astype(np.int64)),
        **_statistics(train_x, normalization),
    )


def _statistics(train_x: torch.Tensor, normalization: str) -> dict[str, torch.Tensor]:
    if normalization == "per_pixel_mean":
        return {"mean": per_pixel_mean(train_x)}
    if normalization == "per_channel_mean_std":
        mean, std = per_channel_mean_std(train_x)
        return {"mean": mean, "std": std}
    raise ValueError(
        f"normalization {normalization!r} is not allowed; allowed values: "
        "['per_pixel_mean', 'per_channel_mean_std']"
    )

"""The input normalisation a net was trained with, stored inside its model.pt.

Our runs subtract the per-pixel mean of the training images on a 0..1 scale (He et al. 2015,
section 4.2: "the per-pixel mean subtracted"). Imported nets were trained with their own:
akamaster/pytorch_resnet_cifar10 divides by 255 and standardises each channel with the
ImageNet mean and std; wooyeolBaek/deep-residual-learning subtracts the per-pixel mean of its
training images. A net fed inputs normalised another way scores worse for no reason of its
own, so every place that feeds a model applies the record saved with it.

A record is a plain dict (it loads with `torch.load(weights_only=True)`):

    {"kind": "per_pixel_mean", "mean": float32 tensor [3, 32, 32] | None, "note": str}
    {"kind": "per_channel", "mean": [r, g, b], "std": [r, g, b], "note": str}

The per-pixel mean is the tensor itself: our runs store the mean they trained with, an import
the mean its authors used, so a model file is evaluated the same way by every study that
reads it, whatever that study's data subsets. A mean of None is found only in model files
written before the mean was stored: it stands for the per-pixel training mean of the data at
hand, as it did then (`needs_data_mean`; the model-file reader warns about it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

KINDS = ("per_pixel_mean", "per_channel")

# akamaster/pytorch_resnet_cifar10 feeds its nets 0..1 inputs standardised per channel with
# these values: the ImageNet statistics, not CIFAR-10's.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def per_pixel_mean(
    mean: torch.Tensor | None,
    note: str = "per-pixel mean of the training images, 0..1 scale (He et al. 2015, section 4.2)",
) -> dict[str, Any]:
    """The record of a net fed its training images' per-pixel mean subtracted: `mean` is that
    mean ([3, 32, 32], 0..1 scale), stored with the net as a float32 CPU tensor. None only
    for what model files without a stored mean stand for (`needs_data_mean`)."""
    if mean is not None:
        mean = torch.as_tensor(mean).detach().to("cpu", torch.float32).contiguous().clone()
    return {"kind": "per_pixel_mean", "mean": mean, "note": note}


def needs_data_mean(record: Mapping[str, Any]) -> bool:
    """True for a per-pixel record without its mean (a model file from before the mean was
    stored): its inputs depend on the training images of whatever data reads it."""
    return record["kind"] == "per_pixel_mean" and record.get("mean") is None


def per_channel(mean: tuple[float, ...], std: tuple[float, ...], note: str) -> dict[str, Any]:
    return {
        "kind": "per_channel",
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "note": note,
    }


def check(record: Any) -> dict[str, Any]:
    """The record if it is well formed; ValueError naming what is wrong otherwise."""
    if not isinstance(record, Mapping) or record.get("kind") not in KINDS:
        raise ValueError(f"normalisation record must be a dict with kind one of {list(KINDS)}")
    if record["kind"] == "per_channel":
        mean, std = record.get("mean"), record.get("std")
        if (
            not isinstance(mean, (list, tuple))
            or not isinstance(std, (list, tuple))
            or len(mean) != 3
            or len(std) != 3
            or min(std) <= 0
        ):
            raise ValueError("per_channel normalisation needs 3 means and 3 positive stds")
    elif record.get("mean") is not None and tuple(torch.as_tensor(record["mean"]).shape) != (
        3,
        32,
        32,
    ):
        raise ValueError("per_pixel_mean normalisation needs a [3, 32, 32] mean or None")
    return dict(record)


def normalize(
    x: torch.Tensor, record: Mapping[str, Any], data_mean: torch.Tensor | None
) -> torch.Tensor:
    """uint8 batch [N, 3, H, W] -> float32 input of the net, as `record` says.

    `data_mean` is the per-pixel training mean of the data at hand ([3, H, W], 0..1 scale); it
    is used where the record says "per_pixel_mean" without a mean of its own."""
    out = x.to(torch.float32).div_(255.0)
    if record["kind"] == "per_pixel_mean":
        mean = record.get("mean")
        if mean is None:
            if data_mean is None:
                raise ValueError("per_pixel_mean normalisation needs the data's training mean")
            mean = data_mean
        return out.sub_(torch.as_tensor(mean, dtype=torch.float32, device=out.device))
    mean = torch.as_tensor(record["mean"], dtype=torch.float32, device=out.device)
    std = torch.as_tensor(record["std"], dtype=torch.float32, device=out.device)
    return out.sub_(mean[:, None, None]).div_(std[:, None, None])


def describe(record: Mapping[str, Any]) -> str:
    """One line for logs and tables."""
    if record["kind"] == "per_channel":
        return (
            f"0..1 scale, per-channel mean {tuple(record['mean'])} and std {tuple(record['std'])}"
        )
    if needs_data_mean(record):
        return (
            "0..1 scale minus the per-pixel training mean of the data at hand (an old model "
            "file that stores no mean)"
        )
    return "0..1 scale minus the per-pixel training mean stored with the net"

"""Evaluation of a net on original (unaugmented) images: mean loss and top-1 error, in eval
mode and strict fp32. The one loop behind the training curves (`train.evaluate`) and the test
error of a model.pt, ours or imported (`evaluate`); each caller only says how its
net's inputs are made from the uint8 images.

Always fp32, whatever the training precision: the error compared with the paper's must not
carry the rounding of bf16 logits (which flips borderline predictions), nor of TF32
convolutions on CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import progressbar
from ..nets import normalization
from ..results import ResultError


@contextlib.contextmanager
def strict_fp32():
    """No reduced precision inside: cuDNN convolutions may otherwise run in TF32 on CUDA."""
    cudnn = torch.backends.cudnn
    with cudnn.flags(
        enabled=cudnn.enabled,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=False,
    ):
        yield


def loss_and_error(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    inputs: Callable[[torch.Tensor], torch.Tensor],
    on_batch: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and top-1 error (%) of `model` on uint8 images x [N, 3, 32, 32] with
    labels y, both on the model's device, in eval mode (the model's mode is restored after)
    and fp32; (nan, nan) for an empty set. `inputs` turns a uint8 batch into the net's input
    (its normalisation, its memory format); `on_batch` is called after each batch (a progress
    bar). The sums stay on the device; the result is read with one host sync."""
    if len(y) == 0:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad(), strict_fp32():
        for i in range(0, len(y), batch_size):
            out = model(inputs(x[i : i + batch_size])).float()
            yb = y[i : i + batch_size]
            loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
            wrong += (out.argmax(1) != yb).sum()
            if on_batch is not None:
                on_batch()
    model.train(was_training)
    stats = torch.stack([loss_sum, wrong.double()]).tolist()  # the one host sync
    return stats[0] / len(y), 100.0 * stats[1] / len(y)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: Mapping[str, Any],
    data_mean: torch.Tensor | None,
    batch_size: int,
    bar: progressbar.Bar = progressbar.NULL,
) -> tuple[float, float]:
    """Mean cross-entropy and top-1 error (%) on the original images, in eval mode and fp32
    (evaluation.loss_and_error, the loop train.evaluate uses for the training curves), with
    the inputs normalised as the net's record `norm` says. x is uint8 [N, 3, 32, 32], on the
    model's device."""
    if len(y) == 0:
        raise ResultError("evaluation needs at least one test image")
    bar.start(-(-len(y) // batch_size))
    return loss_and_error(
        model,
        x,
        y,
        batch_size,
        lambda xb: normalization.normalize(xb, norm, data_mean),
        bar.advance,
    )

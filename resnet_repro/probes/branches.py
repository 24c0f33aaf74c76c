"""How close each block stays to the identity: the size of what its residual branch adds
relative to what passes through, ||F(x)|| / ||s(x)||, over the test images.

He et al. 2015 (section 4.2, Figure 7) argue from layer-response stds that residual
functions are "generally closer to zero than the non-residual functions"; this measures it
per block and per image. For a residual block y = relu(F(x) + s(x)) the ratio is
||F(x)|| / ||s(x)|| (s the shortcut: x itself, or for a downsampling block x subsampled and
zero-padded, option A). A plain block has no F: its relative change ||y - x|| / ||x|| is
measured where its input and output shapes match ("change"); the others get "none".
Norms are per image over all channels and positions; the net runs in eval mode and fp32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from .. import progressbar
from ..nets.cifar_nets import changes_shape, is_residual, named_blocks
from . import block_table, eval_mode


def _norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).double().norm(dim=1)


def block_ratios(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor | None]:
    """Per block, the per-image ratio (float64, one value per image of `x`) or None where no
    ratio is defined. `x` is a batch of normalised images."""
    out: list[torch.Tensor | None] = []
    h = model.stem(x)
    for _, block in named_blocks(model):
        y = block(h)
        if is_residual(block):
            out.append(_norm(block.branch(h)) / _norm(block.shortcut(h)))
        elif not changes_shape(block):
            out.append(_norm(y - h) / _norm(h))
        else:
            out.append(None)
        h = y
    return out


def branch_magnitudes(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """One row per block: block, name, stage, measure ("branch", "change" or "none"),
    ratio_mean and ratio_std (population std) over all images, images. Sums are kept in
    float64 batch by batch, so memory does not grow with the number of images. `bar` counts
    batches (started by the caller, who knows how many there are)."""
    blocks = block_table(model)
    n = len(blocks)
    sums, sumsqs, count = [0.0] * n, [0.0] * n, 0
    with eval_mode(model), torch.no_grad():
        for x, _ in batches:
            for i, r in enumerate(block_ratios(model, x)):
                if r is not None:
                    sums[i] += float(r.sum())
                    sumsqs[i] += float(torch.square(r).sum())
            count += int(x.shape[0])
            bar.advance()
    if count == 0:
        raise ValueError("branch_magnitudes got no images")
    measure, means, stds = [], [], []
    for i, row in blocks.iterrows():
        if row["residual"]:
            measure.append("branch")
        elif not row["changes_shape"]:
            measure.append("change")
        else:
            measure.append("none")
        mean = sums[i] / count
        var = max(sumsqs[i] / count - mean * mean, 0.0)
        means.append(math.nan if measure[-1] == "none" else mean)
        stds.append(math.nan if measure[-1] == "none" else math.sqrt(var))
    return blocks[["block", "name", "stage"]].assign(
        measure=measure, ratio_mean=means, ratio_std=stds, images=count
    )

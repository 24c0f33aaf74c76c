"""How much each residual block changes its input: ||y - x|| / ||x|| and ||F(x)|| / ||x|| per
block and per image, over the test images.

He et al. 2015 (section 4.2, Figure 7) read their layer-response stds as "residual functions
might be generally closer to zero than the non-residual functions" and "when there are more
layers, an individual layer of ResNets tends to modify the signal less". This measures that
per block: for a residual block y = relu(F(x) + s(x)) with input x,

- change = ||y - x|| / ||x||: how far the block's output is from its input, the distance
  from the identity (y after the final ReLU, what the next block receives);
- branch = ||F(x)|| / ||x||: the size of what the residual branch adds (F before the
  addition).

A block whose branch is zero has change = branch = 0 (its input is a ReLU output, so the
final ReLU passes it on). Downsampling blocks are not measured (`measurable` False): their
output has another shape than their input, and option A's shortcut zero-pads half of the
output channels, so neither ratio is a distance from the identity there.

Plain nets are refused: nothing makes channel i of a plain block's output correspond to
channel i of its input, so ||y - x|| / ||x|| of two unrelated vectors of similar size (about
sqrt(2)) would be read as a distance from the identity.

Norms are per image over all channels and positions; the net runs in eval mode and fp32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from .. import progressbar
from ..config import AnalysisConfig
from ..nets.anatomy import changes_shape, is_residual, named_blocks
from . import block_table, eval_mode
from .context import ProbeContext


def _norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).double().norm(dim=1)


def block_ratios(
    model: nn.Module, x: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Per block, the per-image (change, branch) ratios (float64, one value per image of `x`),
    or None for a block that changes the shape. `x` is a batch of normalised images."""
    blocks = named_blocks(model)
    if not blocks or not all(is_residual(b) for _, b in blocks):
        raise ValueError(
            "branch magnitudes need a residual net: a plain block's output channels need not "
            "match its input's, so ||y - x|| / ||x|| is no distance from the identity there"
        )
    out: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    h = model.stem(x)
    for _, block in blocks:
        f = block.branch(h)
        y = torch.relu(f + block.shortcut(h))  # = block(h), with F(x) kept
        if changes_shape(block):
            out.append(None)
        else:
            size = _norm(h)
            out.append((_norm(y - h) / size, _norm(f) / size))
        h = y
    return out


def branch_magnitudes(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """One row per block: block, name, stage, blocks, changes_shape, measurable, change_mean,
    change_std, branch_mean, branch_std (population stds over the images; NaN where not
    measurable), images. Sums are kept in float64 batch by batch, so memory does not grow with
    the number of images. `bar` counts batches (started by the caller, who knows how many
    there are)."""
    blocks = block_table(model)
    n = len(blocks)
    sums = [[0.0, 0.0] for _ in range(n)]
    sumsqs = [[0.0, 0.0] for _ in range(n)]
    count = 0
    with eval_mode(model), torch.no_grad():
        for x, _ in batches:
            for i, ratios in enumerate(block_ratios(model, x)):
                if ratios is not None:
                    for j, r in enumerate(ratios):
                        sums[i][j] += float(r.sum())
                        sumsqs[i][j] += float(torch.square(r).sum())
            count += int(x.shape[0])
            bar.advance()
    if count == 0:
        raise ValueError("branch_magnitudes got no images")
    measurable = ~blocks["changes_shape"]
    stats: dict[str, list[float]] = {c: [] for c in ("change", "branch")}
    spreads: dict[str, list[float]] = {c: [] for c in ("change", "branch")}
    for i in range(n):
        for j, what in enumerate(("change", "branch")):
            mean = sums[i][j] / count
            var = max(sumsqs[i][j] / count - mean * mean, 0.0)
            ok = bool(measurable.iloc[i])
            stats[what].append(mean if ok else math.nan)
            spreads[what].append(math.sqrt(var) if ok else math.nan)
    return blocks[["block", "name", "stage", "changes_shape"]].assign(
        blocks=n,
        measurable=measurable.to_numpy(),
        change_mean=stats["change"],
        change_std=spreads["change"],
        branch_mean=stats["branch"],
        branch_std=spreads["branch"],
        images=count,
    )


# ---------------------------------------------------------------- the registry's entry


def measure(ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
    batches = ctx.test_batches(ctx.analysis.probe_images)
    ctx.bar.start(len(batches))
    rows = branch_magnitudes(ctx.model, batches, ctx.bar)
    images = int(rows["images"].max()) if len(rows) else 0
    return rows, f"block changes ||y-x||/||x|| and ||F(x)||/||x|| on {images} test images"


def passes(model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
    """Whole-net image passes: each block's output, and its branch again."""
    return 2.0 * min(a.probe_images, test_images)

"""Path lengths and the gradient per path length of a residual net: Veit, Wilber, Belongie
2016 (arXiv:1605.06431), section 4.2 and Fig. 6.

Unrolled, a net of n residual blocks y = x + F(x) is a collection of 2^n paths; a path of
length k goes through the residual branch of k blocks and the shortcut of the others. So
the number of paths of each length is binomial, C(n, k), centred on n/2 (Fig. 6a).

The gradient that reaches the input through paths of length k is measured as they did: the
forward pass as usual, and in the backward pass the gradient sent through the residual
branch of k randomly chosen blocks and through the shortcut of all others (same forward
values, the other term detached), then the norm of the gradient of the loss at the network's
input, the normalised image (Fig. 6b). Weighted by how many paths have each length, it shows
which lengths carry the total gradient (Fig. 6c): Veit et al. find it comes from short paths
(5-17 of 54 blocks for their ResNet-110).

Veit et al. draw 1,000 measurements per length from batches of training images. Here every
image of a batch gets a path of its own (`routed_forward`): in eval mode the images of a
batch do not interact, so the gradient of the summed loss at image i is that of image i's own
loss through image i's own path, and one backward pass gives as many (image, path)
measurements as the batch holds. Each length's mean comes with its standard error, taken over
the images (their per-image means), since pairs of one image are not independent.

For option-A nets the shortcut of a downsampling block is the zero-padding identity, so the
routing works there too; for projection shortcuts the "shortcut" path goes through the 1x1 conv.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import progressbar
from ..config import AnalysisConfig
from ..nets.anatomy import is_residual, named_blocks
from . import eval_mode
from .context import ProbeContext


def path_length_distribution(n: int) -> pd.DataFrame:
    """Rows length k = 0..n, paths = C(n, k), path_fraction = C(n, k) / 2^n."""
    if n < 0:
        raise ValueError(f"a net has n >= 0 blocks, got {n}")
    k = np.arange(n + 1)
    paths = np.array([float(math.comb(n, int(i))) for i in k])
    return pd.DataFrame({"length": k, "paths": paths, "path_fraction": paths / 2.0**n})


def random_paths(n: int, k: int, count: int, rng: np.random.Generator) -> torch.Tensor:
    """`count` random paths of length k through n blocks, as a bool [count, n] mask: True
    where the path goes through the block's residual branch (k per row), False where it
    takes the shortcut."""
    order = np.argsort(rng.random((count, n)), axis=1)
    mask = np.zeros((count, n), dtype=bool)
    np.put_along_axis(mask, order[:, :k], True, axis=1)
    return torch.from_numpy(mask)


def routed_forward(model: nn.Module, h: torch.Tensor, through_branch: torch.Tensor) -> torch.Tensor:
    """The blocks of `model` on the stem's output `h`, image i's gradient routed along its own
    path: through block b's residual branch where `through_branch[i, b]`, else through its
    shortcut (`relu(F(x) + s(x).detach())` / `relu(F(x).detach() + s(x))`, as
    `cifar_nets.run_block` modes "branch" / "shortcut"). The forward values are the net's."""
    blocks = named_blocks(model)
    if through_branch.shape[1] != len(blocks):
        raise ValueError(f"paths of {through_branch.shape[1]} blocks for a net of {len(blocks)}")
    for b, (_, block) in enumerate(blocks):
        f, s = block.branch(h), block.shortcut(h)
        m = through_branch[:, b].to(h.device).view(-1, *([1] * (h.dim() - 1)))
        h = F.relu(torch.where(m, f, f.detach()) + torch.where(m, s.detach(), s))
    return h


def input_gradient_norm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, through_branch: torch.Tensor
) -> torch.Tensor:
    """Per-image L2 norm of d loss / d x at the network's input (the normalised images `x`),
    image i's gradient sent along the path `through_branch[i]` (`routed_forward`), with the loss
    the cross-entropy of each image summed, so every image's gradient is that of its own loss.
    The model's parameters get no gradient."""
    x = x.detach().clone().requires_grad_(True)
    logits = model.head(routed_forward(model, model.stem(x), through_branch))
    loss = F.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.flatten(1).double().norm(dim=1)


def gradient_per_path_length(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    samples: int,
    seed: int,
    split: str,  # "train" or "test": the images the batches come from (analysis.path_split)
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """For every length k = 0..n: the mean and std (ddof=1) of the per-image gradient norm at
    the input over (image, path) pairs, each image of `batches` with `samples` random paths of
    length k of its own, and the standard error of that mean. The same images serve every
    length. Pairs of one image share it, so the standard error is taken over the images: the
    std of the per-image means (over their `samples` paths) divided by sqrt(images). Per-image
    gradient norms are heavy-tailed (on training images most are fitted and contribute
    little), so the standard error shrinks with more images far more than with more paths per
    image. Columns: length, grad_norm_mean, grad_norm_std, grad_norm_sem, samples (pairs),
    images, image_split (`split`, the images' origin). The net runs in eval mode (BN with
    running statistics) and fp32; paths come from a generator seeded by (seed, k). `bar`
    counts sampled paths x batches."""
    blocks = named_blocks(model)
    if not blocks or not all(is_residual(b) for _, b in blocks):
        raise ValueError("the path experiment needs a residual net (every block with a shortcut)")
    if samples < 1 or not batches:
        raise ValueError("the path experiment needs at least one sample and one batch")
    n = len(blocks)
    images = sum(int(y.shape[0]) for _, y in batches)
    bar.start((n + 1) * len(batches) * samples)
    rows = []
    with eval_mode(model):
        for k in range(n + 1):
            rng = np.random.default_rng([seed, k])
            # [samples, images]: draw d of every image, images in batch order
            draws = []
            for _ in range(samples):
                norms = []
                for x, y in batches:
                    paths = random_paths(n, k, len(y), rng)
                    norms.append(input_gradient_norm(model, x, y, paths).cpu())
                    bar.advance()
                draws.append(torch.cat(norms).numpy())
            values = np.stack(draws)
            per_image = values.mean(axis=0)
            pairs = values.size
            rows.append(
                {
                    "length": k,
                    "grad_norm_mean": float(values.mean()),
                    "grad_norm_std": float(np.std(values, ddof=1)) if pairs > 1 else math.nan,
                    "grad_norm_sem": (
                        float(np.std(per_image, ddof=1) / math.sqrt(images))
                        if images > 1
                        else math.nan
                    ),
                    "samples": pairs,
                    "images": images,
                    "image_split": split,
                }
            )
    return pd.DataFrame(rows)


def path_table(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    samples: int,
    seed: int,
    split: str,  # "train" or "test" (analysis.path_split)
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """`gradient_per_path_length` joined with `path_length_distribution`, plus blocks (n) and
    weighted_grad = path_fraction * grad_norm_mean (Fig. 6c up to the constant 2^n)."""
    grads = gradient_per_path_length(model, batches, samples, seed, split, bar)
    n = len(grads) - 1
    out = path_length_distribution(n).merge(grads, on="length")
    return out.assign(blocks=n, weighted_grad=out["path_fraction"] * out["grad_norm_mean"])


# ---------------------------------------------------------------- the registry's entry


def measure(ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
    a = ctx.analysis
    n = a.path_batches * a.path_batch_size
    batches = ctx.batches(a.path_split, n, a.path_batch_size)
    rows = path_table(ctx.model, batches, a.path_samples, a.probe_seed, a.path_split, ctx.bar)
    return rows, (
        f"gradient per path length at the input, {a.path_samples} random paths per image "
        f"and length on {int(rows['images'].max())} {a.path_split} images"
    )


def passes(model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
    """Whole-net image passes: per block count plus one, per sample, a forward and a backward
    to the input (counted as two forward passes)."""
    images = min(a.path_batches * a.path_batch_size, test_images)
    return (len(named_blocks(model)) + 1) * a.path_samples * images * 3.0

"""Path lengths and the gradient per path length of a residual net: Veit, Wilber, Belongie
2016 (arXiv:1605.06431), section 4.2 and Fig. 6.

Unrolled, a net of n residual blocks y = x + F(x) is a collection of 2^n paths; a path of
length k goes through the residual branch of k blocks and the shortcut of the others. So
the number of paths of each length is binomial, C(n, k), centred on n/2 (Fig. 6a).

The gradient that reaches the input through paths of length k is measured as they did: the
forward pass as usual, and in the backward pass the gradient sent through the residual
branch of k randomly chosen blocks and through the shortcut of all others
(`cifar_nets.run_block` modes "branch" / "shortcut": same forward values, the other term
detached), then the norm of the gradient at the input of the first block (Fig. 6b). Weighted
by how many paths have each length, it shows which lengths carry the total gradient (Fig. 6c):
Veit et al. find it comes from short paths (5-17 of 54 blocks for their ResNet-110).

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
from ..nets.cifar_nets import is_residual, named_blocks, run_blocks
from . import eval_mode


def path_length_distribution(n: int) -> pd.DataFrame:
    """Rows length k = 0..n, paths = C(n, k), path_fraction = C(n, k) / 2^n."""
    if n < 0:
        raise ValueError(f"a net has n >= 0 blocks, got {n}")
    k = np.arange(n + 1)
    paths = np.array([float(math.comb(n, int(i))) for i in k])
    return pd.DataFrame({"length": k, "paths": paths, "path_fraction": paths / 2.0**n})


def sample_path(n: int, k: int, rng: np.random.Generator) -> list[str]:
    """Block modes of one random path of length k: "branch" for k blocks, "shortcut" else."""
    chosen = set(int(i) for i in rng.choice(n, size=k, replace=False))
    return ["branch" if i in chosen else "shortcut" for i in range(n)]


def input_gradient_norm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, modes: Sequence[str]
) -> torch.Tensor:
    """Per-image L2 norm of d loss / d h, h the first block's input (the stem's output), with
    block i run in `modes[i]` and the loss the cross-entropy of each image summed, so every
    image's gradient is that of its own loss. The model's parameters get no gradient."""
    with torch.no_grad():
        h = model.stem(x)
    h.requires_grad_(True)
    loss = F.cross_entropy(model.head(run_blocks(model, h, modes)), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, h)
    return grad.flatten(1).norm(dim=1)


def gradient_per_path_length(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    samples: int,
    seed: int,
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """For every length k = 0..n: the mean (and std) over `samples` random paths of length k
    per batch, and over the batches, of the mean per-image gradient norm at the first block's
    input. Columns: length, grad_norm_mean, grad_norm_std, samples, images. The net runs in
    eval mode (BN with running statistics) and fp32; paths come from a generator seeded by
    (seed, k). `bar` counts sampled paths x batches."""
    blocks = named_blocks(model)
    if not blocks or not all(is_residual(b) for _, b in blocks):
        raise ValueError("the path experiment needs a residual net (every block with a shortcut)")
    if samples < 1 or not batches:
        raise ValueError("the path experiment needs at least one sample and one batch")
    n = len(blocks)
    bar.start((n + 1) * len(batches) * samples)
    rows = []
    with eval_mode(model):
        for k in range(n + 1):
            rng = np.random.default_rng([seed, k])
            values = []
            for x, y in batches:
                for _ in range(samples):
                    values.append(
                        float(input_gradient_norm(model, x, y, sample_path(n, k, rng)).mean())
                    )
                    bar.advance()
            rows.append(
                {
                    "length": k,
                    "grad_norm_mean": float(np.mean(values)),
                    "grad_norm_std": float(np.std(values)),
                    "samples": len(values),
                    "images": sum(int(y.shape[0]) for _, y in batches),
                }
            )
    return pd.DataFrame(rows)


def path_table(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    samples: int,
    seed: int,
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """`gradient_per_path_length` joined with `path_length_distribution`, plus blocks (n) and
    weighted_grad = path_fraction * grad_norm_mean (Fig. 6c up to the constant 2^n)."""
    grads = gradient_per_path_length(model, batches, samples, seed, bar)
    n = len(grads) - 1
    out = path_length_distribution(n).merge(grads, on="length")
    return out.assign(blocks=n, weighted_grad=out["path_fraction"] * out["grad_norm_mean"])

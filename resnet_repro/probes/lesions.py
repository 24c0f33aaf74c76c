"""Lesion study of Veit, Wilber, Belongie 2016, "Residual Networks Behave Like Ensembles of
Relatively Shallow Networks" (arXiv:1605.06431), section 4: delete blocks of a trained net
at test time and measure the test error, with no retraining.

- `single_lesions` (their Fig. 3): each block deleted on its own. A residual block is replaced
  by its shortcut; a plain block by the identity where its input and output shapes match (the
  others cannot be deleted without retraining and are marked `removable = False`).
- `k_lesions` (their Fig. 5a): k removable blocks deleted at once, several seeded random draws
  per k. Veit et al. find that the error of a ResNet grows smoothly with k, while a plain net
  breaks on any deletion.

The net runs in eval mode and fp32 (`cifar_nets.forward_with_modes`); `batches` are (images,
labels) pairs already on the model's device and normalised as for testing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import progressbar
from ..config import AnalysisConfig
from ..nets.anatomy import forward_with_modes, named_blocks, removable
from . import block_table, eval_mode
from .context import ProbeContext

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def error_pct(
    model: nn.Module,
    batches: Batches,
    deleted: Sequence[int] = (),
    bar: progressbar.Bar = progressbar.NULL,
) -> float:
    """Top-1 test error (%) of `model` with the blocks at 0-based indices `deleted` skipped;
    `bar` advances once per batch."""
    n_blocks = len(named_blocks(model))
    gone = set(deleted)
    modes = ["skip" if i in gone else "full" for i in range(n_blocks)]
    wrong = total = 0
    with eval_mode(model), torch.no_grad():
        for x, y in batches:
            logits = forward_with_modes(model, x, modes)
            wrong += int((logits.argmax(1) != y).sum())
            total += int(y.shape[0])
            bar.advance()
    if total == 0:
        raise ValueError("the lesion study got no test images")
    return 100.0 * wrong / total


def _count(batches: Batches) -> int:
    return sum(int(y.shape[0]) for _, y in batches)


def single_lesions(
    model: nn.Module, batches: Batches, bar: progressbar.Bar = progressbar.NULL
) -> pd.DataFrame:
    """One row per block: block, name, stage, changes_shape, removable, intact_error_pct,
    test_error_pct (NaN where the block is not removable), images. `bar` counts batches."""
    blocks = block_table(model)
    bar.start((1 + int(blocks["removable"].sum())) * len(batches))
    intact = error_pct(model, batches, bar=bar)
    errors = [
        error_pct(model, batches, [i], bar) if ok else math.nan
        for i, ok in enumerate(blocks["removable"])
    ]
    return blocks.assign(
        intact_error_pct=intact, test_error_pct=errors, images=_count(batches)
    ).drop(columns=["residual"])


def lesion_draws(removable: Sequence[int], k: int, draws: int, seed: int) -> list[tuple[int, ...]]:
    """The sets of k blocks (from `removable`) to delete together: every set when there are
    at most `draws` of them, else `draws` distinct random sets from a generator seeded by
    (seed, k), so adding a k or a draw never changes the others. Each set is sorted."""
    removable = sorted(removable)
    if not 1 <= k <= len(removable):
        raise ValueError(f"k = {k} is not in 1 .. {len(removable)} (the removable blocks)")
    if math.comb(len(removable), k) <= draws:
        return list(itertools.combinations(removable, k))
    rng = np.random.default_rng([seed, k])
    out: list[tuple[int, ...]] = []
    while len(out) < draws:  # distinct sets: there are more than `draws` of them
        gone = tuple(sorted(int(b) for b in rng.choice(removable, size=k, replace=False)))
        if gone not in out:
            out.append(gone)
    return out


def k_values(n: int, points: int) -> list[int]:
    """k = 1 .. n, thinned to at most `points` values spread evenly (first and last kept),
    so that nets of hundreds of blocks stay affordable."""
    if n <= points:
        return list(range(1, n + 1))
    return sorted(set(int(round(v)) for v in np.linspace(1, n, points)))


def k_lesion_sets(
    model: nn.Module, draws: int, seed: int, points: int = 1_000_000
) -> list[tuple[int, int, tuple[int, ...]]]:
    """(k, draw, deleted 0-based blocks) of every evaluation of `k_lesions`, in its order."""
    removable = [i for i, ok in enumerate(block_table(model)["removable"]) if ok]
    return [
        (k, d, gone)
        for k in k_values(len(removable), points)
        for d, gone in enumerate(lesion_draws(removable, k, draws, seed))
    ]


def k_lesions(
    model: nn.Module,
    batches: Batches,
    draws: int,
    seed: int,
    points: int = 1_000_000,
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """Rows k, draw, removed ("3,7": 1-based block indices), removable_blocks,
    intact_error_pct, test_error_pct, images for k in `k_values(removable, points)`. `bar`
    counts batches."""
    removable = int(block_table(model)["removable"].sum())
    sets = k_lesion_sets(model, draws, seed, points)
    bar.start((1 + len(sets)) * len(batches))
    intact = error_pct(model, batches, bar=bar)
    rows = [
        {
            "k": k,
            "draw": d,
            "removed": ",".join(str(i + 1) for i in gone),
            "removable_blocks": removable,
            "intact_error_pct": intact,
            "test_error_pct": error_pct(model, batches, gone, bar),
        }
        for k, d, gone in sets
    ]
    out = pd.DataFrame(
        rows,
        columns=["k", "draw", "removed", "removable_blocks", "intact_error_pct", "test_error_pct"],
    )
    return out.assign(images=_count(batches))


# ---------------------------------------------------------------- the registry's entries


def measure_single(ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
    rows = single_lesions(ctx.model, ctx.test_batches(ctx.analysis.probe_images), ctx.bar)
    return rows, f"single-block lesions on {tested_on(rows)}"


def measure_k(ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
    a = ctx.analysis
    batches = ctx.test_batches(a.probe_images)
    rows = k_lesions(ctx.model, batches, a.lesion_draws, a.probe_seed, a.lesion_k_points, ctx.bar)
    return rows, f"k-block lesions, up to {a.lesion_draws} draws per k on {tested_on(rows)}"


def passes_single(model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
    """Whole-net image passes: the intact net, then once per removable block."""
    blocks = named_blocks(model)
    return (1 + sum(removable(b) for _, b in blocks)) * min(a.probe_images, test_images)


def passes_k(model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
    """Whole-net image passes, a deleted block's share of the net saved."""
    n = len(named_blocks(model))
    sets = k_lesion_sets(model, a.lesion_draws, a.probe_seed, a.lesion_k_points)
    return min(a.probe_images, test_images) * (1 + sum(1 - len(gone) / n for _, _, gone in sets))


def tested_on(rows: pd.DataFrame) -> str:
    return f"{int(rows['images'].max()) if len(rows) else 0} test images"

"""Figure 7's probe: the std of each 3x3 layer's response of a trained net (He et al. 2015,
section 4.2), pooled and per channel, measured with forward hooks over the test images.

Torch in, DataFrame out; no file I/O (`cli/probes.py` reads the model and writes the result).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd
import torch
from torch import nn

from .. import progressbar
from ..nets.anatomy import response_layers
from ..results import LAYER_STD_SCHEMA
from . import label_run
from .context import ProbeContext


def layer_response_std(
    model: nn.Module,
    layers: Sequence[tuple[str, nn.Module]],
    images: Iterable[torch.Tensor],
    device: torch.device | str | None = None,
    bar: progressbar.Bar = progressbar.NULL,
) -> pd.DataFrame:
    """Two stds of each given layer's output over the images (Figure 7).

    `layers` are (name, module) pairs in network order (for Figure 7: the BN after each 3x3
    conv, whose output is the response "after BN and before other nonlinearity (ReLU/addition)",
    paper section 4.2; `cifar_nets.response_layers(model)` gives them). `images` yields normalized
    float batches (N, 3, H, W); a (images, labels) tuple/list is accepted and its labels ignored.

    The model runs in eval mode (BN uses its running statistics) under `torch.no_grad()`. A
    forward hook per module accumulates, in float64, the sum and the sum of squares of its
    output values per channel (dimension 1), batch by batch, so memory does not grow with the
    number of images. Two statistics come out, both population stds (ddof=0):

    - `std`, pooled: one std of all values (images, positions and channels together),
      sqrt(E[x^2] - E[x]^2). The spread of the per-channel means (mostly BN's shift beta)
      enters it;
    - `channel_std_mean`: each channel's std over images and positions, averaged over the
      channels (roughly BN's |gamma| times how the test images' spread compares with the
      running variance).

    The paper says neither; `analysis.figure7_statistic` chooses which one Figure 7 draws. The
    hooks are removed and each module's train/eval mode restored afterwards, also on error.

    `bar` advances once per batch (started by the caller, who knows how many there are).

    Returns columns layer (1-based, the order of `layers`), name, std, channel_std_mean,
    images. The caller adds model/arch/depth/seed (`label_layer_std`) to get the
    LAYER_STD_SCHEMA layout.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layer_response_std needs at least one (name, module) layer")
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    # float64 is not available on every accelerator (MPS): accumulate on the CPU there.
    acc_device = device if device.type in ("cpu", "cuda") else torch.device("cpu")
    sums: list[torch.Tensor | None] = [None] * len(layers)
    sumsqs: list[torch.Tensor | None] = [None] * len(layers)
    counts = [0] * len(layers)  # values per channel

    def make_hook(i: int):
        def hook(module, inputs, output):
            x = output.detach().to(device=acc_device, dtype=torch.float64)
            x = x.unsqueeze(1) if x.dim() < 2 else x
            dims = [d for d in range(x.dim()) if d != 1]
            s, sq = x.sum(dim=dims), torch.square(x).sum(dim=dims)
            sums[i] = s if sums[i] is None else sums[i] + s
            sumsqs[i] = sq if sumsqs[i] is None else sumsqs[i] + sq
            counts[i] += x.numel() // x.shape[1]

        return hook

    modes = {m: m.training for m in model.modules()}
    handles = []
    n_images = 0
    try:
        for i, (_, module) in enumerate(layers):
            handles.append(module.register_forward_hook(make_hook(i)))
        model.eval()
        with torch.no_grad():
            for batch in images:
                if isinstance(batch, (tuple, list)):
                    batch = batch[0]
                model(batch.to(device))
                n_images += int(batch.shape[0])
                bar.advance()
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    if n_images == 0:
        raise ValueError("layer_response_std got no images")
    rows = []
    for i, (name, _) in enumerate(layers):
        if counts[i] == 0:
            raise ValueError(f"layer {name!r} never ran in the model's forward pass")
        s, sq = sums[i].cpu(), sumsqs[i].cpu()
        channels = s.numel()
        mean = s.sum().item() / (counts[i] * channels)
        var = max(sq.sum().item() / (counts[i] * channels) - mean * mean, 0.0)
        channel_mean = s / counts[i]
        channel_var = (sq / counts[i] - channel_mean.square()).clamp_min(0.0)
        rows.append(
            {
                "layer": i + 1,
                "name": name,
                "std": math.sqrt(var),
                "channel_std_mean": channel_var.sqrt().mean().item(),
                "images": n_images,
            }
        )
    return pd.DataFrame(rows, columns=["layer", "name", "std", "channel_std_mean", "images"])


def label_layer_std(layer_std: pd.DataFrame, model: str, seed: int) -> pd.DataFrame:
    """Add model/arch/depth/seed to `layer_response_std`'s result, in LAYER_STD_SCHEMA order
    (ready for `results.write_layer_std`)."""
    return label_run(layer_std, model, seed, LAYER_STD_SCHEMA)


# ---------------------------------------------------------------- the registry's entry


def measure(ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
    """Figure 7's stds over the first analysis.layer_std_images test images, in eval mode."""
    batches = ctx.test_batches(ctx.analysis.layer_std_images)
    ctx.bar.start(len(batches))
    rows = layer_response_std(ctx.model, response_layers(ctx.model), batches, bar=ctx.bar)
    images = int(rows["images"].max()) if len(rows) else 0
    return rows, f"std of {len(rows)} layer responses over {images} test images"

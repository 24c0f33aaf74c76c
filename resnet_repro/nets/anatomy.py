"""The anatomy of a net of any family (nets/families.py): its parameter and
multiply-accumulate counts, its response layers (Figure 7), and its blocks in network order,
run one by one in a mode each (the probes of trained nets).

A block, in every family, is a module with a residual branch `branch(x)` (the residual
function F of Eq. 1; for a plain block everything but the last ReLU), a `shortcut` (None in a
plain net) and `forward(x) = relu(branch(x) + shortcut(x))`; a net has `stem(x)` (the input
of the first block) and `head(x)` (the logits from the last block's output).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .families import BY_ARCH, FAMILIES


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the paper's "# params", Table 6)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def response_layers(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BN after every conv of the stem and the residual branches, in network order (stem,
    then bn1, bn2 (, bn3) of each block), as (qualified name, module): a forward hook on each
    sees the Figure 7 "response" of that layer. Projection-shortcut BNs are left out. For the
    paper's nets these are the 3x3 layers, 6n+1 entries for depth 6n+2; for ImageNet-style
    ResNet-18/34 likewise 17/33 3x3 layers; ResNet-50's Bottlenecks add their 1x1 layers (49)."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd model wraps the original
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.BatchNorm2d) and "shortcut" not in name.split(".")
    ]


# ---------------------------------------------------------------- blocks run one by one
#
# The probes of trained nets (lesions and paths of Veit et al. 2016, arXiv:1605.06431) run a
# net's blocks in order with a mode per block, instead of patching the modules:
#   "full"      the block as trained;
#   "skip"      the block deleted (Veit et al. sec. 4.1): a residual block becomes its
#               shortcut, relu(s(x)) (the ReLU is a no-op, as every block input is a ReLU
#               output); a plain block becomes the identity, which needs equal input and
#               output shapes (`removable`);
#   "branch"    the forward value of "full", but the backward pass goes through the residual
#               branch only: relu(F(x) + s(x).detach()) (Veit et al. sec. 4.2);
#   "shortcut"  the forward value of "full", the backward pass through the shortcut only:
#               relu(F(x).detach() + s(x)).

BLOCK_MODES = ("full", "skip", "branch", "shortcut")


def block_types(model: nn.Module) -> tuple[type, ...]:
    """The block types of the model's family (of every family for a net that names none)."""
    arch = getattr(model, "arch", None)
    families = [BY_ARCH[arch]] if arch in BY_ARCH else FAMILIES
    return tuple(t for f in families for t in f.block_types())


def named_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The net's blocks in network order as (qualified name, block), e.g. 'stage2.0'."""
    model = getattr(model, "_orig_mod", model)
    types = block_types(model)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, types)]


def is_residual(block: nn.Module) -> bool:
    return block.shortcut is not None


def _branch_convs(block: nn.Module) -> list[nn.Conv2d]:
    return [
        m
        for name, m in block.named_modules()
        if isinstance(m, nn.Conv2d) and "shortcut" not in name.split(".")
    ]


def changes_shape(block: nn.Module) -> bool:
    """Whether the block's output shape differs from its input's (a stride on any conv of
    its branch, or another width at its end)."""
    convs = _branch_convs(block)
    return any(c.stride != (1, 1) for c in convs) or convs[0].in_channels != convs[-1].out_channels


def removable(block: nn.Module) -> bool:
    """A residual block can always be replaced by its shortcut; a plain block only by the
    identity, where its input and output shapes match."""
    return is_residual(block) or not changes_shape(block)


def run_block(block: nn.Module, x: torch.Tensor, mode: str = "full") -> torch.Tensor:
    """One block in one of BLOCK_MODES (see the comment above)."""
    if mode == "full":
        return block(x)
    if mode == "skip":
        if is_residual(block):
            return F.relu(block.shortcut(x))
        if changes_shape(block):
            raise ValueError("a plain block that changes the shape cannot be skipped")
        return x
    if mode not in ("branch", "shortcut"):
        raise ValueError(f"block mode {mode!r} is not one of {BLOCK_MODES}")
    if not is_residual(block):
        raise ValueError(f"block mode {mode!r} needs a residual block")
    f, s = block.branch(x), block.shortcut(x)
    return F.relu(f + s.detach()) if mode == "branch" else F.relu(f.detach() + s)


def run_blocks(model: nn.Module, x: torch.Tensor, modes: Sequence[str]) -> torch.Tensor:
    """The stem's output `x` through every block in order, block i in `modes[i]`."""
    blocks = named_blocks(model)
    if len(modes) != len(blocks):
        raise ValueError(f"{len(modes)} block modes for a net of {len(blocks)} blocks")
    for (_, block), mode in zip(blocks, modes):
        x = run_block(block, x, mode)
    return x


def forward_with_modes(model: nn.Module, x: torch.Tensor, modes: Sequence[str]) -> torch.Tensor:
    """Logits of `model` on images `x` with block i run in `modes[i]`; all "full" equals
    model(x)."""
    model = getattr(model, "_orig_mod", model)
    return model.head(run_blocks(model, model.stem(x), modes))


def forward_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one 32x32 image's forward pass through the convolutions and
    linear layers (what dominates the cost), counted with hooks on a CPU pass."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels
            total += output.numel() * k // module.groups
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total

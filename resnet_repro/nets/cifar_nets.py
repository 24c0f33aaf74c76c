"""Plain and residual CIFAR-10 nets of He et al. 2015, section 4.2.

A net of depth 6n+2 is a 3x3 conv stem (16 filters), three stages of n blocks of two 3x3
convs with 16/32/64 filters on 32/16/8 maps (stride 2 at the first conv of stages 2 and 3),
global average pooling and a 10-way fully connected layer. BN follows every conv
(section 3.4); there is no dropout. A residual block adds a shortcut before its last ReLU
(Fig. 2); a plain block is the same without it. Shortcut options follow section 3.3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .families import PAPER_ARCHS, SHORTCUTS, family

WIDTHS = (16, 32, 64)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    # No bias: the BN right after it has its own shift (section 3.4, "BN right after each conv").
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option A (section 3.3): identity that, where the width grows, subsamples by the stride
    and fills the extra channels with zeros, so it has no parameters and plain/residual
    twins have the same parameter count (section 4.2, "exactly the same number of
    parameters")."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_ch - in_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zeros appended after the last channel


def projection(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Options B/C (section 3.3, Eq. 2): a 1x1 conv W_s x, with BN like every other conv."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class Block(nn.Module):
    """Two 3x3 conv-BN layers; with a shortcut: relu(bn2(conv2(relu(bn1(conv1 x)))) + s(x)).

    ReLUs are out-of-place and the addition is `out + s(x)`, not `out += ...`: a forward
    hook on bn1/bn2 keeps a reference to the BN output (the Figure 7 layer response, "after
    BN and before other nonlinearity (ReLU/addition)"), and an in-place op would overwrite it.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, shortcut: str | None):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        reshape = stride != 1 or in_ch != out_ch
        if shortcut is None:  # plain net
            self.shortcut = None
        elif shortcut == "C" or (shortcut == "B" and reshape):
            self.shortcut = projection(in_ch, out_ch, stride)
        elif shortcut == "A" and reshape:
            self.shortcut = PadShortcut(in_ch, out_ch, stride)
        else:
            self.shortcut = nn.Identity()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual function F(x) of Eq. 1 (for a plain block: everything but the last
        ReLU)."""
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.shortcut is not None:  # fixed at construction: no data-dependent branch
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarNet(nn.Module):
    """The 6n+2-layer CIFAR-10 net of section 4.2, plain or residual."""

    def __init__(self, arch: str, depth: int, shortcut: str = "A", num_classes: int = 10):
        super().__init__()
        _check(arch, depth, shortcut)
        self.arch, self.depth, self.shortcut = arch, depth, shortcut
        n = (depth - 2) // 6
        option = shortcut if arch == "resnet" else None
        self.conv = conv3x3(3, WIDTHS[0])
        self.bn = nn.BatchNorm2d(WIDTHS[0])
        in_ch, stages = WIDTHS[0], []
        for i, width in enumerate(WIDTHS):
            blocks = []
            for j in range(n):
                # Maps halve (32 -> 16 -> 8) by a stride-2 first conv of stages 2 and 3.
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(Block(in_ch, width, stride, option))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(WIDTHS[-1], num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # Section 3.4: "We initialize the weights as in [13]", i.e. He et al. 2015,
                # "Delving deep into rectifiers": zero-mean Gaussian, std sqrt(2/n). [13]
                # shows either n = fan_in (forward case, its Eq. 10) or n = fan_out (backward
                # case, Eq. 14) suffices; we use fan_in, the forward case, which keeps the
                # forward response std steady (what Figure 7 measures) and is the default of
                # Caffe's "msra" filler.
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # The paper does not say how the FC layer is initialised: PyTorch's default is kept.

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The first 3x3 conv, BN and ReLU: the input of the first block."""
        return F.relu(self.bn(self.conv(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pooling and the 10-way FC layer after the last block."""
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage3(self.stage2(self.stage1(self.stem(x)))))


def _check(arch: str, depth: int, shortcut: str) -> None:
    if arch not in PAPER_ARCHS:
        raise ConfigError(f"arch {arch!r} is not allowed; allowed values: {list(PAPER_ARCHS)}")
    if shortcut not in SHORTCUTS:
        raise ConfigError(
            f"shortcut {shortcut!r} is not allowed; allowed values: {list(SHORTCUTS)} "
            f"(A zero-padding identity, B projection where the shape changes, C projection "
            f"everywhere; section 3.3)"
        )
    family(arch).check_depth(depth, key="depth")


def make_net(arch: str, depth: int, shortcut: str = "A", num_classes: int = 10) -> nn.Module:
    """A plain or residual ('plain'/'resnet') CIFAR net of depth 6n+2. Plain nets ignore the
    shortcut option, but it is still validated."""
    return CifarNet(arch, depth, shortcut, num_classes)


def build(arch: str, depth: int, shortcut: str, num_classes: int, width: int | None) -> nn.Module:
    """The builder of this module's two families (nets/families.py). The paper's nets keep
    their 16/32/64 filters: the family refuses a width before it gets here."""
    return make_net(arch, depth, shortcut, num_classes)

"""The ImageNet-style ResNet-18/34/50 adapted to CIFAR-10: the second study family (issue 13).

These are the nets of the paper's Table 1 (section 3.4, ImageNet), not the 6n+2 nets of
section 4.2, changed for 32x32 inputs the way a widely copied write-up does (kuangliu/
pytorch-cifar): the 7x7 stride-2 stem and the max-pool become one 3x3 conv with 64 filters
at stride 1, four stages of 64/128/256/512 filters on 32/16/8/4 maps (stride 2 at the first
block of stages 2-4), BasicBlocks (two 3x3 convs) for 18/34 and Bottlenecks (1x1, 3x3, 1x1
with expansion 4) for 50, 1x1-conv + BN projections where the shape changes (option B,
section 3.3), 4x4 average pooling and one linear layer. Parameter counts with 10 classes:
11,173,962 / 21,282,122 / 23,520,842.

Model names are `imagenet-resnet18/34/50` (its family's prefix + depth, nets/families.py):
a name such as `resnet18` stays a (refused) 6n+2 depth, so the two families cannot be mixed
up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .families import family

ARCH = "imagenet-resnet"  # this family's entry in nets/families.py

# Blocks per stage (Table 1 of the paper): ResNet-18 [2,2,2,2], 34 and 50 [3,4,6,3].
STAGES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
WIDTH = 64  # filters of the stem and the first stage; the stages have 1x, 2x, 4x, 8x


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Option B: identity, or a 1x1 conv + BN projection where the shape changes."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus the shortcut (ResNet-18/34). Out-of-place ReLU and
    addition, as in models.Block, so a forward hook on a BN keeps its response intact."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_ch, planes, stride)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual function F(x), before the addition (nets/anatomy.py)."""
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 (reduce), 3x3, 1x1 (expand x4) conv-BN layers plus the shortcut (ResNet-50, the
    paper's Fig. 5 right). The stride sits on the 3x3 conv, as in kuangliu/pytorch-cifar."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int):
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = _shortcut(in_ch, out_ch, stride)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual function F(x), before the addition (nets/anatomy.py)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch(x) + self.shortcut(x))


class ImageNetStyleResNet(nn.Module):
    """ResNet-18/34/50 for 32x32 inputs (module docstring). `width` scales every stage
    (64 is the real net; a smaller one only serves CPU smoke studies and tests)."""

    def __init__(self, depth: int, num_classes: int = 10, width: int | None = None):
        super().__init__()
        family(ARCH).check_depth(depth, key="depth")
        width = WIDTH if width is None else width
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.arch, self.depth, self.shortcut, self.width = ARCH, depth, "B", width
        kind, counts = STAGES[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        in_ch, stages = width, []
        for i, n in enumerate(counts):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(block(in_ch, planes, 2 if i > 0 and j == 0 else 1))
                in_ch = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self.fc = nn.Linear(in_ch, num_classes)
        # PyTorch's default initialisation, as in the write-up whose numbers we set beside ours
        # (its models call no init function): the recipe is theirs, not the paper's.

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The 3x3 conv, BN and ReLU: the input of the first block."""
        return F.relu(self.bn(self.conv(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        # 4x4 average pooling over the 4x4 maps of stage 4 (= global average pooling on
        # 32x32 inputs; adaptive so that a smaller input still works).
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage4(self.stage3(self.stage2(self.stage1(self.stem(x))))))


def make_imagenet_style(
    depth: int, num_classes: int = 10, width: int | None = None
) -> ImageNetStyleResNet:
    return ImageNetStyleResNet(depth, num_classes, width)


def build(
    arch: str, depth: int, shortcut: str, num_classes: int, width: int | None
) -> ImageNetStyleResNet:
    """This family's builder (nets/families.py): always option B, whatever `shortcut` says."""
    return ImageNetStyleResNet(depth, num_classes, width)

"""Small nets in the two foreign checkpoint layouts that resnet-repro imports, written from
the layouts described in issue 10 (not from the other projects' code), for the import tests.

- akamaster: stem conv1/bn1, layer1..3 of blocks conv1/bn1/conv2/bn2 (no conv biases),
  `linear`; option A puts (C'-C)/2 zero channels before and after the identity; saved as
  {"state_dict": {"module." + key: ...}} without num_batches_tracked.
- wooyeolbaek: `conv1.conv1` (with bias) + `conv1.bn1`, `conv{2,3,4}_x.conv{2,3,4}_x.{j}.f`
  = Sequential(conv+bias, BN, ReLU, conv+bias, BN), `fc.fc`; the same zero padding; plain
  nets without the shortcut; saved as a plain state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (16, 32, 64)


def pad_shortcut(x: torch.Tensor, out_ch: int, stride: int) -> torch.Tensor:
    x = x[:, :, ::stride, ::stride]
    extra = out_ch - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


class AkaBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.cout, self.stride = cout, stride

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + pad_shortcut(x, self.cout, self.stride))


class AkaNet(nn.Module):
    def __init__(self, depth: int):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for s, w in enumerate(WIDTHS):
            blocks = []
            for j in range(n):
                blocks.append(AkaBlock(cin, w, 2 if s > 0 and j == 0 else 1))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


class WyBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, residual: bool):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
            nn.BatchNorm2d(cout),
        )
        self.cout, self.stride, self.residual = cout, stride, residual

    def forward(self, x):
        out = self.f(x)
        if self.residual:
            out = out + pad_shortcut(x, self.cout, self.stride)
        return F.relu(out)


class _Holder(nn.Module):
    """A module holding one named child, to get keys like `conv2_x.conv2_x.0...`."""

    def __init__(self, **children: nn.Module):
        super().__init__()
        for k, v in children.items():
            setattr(self, k, v)


class WyNet(nn.Module):
    def __init__(self, depth: int, residual: bool):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = _Holder(conv1=nn.Conv2d(3, 16, 3, 1, 1), bn1=nn.BatchNorm2d(16))
        cin = 16
        for s, w in enumerate(WIDTHS):
            blocks = []
            for j in range(n):
                blocks.append(WyBlock(cin, w, 2 if s > 0 and j == 0 else 1, residual))
                cin = w
            name = f"conv{s + 2}_x"
            setattr(self, name, _Holder(**{name: nn.Sequential(*blocks)}))
        self.fc = _Holder(fc=nn.Linear(64, 10))

    def forward(self, x):
        x = F.relu(self.conv1.bn1(self.conv1.conv1(x)))
        x = self.conv4_x.conv4_x(self.conv3_x.conv3_x(self.conv2_x.conv2_x(x)))
        return self.fc.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def randomize(net: nn.Module, seed: int) -> nn.Module:
    """Random weights, conv biases and BN statistics and affine parameters (a trained-looking
    net in which every channel differs, so a wrong channel order shows), in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.3)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.2)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return net.eval()


def save_akamaster(net: AkaNet, path) -> None:
    sd = {
        f"module.{k}": v
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    torch.save({"best_prec1": 90.0, "state_dict": sd}, path)


def save_wooyeolbaek(net: WyNet, path) -> None:
    torch.save(net.state_dict(), path)

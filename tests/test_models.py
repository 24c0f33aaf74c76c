"""Plain and residual CIFAR nets (He et al. 2015, sections 3.3, 3.4 and 4.2)."""

import math

import pytest
import torch
from torch import nn

from resnet_repro.config import PAPER_ARCHS as ARCHS
from resnet_repro.config import SHORTCUTS, ConfigError
from resnet_repro.nets.anatomy import count_parameters, response_layers
from resnet_repro.nets.cifar_nets import PadShortcut, make_net
from resnet_repro.nets.families import build_model
from resnet_repro.tables.paper import TABLE6, paper_params_millions

SMALL = (8, 14, 20)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _as_paper_rounds(count: int, paper: float) -> float:
    """The count in millions, rounded to as many decimals as the paper prints (0.27, 1.7)."""
    decimals = len(repr(paper).split(".")[1])
    return round(count / 1e6, decimals)


@pytest.mark.parametrize("depth", [r.depth for r in TABLE6])
def test_param_counts_match_table6_and_plain_twin(depth):
    paper = paper_params_millions(depth)
    resnet = count_parameters(make_net("resnet", depth, "A"))
    assert _as_paper_rounds(resnet, paper) == paper
    assert count_parameters(make_net("plain", depth)) == resnet


def test_count_parameters_counts_only_trainable():
    net = make_net("resnet", 8)
    total = sum(p.numel() for p in net.parameters())
    net.fc.weight.requires_grad_(False)
    assert count_parameters(net) == total - net.fc.weight.numel()


@pytest.mark.parametrize("depth", SMALL)
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_output_shape(arch, depth, shortcut):
    net = build_model(f"{arch}{depth}", shortcut=shortcut)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_num_classes():
    assert build_model("resnet8", num_classes=100)(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_projection_options_add_parameters_plain_ignores_option():
    a, b, c = (count_parameters(make_net("resnet", 20, s)) for s in SHORTCUTS)
    assert a < b < c
    # B projects only where the shape changes (2 places), C on all 9 blocks.
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert sum(isinstance(m, PadShortcut) for m in make_net("resnet", 20, "A").modules()) == 2
    plain = {count_parameters(make_net("plain", 20, s)) for s in SHORTCUTS}
    assert plain == {a}


def test_architecture_shapes():
    net = make_net("plain", 20)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19  # 6n + 1 convs + 1 FC = 20 weighted layers
    assert all(c.kernel_size == (3, 3) and c.bias is None for c in convs)
    assert [c.out_channels for c in convs] == [16] * 7 + [32] * 6 + [64] * 6
    assert [c.stride[0] for c in convs] == [1] * 7 + [2] + [1] * 5 + [2] + [1] * 5
    maps = []
    for stage in (net.stage1, net.stage2, net.stage3):
        stage.register_forward_hook(lambda m, i, o: maps.append(tuple(o.shape[1:])))
    net(torch.randn(1, 3, 32, 32))
    assert maps == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


@pytest.mark.parametrize("shortcut", SHORTCUTS)
@pytest.mark.parametrize("depth", (8, 20))
def test_response_layers_order_and_hooks(depth, shortcut):
    net = make_net("resnet", depth, shortcut)
    layers = response_layers(net)
    n = (depth - 2) // 6
    assert len(layers) == 6 * n + 1
    assert layers[0] == ("bn", net.bn)
    assert layers[1][0] == "stage1.0.bn1" and layers[2][0] == "stage1.0.bn2"
    assert layers[-1] == (f"stage3.{n - 1}.bn2", net.stage3[n - 1].bn2)
    # Only BNs after 3x3 convs: projection-shortcut BNs (options B, C) are left out.
    modules = dict(net.named_modules())
    for name, bn in layers:
        conv = modules[name.replace("bn", "conv")]  # bn -> conv, stage1.0.bn1 -> stage1.0.conv1
        assert conv.kernel_size == (3, 3) and conv.out_channels == bn.num_features
    fired = []
    for name, bn in layers:
        bn.register_forward_hook(lambda m, i, o, name=name: fired.append(name))
    net(torch.randn(2, 3, 32, 32))
    assert fired == [name for name, _ in layers]


def test_response_hook_sees_pre_relu_pre_addition_output():
    """The hooked tensor must keep negative values: no ReLU or addition may overwrite it."""
    net = make_net("resnet", 8)
    seen = {}

    def keep(name):
        def hook(module, inputs, output):
            seen[name] = (output, output.clone())  # a reference, and a copy taken now

        return hook

    for name, bn in response_layers(net):
        bn.register_forward_hook(keep(name))
    net(torch.randn(2, 3, 32, 32))
    for kept, copy in seen.values():
        assert torch.equal(kept, copy)
        assert (kept < 0).any()


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).reshape(2, 16, 4, 4)
    y = PadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 2, 2)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.equal(y[:, 16:], torch.zeros(2, 16, 2, 2))
    assert not list(PadShortcut(16, 32, 2).parameters())


def test_option_a_in_net_at_width_doubling():
    net = make_net("resnet", 14, "A")
    first, second = net.stage2
    assert isinstance(first.shortcut, PadShortcut) and first.shortcut.stride == 2
    assert isinstance(second.shortcut, nn.Identity)


def _zero_second_convs(net):
    for m in net.modules():
        if hasattr(m, "conv2"):
            nn.init.zeros_(m.conv2.weight)
    return net.eval()


def test_residual_block_passes_input_through_plain_does_not():
    """With F(x) = 0 (zero second conv; eval-mode BN with fresh statistics maps 0 to 0), a
    residual block is relu(x + shortcut): the identity on non-negative input; a plain block
    outputs zeros."""
    x = torch.rand(2, 16, 8, 8)
    resnet = _zero_second_convs(make_net("resnet", 14, "A"))
    plain = _zero_second_convs(make_net("plain", 14, "A"))
    with torch.no_grad():
        assert torch.equal(resnet.stage1[0](x), x)
        assert torch.equal(plain.stage1[0](x), torch.zeros_like(x))
        down = resnet.stage2[0](torch.rand(2, 16, 8, 8))  # width doubles: option A pads
        assert down.shape == (2, 32, 4, 4) and torch.equal(down[:, 16:], torch.zeros(2, 16, 4, 4))


@pytest.mark.parametrize(
    "call, allowed",
    [
        (lambda: make_net("resnet", 21), "8, 14, 20, 32, 44, 56, 110, 1202"),
        (lambda: build_model("resnet21"), "8, 14, 20, 32, 44, 56, 110, 1202"),
        (lambda: build_model("foo20"), str(list(ARCHS))),
        (lambda: make_net("foo", 20), str(list(ARCHS))),
        (lambda: make_net("resnet", 20, "D"), str(list(SHORTCUTS))),
        (lambda: make_net("plain", 20, "D"), str(list(SHORTCUTS))),
        (lambda: build_model("resnet20", shortcut="D"), str(list(SHORTCUTS))),
    ],
)
def test_bad_values_raise_config_error_naming_allowed(call, allowed):
    with pytest.raises(ConfigError) as err:
        call()
    assert allowed in str(err.value)


def test_he_init():
    net = make_net("resnet", 20)
    # 32 -> 64 channels: fan_in (32*9) differs from fan_out (64*9); 18432 samples.
    w = net.stage3[0].conv1.weight
    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
    assert w.mean().abs() < 0.01 * w.std()
    assert w.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    for _, bn in response_layers(net):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_channels_last_matches_contiguous(shortcut):
    net = make_net("resnet", 8, shortcut)
    x = torch.randn(2, 3, 16, 16)  # small maps keep it fast; the net is fully convolutional
    expected = net(x)
    net = net.to(memory_format=torch.channels_last)
    got = net(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_compiles_without_graph_breaks():
    """fullgraph=True fails on any graph break (e.g. data-dependent Python control flow)."""
    net = make_net("resnet", 8, "A")
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(compiled(x), net(x))
    assert [n for n, _ in response_layers(compiled)] == [n for n, _ in response_layers(net)]

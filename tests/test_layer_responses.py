"""layer_responses.py: Figure 7's layer-response std on small hand-made nets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_repro.probes import layer_responses
from resnet_repro.results import LAYER_STD_SCHEMA, read_layer_std, write_layer_std


def _tiny_net(seed: int = 0) -> tuple[nn.Sequential, list[tuple[str, nn.Module]]]:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1, bias=False),
        nn.BatchNorm2d(5),
        nn.ReLU(),
    )
    # non-trivial BN parameters and running statistics, so that eval mode matters
    for bn in (net[1], net[4]):
        c = bn.num_features
        bn.weight.data = torch.rand(c) + 0.5
        bn.bias.data = torch.randn(c)
        bn.running_mean = torch.randn(c)
        bn.running_var = torch.rand(c) + 0.5
    return net, [("1", net[1]), ("4", net[4])]


def _images(n: int = 12, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g)


def _hand_std(net: nn.Sequential, x: torch.Tensor) -> list[float]:
    net.eval()
    with torch.no_grad():
        a = net[1](net[0](x))
        b = net[4](net[3](net[2](a)))
    return [t.double().flatten().std(unbiased=False).item() for t in (a, b)]


def test_layer_response_std_matches_a_hand_computation_on_bn_outputs():
    net, layers = _tiny_net()
    x = _images()
    expected = _hand_std(net, x)
    net.train()
    out = layer_responses.layer_response_std(net, layers, [x], "cpu")
    assert list(out.columns) == ["layer", "name", "std", "images"]
    assert list(out["layer"]) == [1, 2] and list(out["name"]) == ["1", "4"]
    assert list(out["images"]) == [12, 12]
    assert out["std"].tolist() == pytest.approx(expected, rel=1e-6)
    # eval mode used, not batch statistics: in train mode the BN outputs would have std ~ weight
    assert net.training, "the model's train/eval mode is restored afterwards"


def test_layer_response_std_streaming_equals_one_batch():
    net, layers = _tiny_net(seed=2)
    x = _images(n=10)
    one = layer_responses.layer_response_std(net, layers, [x], "cpu")
    split = layer_responses.layer_response_std(net, layers, [x[:3], x[3:4], x[4:]], "cpu")
    assert split["std"].tolist() == pytest.approx(one["std"].tolist(), rel=1e-9)
    assert list(split["images"]) == [10, 10]
    # (images, labels) batches as a DataLoader yields them
    labelled = layer_responses.layer_response_std(
        net, layers, [(x[:5], None), (x[5:], None)], "cpu"
    )
    assert labelled["std"].tolist() == pytest.approx(one["std"].tolist(), rel=1e-9)


def test_layer_response_std_removes_its_hooks_also_on_error():
    net, layers = _tiny_net()
    layer_responses.layer_response_std(net, layers, [_images()], "cpu")
    assert all(len(m._forward_hooks) == 0 for _, m in layers)
    with pytest.raises(RuntimeError):
        layer_responses.layer_response_std(
            net, layers, [torch.randn(2, 7, 8, 8)], "cpu"
        )  # bad channels
    assert all(len(m._forward_hooks) == 0 for _, m in layers)
    assert net.training


def test_layer_response_std_complains_about_no_images_and_unused_layers():
    net, layers = _tiny_net()
    with pytest.raises(ValueError, match="no images"):
        layer_responses.layer_response_std(net, layers, [], "cpu")
    stray = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="never ran"):
        layer_responses.layer_response_std(net, layers + [("stray", stray)], [_images()], "cpu")


def test_label_layer_std_gives_the_layer_std_file_layout(tmp_path):
    net, layers = _tiny_net()
    out = layer_responses.label_layer_std(
        layer_responses.layer_response_std(net, layers, [_images()], "cpu"), "resnet20", 3
    )
    assert list(out.columns) == LAYER_STD_SCHEMA.names
    write_layer_std(out, tmp_path / "ls.parquet")
    back = read_layer_std(tmp_path / "ls.parquet")
    assert list(back["model"]) == ["resnet20", "resnet20"] and set(back["seed"]) == {3}

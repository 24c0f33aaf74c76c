"""layer_responses.py: Figure 7's layer-response std on small hand-made nets."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from resnet_repro.figures.paper_figures import figure7, select_statistic
from resnet_repro.probes import layer_responses
from resnet_repro.results import (
    LAYER_STD_SCHEMA,
    ResultError,
    read_all_layer_std,
    read_layer_std,
    write_layer_std,
)


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


def _hand_channel_std(net: nn.Sequential, x: torch.Tensor) -> list[float]:
    net.eval()
    with torch.no_grad():
        a = net[1](net[0](x))
        b = net[4](net[3](net[2](a)))
    return [
        t.double().transpose(0, 1).flatten(1).std(dim=1, unbiased=False).mean().item()
        for t in (a, b)
    ]


def test_layer_response_std_matches_a_hand_computation_on_bn_outputs():
    net, layers = _tiny_net()
    x = _images()
    expected = _hand_std(net, x)
    expected_channels = _hand_channel_std(net, x)
    net.train()
    out = layer_responses.layer_response_std(net, layers, [x], "cpu")
    assert list(out.columns) == ["layer", "name", "std", "channel_std_mean", "images"]
    assert list(out["layer"]) == [1, 2] and list(out["name"]) == ["1", "4"]
    assert list(out["images"]) == [12, 12]
    assert out["std"].tolist() == pytest.approx(expected, rel=1e-6)
    assert out["channel_std_mean"].tolist() == pytest.approx(expected_channels, rel=1e-6)
    # eval mode used, not batch statistics: in train mode the BN outputs would have std ~ weight
    assert net.training, "the model's train/eval mode is restored afterwards"


def _known_bn(gamma: list[float], beta: list[float]) -> nn.BatchNorm2d:
    """A BN that computes gamma_c * x + beta_c exactly in eval mode."""
    bn = nn.BatchNorm2d(len(gamma))
    bn.weight.data = torch.tensor(gamma)
    bn.bias.data = torch.tensor(beta)
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    return bn.eval()


def test_both_statistics_on_a_layer_whose_answer_is_known():
    # Inputs of +-1 in equal numbers in every channel (mean 0, std 1), so the BN output of
    # channel c takes the values beta_c +- gamma_c: its std is |gamma_c| exactly, and the
    # pooled std is sqrt(mean(gamma^2) + var(beta)) (the spread of the channel means enters).
    gamma, beta = [1.0, 2.0, 0.5], [0.0, 3.0, -1.0]
    bn = _known_bn(gamma, beta)
    signs = torch.tensor([1.0, -1.0]).repeat(4 * 4 * 3 // 2).reshape(1, 3, 4, 4)
    x = torch.cat([signs, -signs])  # two images: every channel half +1, half -1
    out = layer_responses.layer_response_std(bn, [("bn", bn)], [x], "cpu")
    g, b = torch.tensor(gamma), torch.tensor(beta)
    pooled = (g.square().mean() + b.var(unbiased=False)).sqrt().item()
    assert out["channel_std_mean"].iloc[0] == pytest.approx(g.abs().mean().item(), rel=1e-6)
    assert out["std"].iloc[0] == pytest.approx(pooled, rel=1e-6)
    # equal shifts: the two statistics agree only when no channel mean differs
    same = _known_bn(gamma, [0.5, 0.5, 0.5])
    out = layer_responses.layer_response_std(same, [("bn", same)], [x], "cpu")
    assert out["std"].iloc[0] == pytest.approx(g.square().mean().sqrt().item(), rel=1e-6)


def test_figure7_draws_the_chosen_statistic_and_refuses_old_files_for_per_channel(tmp_path):
    net, layers = _tiny_net()
    rows = layer_responses.label_layer_std(
        layer_responses.layer_response_std(net, layers, [_images()], "cpu"), "resnet20", 0
    )
    for statistic, column in (("pooled", "std"), ("per_channel", "channel_std_mean")):
        fig = figure7(rows, ["resnet20"], statistic)
        drawn = fig.axes[0].lines[0].get_ydata()
        assert list(drawn) == pytest.approx(list(rows[column]))
        assert ("pooled" in fig._suptitle.get_text()) == (statistic == "pooled")
    # a file of the older layout (no channel_std_mean): read as before, pooled only
    old = pa.Table.from_pandas(rows.drop(columns=["channel_std_mean"]), preserve_index=False)
    pq.write_table(old, tmp_path / "old.parquet")
    back = read_all_layer_std([tmp_path / "old.parquet"])
    assert back["channel_std_mean"].isna().all() and len(back) == 2
    figure7(back, ["resnet20"], "pooled")
    with pytest.raises(ResultError, match="lack the per_channel statistic.*rerun snakemake"):
        select_statistic(back, "per_channel")


def test_layer_response_std_streaming_equals_one_batch():
    net, layers = _tiny_net(seed=2)
    x = _images(n=10)
    one = layer_responses.layer_response_std(net, layers, [x], "cpu")
    split = layer_responses.layer_response_std(net, layers, [x[:3], x[3:4], x[4:]], "cpu")
    assert split["std"].tolist() == pytest.approx(one["std"].tolist(), rel=1e-9)
    assert split["channel_std_mean"].tolist() == pytest.approx(
        one["channel_std_mean"].tolist(), rel=1e-6
    )
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

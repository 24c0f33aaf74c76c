"""The probes of trained nets (probes/lesions.py, paths.py, branches.py) and the block modes of
nets/cifar_nets.py, on constructed nets whose answers are known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.nets.anatomy import (
    BLOCK_MODES,
    forward_with_modes,
    named_blocks,
    removable,
    run_block,
)
from resnet_repro.nets.cifar_nets import make_net
from resnet_repro.probes import block_table, branches, label_run, lesions, paths
from resnet_repro.probes.registry import BY_NAME, probe
from resnet_repro.results import ResultError


def _randomise_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN parameters and running statistics, so that eval mode matters."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.1
            m.running_mean = torch.randn(c, generator=g) * 0.1
            m.running_var = torch.rand(c, generator=g) + 0.5
    return net.eval()


def _net(arch: str, depth: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return _randomise_bn(make_net(arch, depth), seed)


def _zero_branches(net: nn.Module) -> nn.Module:
    """Every residual branch F(x) outputs exactly zero: the last BN of each block has zero
    scale and shift."""
    for _, block in named_blocks(net):
        block.bn2.weight.data.zero_()
        block.bn2.bias.data.zero_()
    return net


def _identity_branches(net: nn.Module) -> nn.Module:
    """Every block's branch computes F(x) = s(x) for x >= 0 (every block input is a ReLU
    output): both convs copy channel c to channel c at the centre tap (with stride 2, this
    subsamples, and the extra output channels are zero: option A's shortcut), and both BNs are
    the identity in eval mode."""
    for _, block in named_blocks(net):
        for conv in (block.conv1, block.conv2):
            w = torch.zeros_like(conv.weight)
            for c in range(min(conv.in_channels, conv.out_channels)):
                w[c, c, 1, 1] = 1.0
            conv.weight.data = w
        for bn in (block.bn1, block.bn2):
            bn.weight.data.fill_(1.0)
            bn.bias.data.zero_()
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # 1 / sqrt(var + eps) = 1 exactly
    return net.eval()


def _batches(n_batches: int = 2, size: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 3, 32, 32, generator=g), torch.randint(0, 10, (size,), generator=g))
        for _ in range(n_batches)
    ]


# --------------------------------------------------------------------------------------------
# block modes (nets/cifar_nets.py)


@pytest.mark.parametrize("arch", ["plain", "resnet"])
def test_all_full_blocks_equal_the_model(arch):
    net = _net(arch, 14)
    x = _batches(1)[0][0]
    with torch.no_grad():
        assert torch.equal(forward_with_modes(net, x, ["full"] * 6), net(x))


def test_gradient_routing_keeps_the_forward_values():
    net = _net("resnet", 14)
    x = _batches(1)[0][0]
    rng = np.random.default_rng(0)
    with torch.no_grad():
        full = net(x)
        for _ in range(4):
            modes = list(rng.choice(["full", "branch", "shortcut"], size=6))
            assert torch.allclose(forward_with_modes(net, x, modes), full, atol=1e-6)


def test_gradient_routing_sends_the_gradient_through_one_term_only():
    torch.manual_seed(0)
    block = named_blocks(_net("resnet", 8))[0][1]
    x = torch.rand(2, 16, 8, 8, requires_grad=True)
    (g_branch,) = torch.autograd.grad(run_block(block, x, "branch").sum(), x)
    (g_short,) = torch.autograd.grad(run_block(block, x, "shortcut").sum(), x)
    (g_full,) = torch.autograd.grad(run_block(block, x, "full").sum(), x)
    assert torch.allclose(g_branch + g_short, g_full, atol=1e-5)
    # through the shortcut only: d relu(F + x) / dx = the ReLU mask
    out = block(x).detach()
    assert torch.equal(g_short, (out > 0).float())


def test_block_modes_refuse_what_a_block_cannot_do():
    plain = _net("plain", 14)
    blocks = [b for _, b in named_blocks(plain)]
    assert [removable(b) for b in blocks] == [True, True, False, True, False, True]
    with pytest.raises(ValueError, match="cannot be skipped"):
        run_block(blocks[2], torch.rand(1, 16, 32, 32), "skip")
    with pytest.raises(ValueError, match="residual"):
        run_block(blocks[0], torch.rand(1, 16, 32, 32), "branch")
    with pytest.raises(ValueError, match="not one of"):
        run_block(blocks[0], torch.rand(1, 16, 32, 32), "sideways")
    with pytest.raises(ValueError, match="block modes"):
        forward_with_modes(plain, torch.rand(1, 3, 32, 32), ["full"])
    assert "skip" in BLOCK_MODES


def test_block_table_names_stages_and_removable_blocks():
    t = block_table(_net("resnet", 14))
    assert list(t["name"]) == [
        "stage1.0",
        "stage1.1",
        "stage2.0",
        "stage2.1",
        "stage3.0",
        "stage3.1",
    ]
    assert list(t["stage"]) == [1, 1, 2, 2, 3, 3]
    assert list(t["changes_shape"]) == [False, False, True, False, True, False]
    assert t["removable"].all() and t["residual"].all()


# --------------------------------------------------------------------------------------------
# lesions


def test_lesions_of_zero_branches_leave_the_error_unchanged():
    net = _zero_branches(_net("resnet", 14))
    batches = _batches()
    single = lesions.single_lesions(net, batches)
    assert len(single) == 6 and single["removable"].all()
    assert (single["test_error_pct"] == single["intact_error_pct"]).all()
    assert (single["images"] == 32).all()
    multi = lesions.k_lesions(net, batches, draws=3, seed=0)
    assert sorted(set(multi["k"])) == [1, 2, 3, 4, 5, 6]
    assert (multi["test_error_pct"] == multi["intact_error_pct"]).all()


def test_single_lesion_error_equals_the_error_of_the_net_without_that_block():
    net = _net("resnet", 8)
    batches = _batches()
    single = lesions.single_lesions(net, batches)
    blocks = [b for _, b in named_blocks(net)]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    with torch.no_grad():
        h = net.stem(x)
        h = torch.relu(blocks[0].shortcut(h))  # block 1 deleted
        logits = net.head(blocks[2](blocks[1](h)))
    expected = 100.0 * float((logits.argmax(1) != y).float().mean())
    assert single["test_error_pct"].iloc[0] == pytest.approx(expected)
    with torch.no_grad():
        intact = 100.0 * float((net(x).argmax(1) != y).float().mean())
    assert single["intact_error_pct"].iloc[0] == pytest.approx(intact)


def test_plain_lesions_mark_shape_changing_blocks_as_not_removable():
    net = _net("plain", 14)
    single = lesions.single_lesions(net, _batches(1))
    assert list(single["removable"]) == [True, True, False, True, False, True]
    assert single.loc[~single["removable"], "test_error_pct"].isna().all()
    assert single.loc[single["removable"], "test_error_pct"].notna().all()
    multi = lesions.k_lesions(net, _batches(1), draws=2, seed=0)
    assert sorted(set(multi["k"])) == [1, 2, 3, 4] and (multi["removable_blocks"] == 4).all()
    removed = {int(b) for r in multi["removed"] for b in r.split(",")}
    assert removed <= {1, 2, 4, 6}


def test_lesion_draws_are_seeded_distinct_and_enumerate_small_cases():
    assert lesions.lesion_draws([0, 1, 2], 2, draws=5, seed=0) == [(0, 1), (0, 2), (1, 2)]
    a = lesions.lesion_draws(list(range(20)), 4, draws=5, seed=3)
    assert a == lesions.lesion_draws(list(range(20)), 4, draws=5, seed=3)
    assert a != lesions.lesion_draws(list(range(20)), 4, draws=5, seed=4)
    assert all(len(set(d)) == 4 and list(d) == sorted(d) for d in a)
    singles = lesions.lesion_draws(list(range(9)), 1, draws=8, seed=0)
    assert len(set(singles)) == 8  # 9 possible sets, 8 distinct ones drawn
    with pytest.raises(ValueError, match="k = 0"):
        lesions.lesion_draws([0, 1], 0, draws=1, seed=0)


def test_k_values_thin_long_nets_keeping_both_ends():
    assert lesions.k_values(5, 30) == [1, 2, 3, 4, 5]
    ks = lesions.k_values(600, 30)
    assert ks[0] == 1 and ks[-1] == 600 and len(ks) == 30 and ks == sorted(set(ks))


# --------------------------------------------------------------------------------------------
# paths


def test_path_length_distribution_is_binomial():
    d = paths.path_length_distribution(54)
    assert list(d["length"]) == list(range(55))
    assert d["path_fraction"].sum() == pytest.approx(1.0)
    assert d["paths"].iloc[27] == math.comb(54, 27)
    assert d["path_fraction"].idxmax() == 27  # centred on n/2
    assert d["path_fraction"].iloc[3] == pytest.approx(math.comb(54, 3) / 2**54)


def _input_gradient(net: nn.Module, x: torch.Tensor, y: torch.Tensor, masks=None) -> torch.Tensor:
    """d (summed cross-entropy) / d x of the net as trained, or routed along `masks`."""
    x = x.clone().requires_grad_(True)
    if masks is None:
        logits = net(x)
    else:
        logits = net.head(paths.routed_forward(net, net.stem(x), masks))
    (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    return g


def test_zero_branches_pass_gradient_only_along_the_length_zero_path():
    net = _zero_branches(_net("resnet", 14))
    x, y = _batches(1, 8)[0]
    t = paths.path_table(net, [(x, y)], samples=2, seed=0, split="test")
    assert list(t["length"]) == list(range(7)) and (t["blocks"] == 6).all()
    # bn2 scale 0: no gradient through any branch, so every path of length >= 1 carries none,
    # and the length-0 path (all shortcuts) carries the whole gradient of the net at its input
    assert (t["grad_norm_mean"].iloc[1:] == 0).all()
    full = _input_gradient(net, x, y).flatten(1).norm(dim=1).double()
    assert t["grad_norm_mean"].iloc[0] == pytest.approx(float(full.mean()), rel=1e-5)
    assert (t["samples"] == 16).all() and (t["images"] == 8).all()
    assert (t["image_split"] == "test").all()
    assert t["weighted_grad"].iloc[0] == pytest.approx(t["grad_norm_mean"].iloc[0] / 2**6)


def test_the_gradients_of_all_paths_add_up_to_the_gradient_at_the_input():
    # Unrolled, the net is the sum of its 2^n paths: with the ReLU masks of the forward pass
    # fixed, the backward pass is linear, so the input gradients of the 2^3 paths of a
    # 3-block net add up to the net's own input gradient, image by image.
    net = _net("resnet", 8)
    x, y = _batches(1, 4)[0]
    total = torch.zeros_like(x)
    for bits in itertools.product([False, True], repeat=3):
        total += _input_gradient(net, x, y, torch.tensor([bits] * 4))
    assert torch.allclose(total, _input_gradient(net, x, y), atol=1e-5, rtol=1e-4)


def test_each_image_takes_its_own_path():
    # In eval mode the images of a batch do not interact: image i's gradient through its own
    # path in a batch equals its gradient alone through that path.
    net = _net("resnet", 14)
    x, y = _batches(1, 5)[0]
    masks = paths.random_paths(6, 3, 5, np.random.default_rng(0))
    assert (masks.sum(1) == 3).all() and len({tuple(m.tolist()) for m in masks}) > 1
    together = _input_gradient(net, x, y, masks)
    for i in range(5):
        alone = _input_gradient(net, x[i : i + 1], y[i : i + 1], masks[i : i + 1])
        assert torch.allclose(together[i : i + 1], alone, atol=1e-6, rtol=1e-5)
    norms = paths.input_gradient_norm(net, x, y, masks)
    assert torch.allclose(norms, together.flatten(1).norm(dim=1).double(), rtol=1e-6)


def test_path_statistics_are_over_image_path_pairs():
    net = _net("resnet", 8)
    batches = _batches(2, 4)
    t = paths.gradient_per_path_length(net, batches, samples=3, seed=0, split="train")
    assert (t["samples"] == 24).all() and (t["images"] == 8).all()
    assert (t["image_split"] == "train").all()
    # k = 0 and k = n are one path each: their means are those of every image's gradient
    # through it (each image counted `samples` times)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    for k, through in ((0, False), (3, True)):
        expected = paths.input_gradient_norm(net.eval(), x, y, torch.full((8, 3), through))
        assert t["grad_norm_mean"].iloc[k] == pytest.approx(float(expected.mean()), rel=1e-5)
        # the standard error is over the 8 images (an image's 3 pairs are not independent)
        sem = float(expected.std(unbiased=True)) / math.sqrt(8)
        assert t["grad_norm_sem"].iloc[k] == pytest.approx(sem, rel=1e-4)
    # seeded: the same paths again
    again = paths.gradient_per_path_length(net, batches, samples=3, seed=0, split="train")
    pd.testing.assert_frame_equal(t, again)


def test_paths_refuse_a_plain_net():
    with pytest.raises(ValueError, match="residual net"):
        paths.gradient_per_path_length(
            _net("plain", 8), _batches(1), samples=1, seed=0, split="test"
        )


# --------------------------------------------------------------------------------------------
# branch magnitudes


def _scaled_branches(net: nn.Module, a: float) -> nn.Module:
    """F(x) = a x for every block whose shape does not change (x >= 0, a ReLU output)."""
    net = _identity_branches(net)
    for _, block in named_blocks(net):
        block.bn2.weight.data.fill_(a)
    return net


def test_zero_branches_change_nothing():
    t = branches.branch_magnitudes(_zero_branches(_net("resnet", 14)), _batches())
    measured = t[t["measurable"]]
    assert list(t["measurable"]) == [True, True, False, True, False, True]
    assert (measured[["change_mean", "change_std", "branch_mean", "branch_std"]] == 0).all().all()
    assert t.loc[~t["measurable"], ["change_mean", "branch_mean"]].isna().all().all()
    assert (t["images"] == 32).all() and (t["blocks"] == 6).all()


@pytest.mark.parametrize(
    ("a", "change", "branch"),
    [
        (1.0, 1.0, 1.0),  # y = 2x: the block doubles its input
        (-0.5, 0.5, 0.5),  # y = x / 2
        (-2.0, 1.0, 2.0),  # y = relu(-x) = 0: the change is x itself, the branch twice that
    ],
)
def test_a_branch_proportional_to_its_input_gives_the_known_ratios(a, change, branch):
    t = branches.branch_magnitudes(_scaled_branches(_net("resnet", 14), a), _batches())
    # with a < -1 the first block outputs 0, and the blocks after it see no input at all
    measured = t[t["measurable"]].iloc[: 1 if a < -1 else None]
    assert np.allclose(measured["change_mean"], change, atol=1e-5)
    assert np.allclose(measured["branch_mean"], branch, atol=1e-5)
    assert np.allclose(measured["change_std"], 0.0, atol=1e-5)


def test_a_block_never_changes_its_input_more_than_its_branch_adds():
    # x >= 0 (a ReLU output), so |relu(F + x) - x| <= |F| element by element
    t = branches.branch_magnitudes(_net("resnet", 20, seed=3), _batches())
    measured = t[t["measurable"]]
    assert (measured["change_mean"] <= measured["branch_mean"] + 1e-12).all()
    assert (measured["change_mean"] > 0).all()


def test_branch_magnitudes_refuse_a_plain_net():
    with pytest.raises(ValueError, match="residual net"):
        branches.branch_magnitudes(_net("plain", 14), _batches())


def test_block_ratios_match_a_hand_computation():
    net = _net("resnet", 8)
    x, _ = _batches(1, 4)[0]
    t = branches.branch_magnitudes(net, [(x, None)])
    with torch.no_grad():
        h = net.stem(x)
        block = named_blocks(net)[0][1]
        y = block(h)
        size = h.flatten(1).norm(dim=1)
        change = (y - h).flatten(1).norm(dim=1) / size
        branch = block.branch(h).flatten(1).norm(dim=1) / size
    assert t["change_mean"].iloc[0] == pytest.approx(float(change.mean()), rel=1e-5)
    assert t["change_std"].iloc[0] == pytest.approx(float(change.std(unbiased=False)), rel=1e-4)
    assert t["branch_mean"].iloc[0] == pytest.approx(float(branch.mean()), rel=1e-5)
    assert t["branch_std"].iloc[0] == pytest.approx(float(branch.std(unbiased=False)), rel=1e-4)


# --------------------------------------------------------------------------------------------
# result files


def test_every_probe_table_fits_its_result_schema(tmp_path):
    net = _net("resnet", 8)
    b = _batches(1, 4)
    tables = {
        "lesions": lesions.single_lesions(net, b),
        "lesions_k": lesions.k_lesions(net, b, draws=2, seed=0),
        "paths": paths.path_table(net, b, samples=1, seed=0, split="test"),
        "branches": branches.branch_magnitudes(net, b),
    }
    for kind, df in tables.items():
        schema = BY_NAME[kind].schema
        labelled = label_run(df, "resnet8", 2, schema)
        probe(kind).write(labelled, tmp_path / f"{kind}.parquet")
        back = probe(kind).read_all([tmp_path / f"{kind}.parquet"])
        assert list(back.columns) == schema.names
        assert (back["model"] == "resnet8").all() and (back["seed"] == 2).all()
        shared = df.columns.intersection(back.columns)
        pd.testing.assert_frame_equal(back[shared], labelled[shared], check_dtype=False)


@pytest.mark.parametrize(
    ("kind", "old_columns"),
    [
        ("branches", ["measure", "ratio_mean", "ratio_std"]),
        ("paths", ["grad_norm_mean", "grad_norm_std"]),
    ],
)
def test_probe_files_of_the_older_layout_are_refused_in_one_line(tmp_path, kind, old_columns):
    path = tmp_path / f"{kind}.parquet"
    old = {c: [1.0] for c in ["model", "seed", "block", "length", *old_columns]}
    pq.write_table(pa.table(old), path)
    with pytest.raises(ResultError) as e:
        probe(kind).read_all([path])
    message = str(e.value)
    assert str(path) in message and "rebuild it" in message and "\n" not in message

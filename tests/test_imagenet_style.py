"""The second study family: ImageNet-style ResNet-18/34/50 on CIFAR-10, its schedule, its
normalisation and its config checks (issue 13)."""

import math

import pytest
import torch

from resnet_repro import data as D
from resnet_repro.config import ConfigError, parse_model_name, run_identity, study_from_dict
from resnet_repro.engine import schedule as S
from resnet_repro.nets.anatomy import count_parameters, response_layers
from resnet_repro.nets.families import build_model

# Exact counts of the write-up's nets with 10 classes (issue 13).
PARAMS = {18: 11_173_962, 34: 21_282_122, 50: 23_520_842}


@pytest.mark.parametrize("depth", sorted(PARAMS))
def test_parameter_counts_match_exactly(depth):
    assert count_parameters(build_model(f"imagenet-resnet{depth}")) == PARAMS[depth]


@pytest.mark.parametrize("depth, layers", [(18, 17), (34, 33), (50, 49)])
def test_response_layers_are_the_branch_bns_without_projections(depth, layers):
    net = build_model(f"imagenet-resnet{depth}", width=2)
    names = [n for n, _ in response_layers(net)]
    assert len(names) == layers
    assert names[0] == "bn" and not any("shortcut" in n for n in names)


def test_names_cannot_be_confused_with_the_papers_nets():
    assert parse_model_name("imagenet-resnet18") == ("imagenet-resnet", 18)
    with pytest.raises(ConfigError, match="6n\\+2"):
        parse_model_name("resnet18")  # stays a (refused) 6n+2 depth
    with pytest.raises(ConfigError, match=r"\[18, 34, 50\]"):
        parse_model_name("imagenet-resnet20")


def test_width_scales_every_stage_and_is_refused_for_the_papers_nets():
    small = build_model("imagenet-resnet18", width=4)
    assert small.conv.out_channels == 4 and small.fc.in_features == 32
    assert build_model("imagenet-resnet50", width=4).fc.in_features == 128
    with pytest.raises(ConfigError, match="width"):
        build_model("resnet20", width=4)


@pytest.mark.parametrize("depth", [18, 50])
def test_channels_last_and_bf16_forward(depth):
    torch.manual_seed(0)
    net = build_model(f"imagenet-resnet{depth}", width=4).eval()
    x = torch.randn(2, 3, 32, 32)
    expected = net(x)
    cl = net.to(memory_format=torch.channels_last)
    torch.testing.assert_close(
        cl(x.to(memory_format=torch.channels_last)), expected, rtol=1e-4, atol=1e-5
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=0.1, atol=0.1)


# ------------------------------------------------------------------ config


RECIPE = {
    "study": {"archs": ["imagenet-resnet"], "depths": [18, 34, 50], "shortcut": "B"},
    "data": {"normalization": "per_channel_mean_std"},
    "train": {
        "iterations": None,
        "epochs": 200,
        "schedule": "cosine",
        "lr_milestones": [],
        "weight_decay": 5e-4,
    },
}


def test_recipe_config_is_accepted_and_names_the_runs():
    s = study_from_dict(RECIPE)
    assert s.models() == ["imagenet-resnet18", "imagenet-resnet34", "imagenet-resnet50"]
    assert (s.train.epochs, s.train.iterations, s.train.schedule) == (200, None, "cosine")
    ident = run_identity(s, "imagenet-resnet18", 0, "fp")
    assert ident["shortcut"] == "B" and ident["width"] is None


def _with(section, **values):
    raw = {k: dict(v) for k, v in RECIPE.items()}
    raw[section] = {**raw[section], **values}
    return raw


@pytest.mark.parametrize(
    "raw, words",
    [
        (_with("train", schedule="linear"), ["train.schedule", "'linear'", "step", "cosine"]),
        (_with("train", lr_milestones=[100]), ["train.lr_milestones", "cosine", "[]"]),
        (_with("train", iterations=64000), ["train.iterations / train.epochs", "exactly one"]),
        (_with("train", epochs=None), ["train.iterations / train.epochs", "exactly one"]),
        (_with("train", epochs=0), ["train.epochs", ">= 1"]),
        (
            _with("train", schedule="step", lr_milestones=[100, 200]),
            ["train.lr_milestones", "200", "last epoch", "1 .. 199"],
        ),
        (
            _with("data", normalization="zca"),
            ["data.normalization", "per_pixel_mean", "per_channel_mean_std"],
        ),
        (_with("study", depths=[18, 20]), ["study.depths", "20", "[18, 34, 50]"]),
        (_with("study", width=0), ["study.width", ">= 1"]),
        ({"study": {"width": 8}}, ["study.width", "null", "imagenet-resnet"]),
        (_with("study", shortcut="A"), ["study.shortcut", "'A'", "['B']"]),
    ],
)
def test_bad_schedule_and_family_values_fail_with_one_line(raw, words):
    with pytest.raises(ConfigError) as e:
        study_from_dict(raw)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_papers_study_keeps_its_iteration_step_schedule():
    t = study_from_dict({}).train
    assert (t.iterations, t.epochs, t.schedule) == (64000, None, "step")
    assert S.total_iterations(t, 50_000) == 64000
    assert math.isclose(S.lr_at(48000, t, per_epoch=390), 0.001)


# ------------------------------------------------------------------ schedule


def test_cosine_over_epochs_changes_at_epoch_starts_and_ends_near_zero():
    t = study_from_dict(RECIPE).train
    per_epoch = 390
    assert S.total_iterations(t, 50_000) == 200 * 390
    assert S.lr_at(0, t, per_epoch=per_epoch) == 0.1
    assert S.lr_at(389, t, per_epoch=per_epoch) == 0.1  # still epoch 0
    e1 = 0.1 * 0.5 * (1 + math.cos(math.pi / 200))
    assert math.isclose(S.lr_at(390, t, per_epoch=per_epoch), e1)
    assert math.isclose(S.lr_at(100 * 390, t, per_epoch=per_epoch), 0.05)
    last = S.lr_at(200 * 390 - 1, t, per_epoch=per_epoch)
    assert 0 < last < 1e-4
    # The warm-up flag still wins when a config asks for it.
    assert S.lr_at(0, t, warming_up=True, per_epoch=per_epoch) == t.warmup.lr


def test_cosine_over_iterations_and_step_over_epochs():
    cos = study_from_dict(
        {"train": {"schedule": "cosine", "lr_milestones": [], "iterations": 100}}
    ).train
    assert math.isclose(S.lr_at(50, cos), 0.05)
    step = study_from_dict(
        {"train": {"iterations": None, "epochs": 10, "lr_milestones": [5, 8]}}
    ).train
    assert S.total_iterations(step, 1000) == 10 * (1000 // 128)
    assert S.lr_at(5 * 7 - 1, step, per_epoch=7) == 0.1
    assert math.isclose(S.lr_at(5 * 7, step, per_epoch=7), 0.01)
    assert math.isclose(S.lr_at(8 * 7, step, per_epoch=7), 0.001)


# ------------------------------------------------------------------ normalisation


def test_per_channel_mean_std_normalises_each_channel():
    arrays = D.synthetic_cifar(64, 16, seed=0)
    d = D.to_device(arrays, torch.device("cpu"), "per_channel_mean_std")
    assert d.mean.shape == (3, 1, 1) and d.std.shape == (3, 1, 1)
    x = D.normalize(d.train_x, d.mean, d.std)
    flat = x.transpose(0, 1).reshape(3, -1).double()
    torch.testing.assert_close(flat.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        flat.std(1, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-4, rtol=0
    )
    assert D.to_device(arrays, torch.device("cpu")).std is None  # the paper's default


def test_per_channel_padding_is_a_black_pixel():
    arrays = D.synthetic_cifar(8, 1, seed=0)
    d = D.to_device(arrays, torch.device("cpu"), "per_channel_mean_std")
    black = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = D.augment(black, d.mean, g, padding=4, flip=False, std=d.std)
    # Every pixel, padded or not, is raw black: -mean/std after normalising.
    torch.testing.assert_close(out, (-d.mean / d.std).expand_as(out).contiguous())

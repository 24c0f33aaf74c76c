"""Config loading: defaults are the paper's recipe; bad values fail at load, naming the key."""

from pathlib import Path

import pytest
import yaml

from resnet_repro import config as C
from resnet_repro.config import ConfigError, load_study, study_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_papers_recipe():
    s = study_from_dict({})
    assert s.train.batch_size == 128
    assert s.train.lr == 0.1
    assert s.train.lr_milestones == (32000, 48000)
    assert s.train.iterations == 64000
    assert (s.train.momentum, s.train.weight_decay) == (0.9, 1e-4)
    assert (s.train.warmup.lr, s.train.warmup.until_train_error_pct) == (0.01, 80.0)
    assert s.train.warmup.min_depth == 110
    assert (s.train.augment.padding, s.train.augment.flip) == (4, True)
    assert s.study.shortcut == "A"
    assert s.study.depths == (20, 32, 44, 56, 110)


def test_shipped_config_equals_schema_defaults():
    # config.yaml spells out every key; its values must be the recipe the schema defaults to.
    assert load_study(ROOT / "config.yaml") == study_from_dict({})


def test_shipped_config_lists_every_schema_key():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    full = C.validate_dict({})

    def keys(d, prefix=""):
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict):
                yield from keys(v, prefix + k + ".")

    assert set(keys(raw)) == set(keys(full))


def test_study_runs_plain_before_resnet_by_depth():
    s = study_from_dict(
        {"study": {"archs": ["resnet", "plain"], "depths": [56, 20], "seeds": [0, 1]}}
    )
    assert s.models() == ["plain20", "plain56", "resnet20", "resnet56"]
    assert len(s.runs()) == 8


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"train": {"lrr": 0.1}}, ["train.lrr", "lr_milestones", "batch_size"]),
        ({"bogus": 1}, ["bogus", "train", "study"]),
        ({"study": {"depths": [20, 21]}}, ["study.depths", "21", "6n+2"]),
        ({"train": {"lr": -0.1}}, ["train.lr", "-0.1", "> 0"]),
        ({"train": {"lr_milestones": [32000, 70000]}}, ["train.lr_milestones", "70000", "63999"]),
        ({"study": {"archs": ["plain", "wide"]}}, ["study.archs", "wide", "plain", "resnet"]),
        ({"study": {"depths": []}}, ["study.depths", "empty"]),
        ({"study": {"shortcut": "D"}}, ["study.shortcut", "'A', 'B', 'C'"]),
        ({"data": {"source": "imagenet"}}, ["data.source", "cifar10", "synthetic"]),
        ({"device": {"precision": "fp16"}}, ["device.precision", "bf16", "fp32"]),
        ({"train": {"batch_size": "128"}}, ["train.batch_size", "integer"]),
        ({"train": {"warmup": {"lr": 0}}}, ["train.warmup.lr", "> 0"]),
        ({"analysis": {"figure7_models": ["resnet21"]}}, ["resnet21", "6n+2"]),
    ],
)
def test_bad_config_names_key_and_allowed_values(raw, words):
    with pytest.raises(ConfigError) as e:
        study_from_dict(raw)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_later_config_files_override_earlier_ones(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("train: {lr: 0.2, batch_size: 64}\nstudy: {depths: [8, 14]}\n")
    b.write_text("train: {lr: 0.05}\n")
    s = load_study([a, b])
    assert (s.train.lr, s.train.batch_size, s.study.depths) == (0.05, 64, (8, 14))


def test_unreadable_config_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "missing.yaml")
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_study(lst)


@pytest.mark.parametrize(
    "name, arch, depth", [("plain20", "plain", 20), ("resnet1202", "resnet", 1202)]
)
def test_parse_model_name(name, arch, depth):
    assert C.parse_model_name(name) == (arch, depth)


@pytest.mark.parametrize("name", ["resnet21", "vgg16", "resnet", "plain-20"])
def test_bad_model_name(name):
    with pytest.raises(ConfigError):
        C.parse_model_name(name)


def test_identity_ignores_device_knobs_but_not_recipe():
    base = study_from_dict({})
    other_device = study_from_dict({"device": {"jobs_per_gpu": 2, "compile": "step"}})
    other_lr = study_from_dict({"train": {"lr": 0.05}})
    h = C.identity_hash(C.run_identity(base, "resnet20", 0, "fp"))
    assert C.identity_hash(C.run_identity(other_device, "resnet20", 0, "fp")) == h
    assert C.identity_hash(C.run_identity(other_lr, "resnet20", 0, "fp")) != h
    assert C.identity_hash(C.run_identity(base, "resnet20", 1, "fp")) != h


def test_identity_is_the_datas_content_not_its_folder_nor_the_eval_batch():
    base = study_from_dict({})
    moved = study_from_dict(
        {"data": {"root": "/elsewhere", "download": False}, "train": {"eval_batch_size": 250}}
    )
    h = C.identity_hash(C.run_identity(base, "resnet20", 0, "fp"))
    assert C.identity_hash(C.run_identity(moved, "resnet20", 0, "fp")) == h
    # Other content (another subset, split or copy of the images) is another fingerprint.
    assert C.identity_hash(C.run_identity(base, "resnet20", 0, "other")) != h


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"study": {"depths": [8.0]}}, ["study.depths.0", "8.0", "integer"]),
        ({"study": {"seeds": [True]}}, ["study.seeds.0", "True", "integer"]),
        ({"train": {"iterations": 64000.0}}, ["train.iterations", "integer"]),
        ({"train": {"warmup": {"archs": ["vgg"]}}}, ["train.warmup.archs.0", "plain", "resnet"]),
        ({"train": {"warmup": {"max_iterations": 0}}}, ["train.warmup.max_iterations", ">= 1"]),
    ],
)
def test_non_integers_and_bad_warmup_values_are_refused(raw, words):
    with pytest.raises(ConfigError) as e:
        study_from_dict(raw)
    for w in words:
        assert w in str(e.value)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: 0.1\n   momentum: 0.9\n")
    with pytest.raises(ConfigError) as e:
        C.load_study([bad])
    msg = str(e.value)
    assert "\n" not in msg
    assert str(bad) in msg and "line 3" in msg and "column 12" in msg


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "workflow" / "configs").glob("*.yaml"))
)
def test_every_shipped_config_loads_on_top_of_the_main_one(name):
    configs = ROOT / "workflow" / "configs"
    # smoke-X.yaml shrinks the study of X.yaml, on top of it
    base = [configs / name.removeprefix("smoke-")] if name.startswith("smoke-") else []
    study = load_study([ROOT / "config.yaml", *base, configs / name])
    assert study.runs()
